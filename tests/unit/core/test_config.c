/* test_config: the directive table, YAML files and flags (config.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"

static char path[] = "/tmp/kc_test_config_XXXXXX";

static const char *write_yaml(const char *text)
{
	int fd;

	strcpy(path, "/tmp/kc_test_config_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static int parse(struct kc_config *cfg, char *err, size_t errlen, int argc, ...)
{
	char *argv[32] = {"kcached"};
	va_list ap;

	va_start(ap, argc);
	for (int i = 1; i <= argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	kc_config_defaults(cfg);
	return kc_config_parse_args(cfg, argc + 1, argv, err, errlen);
}

static void test_defaults(void **state)
{
	struct kc_config cfg;
	char err[256] = "";

	(void)state;
	kc_config_defaults(&cfg);
	assert_int_equal(cfg.port, 11211);
	assert_string_equal(cfg.listen, "127.0.0.1");
	assert_string_equal(cfg.http, "127.0.0.1:8080");
	assert_int_equal(cfg.memory, 64 << 20);
	assert_int_equal(cfg.item_max, 1 << 20);
	assert_int_equal(cfg.xdp_mode, KC_XDP_OFF);
	assert_true(cfg.udp);
	assert_string_equal(cfg.pin_path, "/sys/fs/bpf/kcache");
	assert_string_equal(cfg.admin_socket, "/run/kcache/admin.sock");
	assert_int_equal(kc_config_validate(&cfg, err, sizeof(err)), 0);
}

static void test_sizes_and_numbers(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(kc_parse_size("64M", &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(kc_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(kc_parse_size("1kb", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(kc_parse_size("123", &v), 0);
	assert_int_equal(v, 123);
	assert_int_not_equal(kc_parse_size("", &v), 0);
	assert_int_not_equal(kc_parse_size("M", &v), 0);
	assert_int_not_equal(kc_parse_size("-1M", &v), 0);
	assert_int_not_equal(kc_parse_size("1.5G", &v), 0);
	assert_int_not_equal(kc_parse_size("99999999999999999999T", &v), 0);
	assert_int_not_equal(kc_parse_size("17179869184T", &v), 0); /* overflows on shift */
	/* kc_parse_u64 itself: tests/unit/core/test_num.c. */
}

