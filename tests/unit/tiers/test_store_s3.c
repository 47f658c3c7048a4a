/* test_store_s3.c: the S3 backend's pieces that need no network: the s3:// URL parser
 * (user/tiers/store/store_s3url.c) with every kind of malformed spec, AWS Signature V4
 * (user/tiers/store/sigv4.c) on AWS's published S3 example, URI encoding, and the object format
 * parser (user/tiers/store/store.c). Requests against a real S3 server are in
 * tests/integration/tiers/store_s3.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/hex.h"
#include "tiers/store/sigv4.h"
#include "tiers/store/store.h"
#include "tiers/store/store_int.h"

static void test_url_ok(void **state)
{
	struct kc_s3_url u;
	char err[256] = "";

	(void)state;
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	assert_int_equal(
	    kc_s3_url_parse("s3://my-bucket/a/b?endpoint=http://127.0.0.1:4569&region=eu-west-3",
			    &u, err, sizeof(err)),
	    0);
	assert_string_equal(u.bucket, "my-bucket");
	assert_string_equal(u.prefix, "a/b/");
	assert_string_equal(u.endpoint, "http://127.0.0.1:4569");
	assert_string_equal(u.region, "eu-west-3");
	assert_true(u.path_style); /* on by default with an endpoint */
	assert_false(u.insecure);

	assert_int_equal(kc_s3_url_parse("s3://bucket", &u, err, sizeof(err)), 0);
	assert_string_equal(u.prefix, "");
	assert_string_equal(u.endpoint, "");
	assert_string_equal(u.region, "us-east-1");
	assert_false(u.path_style); /* AWS: virtual-host style */

	setenv("AWS_REGION", "ap-south-1", 1);
	assert_int_equal(kc_s3_url_parse("s3://bucket/p/?endpoint=https%3A%2F%2Fminio.local%3A9000/"
					 "&path_style=false&insecure=1",
					 &u, err, sizeof(err)),
			 0);
	unsetenv("AWS_REGION");
	assert_string_equal(u.prefix, "p/");
	assert_string_equal(u.endpoint, "https://minio.local:9000");
	assert_string_equal(u.region, "ap-south-1");
	assert_false(u.path_style);
	assert_true(u.insecure);
}

static void test_url_errors(void **state)
{
	static const struct {
		const char *url, *err;
	} rows[] = {
	    {"s3://", "store: s3 URL: missing bucket (s3://bucket/prefix)"},
	    {"s3:///prefix", "store: s3 URL: missing bucket (s3://bucket/prefix)"},
	    {"s3://?region=x", "store: s3 URL: missing bucket (s3://bucket/prefix)"},
	    {"s3://ab", "store: s3 URL: bucket \"ab\": must be 3 to 63 characters"},
	    {"s3://Bucket", "store: s3 URL: bucket \"Bucket\": only a-z, 0-9, '-' and '.' (not at "
			    "either end)"},
	    {"s3://-bucket", "store: s3 URL: bucket \"-bucket\": only a-z, 0-9, '-' and '.' (not "
			     "at either end)"},
	    {"s3://bucket/p?foo=1", "store: s3 URL: unknown option \"foo\" (endpoint, region, "
				    "path_style, insecure)"},
	    {"s3://bucket/p?region", "store: s3 URL: option \"region\" has no value (name=value)"},
	    {"s3://bucket/p?region=a&region=b", "store: s3 URL: option \"region\" given twice"},
	    {"s3://bucket/p?region=US_EAST", "store: s3 URL: region \"US_EAST\": expected a name "
					     "like us-east-1"},
	    {"s3://bucket/p?path_style=yes", "store: s3 URL: path_style=yes: expected 0, 1, true "
					     "or false"},
	    {"s3://bucket/p?endpoint=ftp://h", "store: s3 URL: endpoint \"ftp://h\": must start "
					       "with http:// or https://"},
	    {"s3://bucket/p?endpoint=http://", "store: s3 URL: endpoint \"http:/\": missing host"},
	    {"s3://bucket/p?endpoint=http://h:0", "store: s3 URL: endpoint \"http://h:0\": bad "
						  "port"},
	    {"s3://bucket/p?endpoint=http://h:99999", "store: s3 URL: endpoint "
						      "\"http://h:99999\": bad port"},
	    {"s3://bucket/p?endpoint=http://h/path", "store: s3 URL: endpoint \"http://h/path\": "
						     "only scheme://host[:port] is allowed"},
	    {"s3://bucket/p?endpoint=http://u@h", "store: s3 URL: endpoint \"http://u@h\": only "
						  "scheme://host[:port] is allowed"},
	    {"s3://bucket/p%zz", "store: s3 URL: prefix: bad %-escape"},
	    {"s3://bucket/p%0a", "store: s3 URL: prefix: control character"},
	    {"s3://my.bucket/p", "store: s3 URL: bucket \"my.bucket\" has a '.', which TLS "
				 "virtual-host names cannot carry: add path_style=1"},
	};
	struct kc_s3_url u;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		err[0] = 0;
		if (kc_s3_url_parse(rows[i].url, &u, err, sizeof(err)) == 0)
			fail_msg("%s: accepted", rows[i].url);
		if (strcmp(err, rows[i].err))
			fail_msg("%s:\n got: %s\nwant: %s", rows[i].url, err, rows[i].err);
	}
}

