/* test_redis_url: kcache's Redis URLs (redis_url.c): good forms, precise errors for bad ones,
 * copies, and the redacted form for logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tiers/redis/redis.h"

static void good(const char *s, struct kc_redis_url *u)
{
	char err[256] = "";

	if (kc_redis_url_parse(s, u, err, sizeof(err)) != 0)
		fail_msg("'%s' should parse: %s", s, err);
}

/* s must be refused with exactly want. */
static void bad(const char *s, const char *want)
{
	struct kc_redis_url u;
	char err[256] = "";

	if (kc_redis_url_parse(s, &u, err, sizeof(err)) == 0)
		fail_msg("'%s' should be refused", s);
	if (strcmp(err, want) != 0)
		fail_msg("'%s': got error \"%s\", want \"%s\"", s, err, want);
	assert_int_equal(u.naddrs, 0); /* nothing left to free */
	assert_null(u.pass);
}

static void printed(const char *s, const char *want)
{
	struct kc_redis_url u;
	char out[512];

	good(s, &u);
	kc_redis_url_print(&u, out, sizeof(out));
	assert_string_equal(out, want);
	kc_redis_url_free(&u);
}

static void test_plain(void **state)
{
	struct kc_redis_url u;

	(void)state;
	good("redis://127.0.0.1:6380/3", &u);
	assert_false(u.tls);
	assert_false(u.sentinel);
	assert_int_equal(u.naddrs, 1);
	assert_string_equal(u.addrs[0].host, "127.0.0.1");
	assert_int_equal(u.addrs[0].port, 6380);
	assert_int_equal(u.db, 3);
	assert_null(u.user);
	assert_null(u.pass);
	assert_int_equal(u.timeout_ms, 0);
	kc_redis_url_free(&u);

	good("redis://cache.example", &u); /* port and db default */
	assert_int_equal(u.addrs[0].port, 6379);
	assert_int_equal(u.db, 0);
	kc_redis_url_free(&u);

	good("redis://localhost:1/", &u);
	assert_int_equal(u.addrs[0].port, 1);
	kc_redis_url_free(&u);

	good("redis://[::1]:7000/2147483647?timeout_ms=50", &u);
	assert_string_equal(u.addrs[0].host, "::1");
	assert_int_equal(u.addrs[0].port, 7000);
	assert_int_equal(u.db, 2147483647);
	assert_int_equal(u.timeout_ms, 50);
	kc_redis_url_free(&u);
}

static void test_auth(void **state)
{
	struct kc_redis_url u, c;

	(void)state;
	good("redis://:s3cret@h:1", &u);
	assert_null(u.user);
	assert_string_equal(u.pass, "s3cret");
	kc_redis_url_free(&u);

	good("redis://app:p%40ss%3Aw%2Fd@h:1/0", &u); /* @ : / encoded */
	assert_string_equal(u.user, "app");
	assert_string_equal(u.pass, "p@ss:w/d");
	assert_int_equal(kc_redis_url_dup(&c, &u), 0);
	kc_redis_url_free(&u);
	assert_string_equal(c.pass, "p@ss:w/d"); /* a deep copy */
	assert_string_equal(c.addrs[0].host, "h");
	kc_redis_url_free(&c);
}

static void test_tls_and_sentinel(void **state)
{
	struct kc_redis_url u;

	(void)state;
	good("rediss://r.example:6380?ca=/etc/ca%20dir/ca.pem&cert=/c.pem&key=/k.pem&insecure=1",
	     &u);
	assert_true(u.tls);
	assert_string_equal(u.ca, "/etc/ca dir/ca.pem");
	assert_string_equal(u.cert, "/c.pem");
	assert_string_equal(u.key, "/k.pem");
	assert_true(u.insecure);
	kc_redis_url_free(&u);

	good("redis+sentinel://u:p@mymaster@10.0.0.1:26380,10.0.0.2,[fd00::3]:5/4", &u);
	assert_true(u.sentinel);
	assert_false(u.tls);
	assert_string_equal(u.master, "mymaster");
	assert_string_equal(u.user, "u");
	assert_string_equal(u.pass, "p");
	assert_int_equal(u.naddrs, 3);
	assert_int_equal(u.addrs[0].port, 26380);
	assert_string_equal(u.addrs[1].host, "10.0.0.2");
	assert_int_equal(u.addrs[1].port, 26379); /* the sentinel default */
	assert_string_equal(u.addrs[2].host, "fd00::3");
	assert_int_equal(u.db, 4);
	kc_redis_url_free(&u);

	good("rediss+sentinel://m@s1:1?insecure=0", &u);
	assert_true(u.tls && u.sentinel);
	assert_null(u.pass);
	assert_string_equal(u.master, "m");
	kc_redis_url_free(&u);
}