static void test_flags(void **state)
{
	struct kc_config cfg;
	char err[256] = "";

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), 6, "--port", "1234", "--memory", "128M",
			       "--udp", "false"),
			 0);
	assert_int_equal(cfg.port, 1234);
	assert_int_equal(cfg.memory, 128 << 20);
	assert_false(cfg.udp);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--port", "70000"), -EINVAL);
	assert_string_equal(err, "--port: expected an integer from 0 to 65535, got '70000'");
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--memory", "lots"), -EINVAL);
	assert_non_null(strstr(err, "--memory: expected a size"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 1, "--bogus"), -EINVAL);
	assert_string_equal(err, "--bogus: unknown option (see --help)");
	assert_int_equal(parse(&cfg, err, sizeof(err), 1, "--port"), -EINVAL);
	assert_string_equal(err, "--port: expected a value");
	assert_int_equal(parse(&cfg, err, sizeof(err), 1, "stray"), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--http", "nocolon"), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--memory", "1M"), -EINVAL);
	assert_non_null(strstr(err, "at least twice item-size-max"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--log-level", "loud"), -EINVAL);
}

static void test_yaml_and_precedence(void **state)
{
	struct kc_config cfg;
	char err[256] = "";
	const char *p = write_yaml("# kcached\nport: 2000\nmemory: 256M\nlisten: 0.0.0.0\n"
				   "udp: no\n");

	(void)state;
	/* Flags win over the file, before or after --config. */
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--port", "3000", "--config", p), 0);
	assert_int_equal(cfg.port, 3000);
	assert_int_equal(cfg.memory, 256 << 20);
	assert_string_equal(cfg.listen, "0.0.0.0");
	assert_false(cfg.udp);
	unlink(p);
}

static void expect_yaml_error(const char *text, const char *want_suffix)
{
	struct kc_config cfg;
	char err[256] = "", want[512];
	const char *p = write_yaml(text);

	kc_config_defaults(&cfg);
	assert_int_equal(kc_config_load_yaml(&cfg, p, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:%s", p, want_suffix);
	assert_string_equal(err, want);
	unlink(p);
}

static void test_yaml_errors(void **state)
{
	(void)state;
	expect_yaml_error("port: 1\nmemroy: 1G\n", "2: unknown key 'memroy'");
	expect_yaml_error("\n\nmemory: huge\n",
			  "3: memory: expected a size from 1048576 to 1099511627776 bytes "
			  "(suffixes K, M, G), got 'huge'");
	expect_yaml_error("port: [1, 2]\n", "1: port: expected a scalar value, got a list");
	expect_yaml_error("port:\n  a: 1\n", "2: port: expected a scalar value, got a mapping");
	expect_yaml_error("just text\n", "1: expected a mapping of directive: value");
	expect_yaml_error("port: \"1\n", "2: found unexpected end of stream");
	expect_yaml_error("udp: maybe\n", "1: udp: expected true or false, got 'maybe'");
}

static void test_missing_file(void **state)
{
	struct kc_config cfg;
	char err[256];

	(void)state;
	kc_config_defaults(&cfg);
	assert_int_equal(kc_config_load_yaml(&cfg, "/nonexistent/k.yaml", err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/k.yaml: No such file or directory");
}

/* issue 13 item 19: what start refuses, --check-config refuses too (both call validate). */
static void test_addresses_must_parse(void **state)
{
	struct kc_config cfg;
	char err[256] = "";

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--listen", "not-an-ip"), -EINVAL);
	assert_string_equal(err, "listen: expected an IPv4 or IPv6 address, got 'not-an-ip'");
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--http", "[::1:80"), -EINVAL);
	assert_string_equal(
	    err, "http: expected a.b.c.d:port or [v6]:port (a numeric address), got '[::1:80'");
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--http", "localhost:80"), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--http", "::1:80"), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--http", "[127.0.0.1]:80"), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--http", "127.0.0.1:65536"), -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--http", "[::1]:8080"), 0);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--listen", "::1"), 0);
}

static void test_duplicates_and_documents(void **state)
{
	(void)state;
	expect_yaml_error("port: 1\nmemory: 1G\nport: 2\n",
			  "3: duplicate key 'port' (first on line 1)");
	expect_yaml_error("allow: [10.0.0.0/8]\nallow: [11.0.0.0/8]\n",
			  "2: duplicate key 'allow' (first on line 1)");
	expect_yaml_error("port: 1\n---\nport: 2\n",
			  "2: a second YAML document (---): the configuration is one mapping");
}

static void test_allow_limit_is_exact(void **state)
{
	struct kc_config cfg;
	char text[4096] = "allow:\n", err[512] = "";
	size_t n = strlen(text);
	const char *p;

	(void)state;
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "  - 10.%d.%d.0/24\n", i / 250,
				      i % 250);
	p = write_yaml(text);
	kc_config_defaults(&cfg);
	assert_int_equal(kc_config_load_yaml(&cfg, p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err,
			       "the list holds at most 2047 bytes, commas included, and "
			       "has 154 prefixes in 2045; put longer lists in a net-policy file"));
	unlink(p);
}

/* issue 13 item 4: listeners nothing protects are refused, unless insecure-listen. */
static void test_exposure(void **state)
{
	struct kc_config cfg;
	char err[512] = "";

	(void)state;
	kc_config_defaults(&cfg);
	assert_int_equal(kc_config_check_exposure(&cfg, err, sizeof(err)), 0);
	strcpy(cfg.listen, "0.0.0.0");
	assert_int_equal(kc_config_check_exposure(&cfg, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "xdp-mode is off: nothing filters who reaches memcached"));
	assert_non_null(strstr(err, "--insecure-listen"));
	cfg.insecure_listen = true;
	assert_int_equal(kc_config_check_exposure(&cfg, err, sizeof(err)), 0);
	cfg.insecure_listen = false;
	/* an address that is not the protected interface's */
	strcpy(cfg.listen, "198.18.0.77");
	cfg.xdp_mode = KC_XDP_SKB;
	strcpy(cfg.iface, "lo");
	assert_int_equal(kc_config_check_exposure(&cfg, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "listen 198.18.0.77 is not an address of iface lo"));
	/* HTTP off loopback: the policy does not filter it */
	strcpy(cfg.listen, "127.0.0.1");
	strcpy(cfg.http, "0.0.0.0:8080");
	assert_int_equal(kc_config_check_exposure(&cfg, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "http 0.0.0.0:8080 is not a loopback address"));
	strcpy(cfg.http, "[::1]:8080");
	assert_int_equal(kc_config_check_exposure(&cfg, err, sizeof(err)), 0);
	strcpy(cfg.http, "127.0.0.2:8080");
	assert_int_equal(kc_config_check_exposure(&cfg, err, sizeof(err)), 0);
}

/* issue 13 item 18: the Redis password from a file, never on the command line. */
static void test_password_files(void **state)
{
	struct kc_config cfg;
	char err[512] = "", pwf[64];
	const char *p = write_yaml("s3cr@t/x\n");

	(void)state;
	snprintf(pwf, sizeof(pwf), "%s", p);
	assert_int_equal(chmod(pwf, 0600), 0);
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--redis", "redis://127.0.0.1:6379/0",
			       "--redis-password-file", pwf),
			 0);
	assert_string_equal(cfg.redis, "redis://:s3cr%40t%2Fx@127.0.0.1:6379/0");
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--redis", "rediss://bob@h:1",
			       "--redis-password-file", pwf),
			 0);
	assert_string_equal(cfg.redis, "rediss://bob:s3cr%40t%2Fx@h:1");
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--redis", "redis+sentinel://m@h:26379",
			       "--redis-password-file", pwf),
			 0);
	assert_string_equal(cfg.redis, "redis+sentinel://:s3cr%40t%2Fx@m@h:26379");
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--audit-redis-stream",
			       "redis://h:1/audit", "--audit-redis-password-file", pwf),
			 0);
	assert_string_equal(cfg.audit_redis_stream, "redis://:s3cr%40t%2Fx@h:1/audit");
	/* a password in the URL too: one of them is a mistake */
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--redis", "redis://:other@h:1",
			       "--redis-password-file", pwf),
			 -EINVAL);
	assert_non_null(strstr(err, "keep one"));
	assert_null(strstr(err, "s3cr"));
	/* readable by others: refused, and the message does not show the password */
	assert_int_equal(chmod(pwf, 0644), 0);
	assert_int_equal(parse(&cfg, err, sizeof(err), 4, "--redis", "redis://h:1",
			       "--redis-password-file", pwf),
			 -EPERM);
	assert_non_null(strstr(err, "mode 0644 lets group or others at it: chmod 600 it"));
	assert_null(strstr(err, "s3cr"));
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--redis-password-file", pwf), -EPERM);
	assert_int_equal(chmod(pwf, 0600), 0);
	assert_int_equal(parse(&cfg, err, sizeof(err), 2, "--redis-password-file", pwf), -EINVAL);
	assert_string_equal(err, "redis-password-file is set but redis is not");
	unlink(pwf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_sizes_and_numbers),
	    cmocka_unit_test(test_flags),
	    cmocka_unit_test(test_yaml_and_precedence),
	    cmocka_unit_test(test_yaml_errors),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_addresses_must_parse),
	    cmocka_unit_test(test_duplicates_and_documents),
	    cmocka_unit_test(test_allow_limit_is_exact),
	    cmocka_unit_test(test_exposure),
	    cmocka_unit_test(test_password_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