/* A malformed spec is an open error; missing credentials too. Neither sends anything. */
static void test_open_errors(void **state)
{
	struct kc_store_opts o = {.spec = "s3://bucket/p?bogus=1"};
	char err[256];

	(void)state;
	assert_null(kc_store_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown option \"bogus\""));
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	o.spec = "s3://bucket/p?endpoint=http://127.0.0.1:9";
	assert_null(kc_store_open(&o, err, sizeof(err)));
	assert_string_equal(err, "store: s3: no credentials: set AWS_ACCESS_KEY_ID and "
				 "AWS_SECRET_ACCESS_KEY");
}

/* AWS's example "GET Object" (S3 API reference, Signature V4 examples). */
static void test_sigv4_aws_example(void **state)
{
	const char *empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	struct kc_sigv4_hdr h[] = {{"host", "examplebucket.s3.amazonaws.com"},
				   {"range", "bytes=0-9"},
				   {"x-amz-content-sha256", empty},
				   {"x-amz-date", "20130524T000000Z"}};
	struct kc_sigv4 r = {"GET",
			     "/test.txt",
			     "",
			     h,
			     4,
			     empty,
			     "20130524T000000Z",
			     "us-east-1",
			     "s3",
			     "AKIAIOSFODNN7EXAMPLE",
			     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
	char auth[512], hex[65], date[17];

	(void)state;
	assert_int_equal(kc_sigv4_authorization(&r, auth, sizeof(auth)), 0);
	assert_string_equal(auth,
			    "AWS4-HMAC-SHA256 "
			    "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
			    "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;"
			    "x-amz-date,Signature="
			    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	assert_int_equal(kc_sigv4_authorization(&r, auth, 40), -ENOSPC);
	kc_sha256_hex("", 0, hex);
	assert_string_equal(hex, empty);
	kc_amz_date(1369353600, date);
	assert_string_equal(date, "20130524T000000Z");
}

static void test_uri_encode(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(kc_uri_encode("a b/c~d_e.f-g", 13, true, out, sizeof(out)), 15);
	assert_string_equal(out, "a%20b/c~d_e.f-g");
	assert_int_equal(kc_uri_encode("a/\xff", 3, false, out, sizeof(out)), 7);
	assert_string_equal(out, "a%2F%FF");
	assert_int_equal(kc_uri_encode("abcdef", 6, true, out, 6), (size_t)-1);
}

static void test_obj_parse(void **state)
{
	unsigned char obj[KC_STORE_OBJ_HDR + 3 + 5];
	const void *v;
	size_t n;
	char err[160];

	(void)state;
	kc_store_obj_header(obj, "key", 3, "value", 5);
	memcpy(obj + KC_STORE_OBJ_HDR, "key", 3);
	memcpy(obj + KC_STORE_OBJ_HDR + 3, "value", 5);
	assert_int_equal(kc_store_obj_parse(obj, sizeof(obj), "key", 3, &v, &n, err, sizeof(err)),
			 KC_STORE_OBJ_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(v, "value", 5);
	assert_int_equal(kc_store_obj_parse(obj, sizeof(obj), NULL, 0, &v, &n, err, sizeof(err)),
			 KC_STORE_OBJ_OK);
	assert_int_equal(kc_store_obj_parse(obj, sizeof(obj), "kez", 3, &v, &n, err, sizeof(err)),
			 KC_STORE_OBJ_OTHER_KEY);
	assert_int_equal(
	    kc_store_obj_parse(obj, sizeof(obj) - 1, "key", 3, &v, &n, err, sizeof(err)),
	    KC_STORE_OBJ_BAD);
	assert_non_null(strstr(err, "do not match the size"));
	assert_int_equal(kc_store_obj_parse(obj, 10, "key", 3, &v, &n, err, sizeof(err)),
			 KC_STORE_OBJ_BAD);
	obj[4] = 2;
	assert_int_equal(kc_store_obj_parse(obj, sizeof(obj), "key", 3, &v, &n, err, sizeof(err)),
			 KC_STORE_OBJ_BAD);
	assert_non_null(strstr(err, "version 2"));
	obj[4] = 1;
	obj[sizeof(obj) - 1] ^= 1;
	assert_int_equal(kc_store_obj_parse(obj, sizeof(obj), "key", 3, &v, &n, err, sizeof(err)),
			 KC_STORE_OBJ_BAD);
	assert_non_null(strstr(err, "checksum mismatch"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_ok),	cmocka_unit_test(test_url_errors),
	    cmocka_unit_test(test_open_errors), cmocka_unit_test(test_sigv4_aws_example),
	    cmocka_unit_test(test_uri_encode),	cmocka_unit_test(test_obj_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