static void test_bad(void **state)
{
	char big[KC_REDIS_URL_MAX + 64], host[300];

	(void)state;
	bad("redis://", "redis URL: missing host");
	bad("redis://:6379", "redis URL: missing host");
	bad("redis://:pw@/0", "redis URL: missing host");
	bad("redis://h:99999", "redis URL: port 99999 out of range");
	bad("redis://h:0", "redis URL: port 0 out of range");
	bad("redis://h:", "redis URL: missing port after ':'");
	bad("redis://h:6379x", "redis URL: port '6379x' is not a number");
	bad("redis://h:12345678901", "redis URL: port 12345678901 out of range");
	bad("redis://h/abc", "redis URL: db 'abc' is not a number");
	bad("redis://h/-1", "redis URL: db '-1' is not a number");
	bad("redis://h/0/x", "redis URL: db '0/x' is not a number");
	bad("redis://h/2147483648", "redis URL: db 2147483648 out of range");
	bad("http://h:1", "redis URL: unknown scheme 'http' (want redis, rediss, redis+sentinel or "
			  "rediss+sentinel)");
	bad("h:6379", "redis URL: 'h:6379' has no scheme (want redis://host:port)");
	bad("redis+sentinel://@h:1", "redis URL: empty sentinel master name");
	bad("redis+sentinel://u:p@@h:1", "redis URL: empty sentinel master name");
	bad("redis+sentinel://h:1", "redis URL: missing master name (want MASTER@host:port)");
	bad("redis+sentinel://m@h:1,", "redis URL: missing host");
	bad("redis://h:1,g:2", "redis URL: several hosts need redis+sentinel://");
	bad("redis://h?timeout=5",
	    "redis URL: unknown option 'timeout' (want timeout_ms, ca, cert, "
	    "key or insecure)");
	bad("redis://h?timeout_ms", "redis URL: option 'timeout_ms' needs a value");
	bad("redis://h?timeout_ms=0", "redis URL: timeout_ms 0 out of range");
	bad("redis://h?timeout_ms=1&timeout_ms=2", "redis URL: option 'timeout_ms' given twice");
	bad("redis://h?timeout_ms=1&", "redis URL: empty option after '&'");
	bad("redis://h?=1", "redis URL: empty option name");
	bad("redis://h?ca=/x", "redis URL: option 'ca' needs rediss://");
	bad("rediss://h?cert=/c", "redis URL: options 'cert' and 'key' go together");
	bad("rediss://h?insecure=yes", "redis URL: insecure 'yes': want 0 or 1");
	bad("redis://user@h",
	    "redis URL: user 'user' without a password (write user:pass or :pass)");
	bad("redis://u:@h", "redis URL: empty password");
	bad("redis://u:p%00x@h", "redis URL: password contains a NUL byte");
	bad("redis://u:p%4@h", "redis URL: bad %-escape in password");
	bad("redis://u:p%zz@h", "redis URL: bad %-escape in password");
	bad("redis://h st:1", "redis URL: character 0x20 at offset 9 is not allowed");
	bad("redis://h\t:1", "redis URL: character 0x09 at offset 9 is not allowed");
	bad("redis://h\x7f:1", "redis URL: character 0x7f at offset 9 is not allowed");
	bad("redis://h\xc3\xa9:1", "redis URL: character 0xc3 at offset 9 is not allowed");
	bad("redis://h!:1", "redis URL: bad character '!' in host 'h!'");
	bad("redis://[::1:1", "redis URL: missing ']' after IPv6 address");
	bad("redis://[::1]x", "redis URL: unexpected 'x' after host");
	bad("redis://[]:1", "redis URL: missing host");

	memset(host, 'a', sizeof(host));
	memcpy(host, "redis://", 8);
	host[sizeof(host) - 1] = '\0';
	bad(host, "redis URL: host longer than 253 characters");
	memset(big, 'a', sizeof(big));
	memcpy(big, "redis://", 8);
	big[sizeof(big) - 1] = '\0';
	bad(big, "redis URL: longer than 4096 bytes");
	{
		char many[512] = "redis+sentinel://m@";
		for (int i = 0; i < 17; i++)
			strcat(many, i ? ",h:1" : "h:1");
		bad(many, "redis URL: more than 16 sentinels");
	}
}

static void test_print(void **state)
{
	char out[16];
	struct kc_redis_url u;

	(void)state;
	printed("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0");
	printed("redis://:secret@host", "redis://:***@host:6379/0");
	printed("redis://host:1/9", "redis://host:1/9");
	printed("rediss://a:b@[::1]:2?ca=/ca.pem&timeout_ms=7",
		"rediss://a:***@[::1]:2/0?timeout_ms=7&ca=/ca.pem");
	printed("rediss+sentinel://u:pw@mm@s1:1,s2/3?insecure=1",
		"rediss+sentinel://u:***@mm@s1:1,s2:26379/3?insecure=1");
	/* Cut short, still terminated, and the password never shows. */
	good("redis://u:topsecret@host:6379/0", &u);
	kc_redis_url_print(&u, out, sizeof(out));
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_null(strstr(out, "topsecret"));
	kc_redis_url_free(&u);
}

/* The audit stream's form: the last path segment is the key, one before it the db. */
static void test_key(void **state)
{
	static const char *const refused[][2] = {
	    {"redis://h:1", "redis URL: missing key (want redis://host:port/KEY)"},
	    {"rediss://h:1/?ca=/c", "redis URL: missing key (want rediss://host:port/KEY)"},
	    {"redis://h:1/2/", "redis URL: empty key after '/'"},
	    {"redis://h:1/x/k", "redis URL: db 'x' is not a number"},
	    {"redis://u:hunter2@h:1/k%zz", "redis URL: bad %-escape in key"},
	    {"u:hunter2@h:1/k", "redis URL: '***@h:1/k' has no scheme (want redis://host:port)"},
	};
	struct kc_redis_url u;
	char err[256], *key;

	(void)state;
	assert_int_equal(
	    kc_redis_url_parse_key("redis://127.0.0.1:7/kcache:audit", &u, &key, err, sizeof(err)),
	    0);
	assert_string_equal(key, "kcache:audit");
	assert_string_equal(u.addrs[0].host, "127.0.0.1");
	assert_int_equal(u.addrs[0].port, 7);
	assert_int_equal(u.db, 0);
	free(key);
	kc_redis_url_free(&u);
	assert_int_equal(kc_redis_url_parse_key("rediss://:pw@h:9/3/a%2Fb?ca=/ca.pem&insecure=1",
						&u, &key, err, sizeof(err)),
			 0);
	assert_string_equal(key, "a/b");
	assert_true(u.tls);
	assert_true(u.insecure);
	assert_string_equal(u.pass, "pw");
	assert_string_equal(u.ca, "/ca.pem");
	assert_int_equal(u.db, 3);
	free(key);
	kc_redis_url_free(&u);
	assert_int_equal(
	    kc_redis_url_parse_key("redis+sentinel://mm@s1,s2:5/k", &u, &key, err, sizeof(err)), 0);
	assert_string_equal(key, "k");
	assert_int_equal(u.naddrs, 2);
	free(key);
	kc_redis_url_free(&u);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		key = (char *)"unset";
		err[0] = 0;
		if (kc_redis_url_parse_key(refused[i][0], &u, &key, err, sizeof(err)) == 0)
			fail_msg("'%s' should be refused", refused[i][0]);
		if (strcmp(err, refused[i][1]) != 0)
			fail_msg("'%s': got \"%s\", want \"%s\"", refused[i][0], err,
				 refused[i][1]);
		assert_null(key);
		assert_null(u.pass);
		assert_null(strstr(err, "hunter2"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_plain),
					   cmocka_unit_test(test_auth),
					   cmocka_unit_test(test_tls_and_sentinel),
					   cmocka_unit_test(test_bad),
					   cmocka_unit_test(test_print),
					   cmocka_unit_test(test_key)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
