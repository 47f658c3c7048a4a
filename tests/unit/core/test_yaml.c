/* test_yaml: the one YAML reader (core/yaml.c): safe file loading, the event stream and the
 * document, and the "file:line: ..." error path, also through the three readers that use it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit_policy.h"
#include "core/config.h"
#include "core/yaml.h"
#include "netpol/policy_file.h"

static char dir[] = "/tmp/kc_test_yaml_XXXXXX";
static char path[256], fifo[256], sub[256];

static int setup(void **state)
{
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f.yaml", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	/* A reader that blocks on the FIFO fails the test instead of hanging it. */
	alarm(10);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	unlink(fifo);
	rmdir(sub);
	rmdir(dir);
	return 0;
}

static void write_file(const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_read_file(void **state)
{
	char err[512], want[512], *buf = (char *)1;
	size_t len = 99;

	write_file("a: 1\n");
	assert_int_equal(kc_yaml_read_file(path, 100, &buf, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 5);
	assert_string_equal(buf, "a: 1\n");
	free(buf);

	/* The cap: exactly max is fine, one more is not. */
	assert_int_equal(kc_yaml_read_file(path, 5, &buf, &len, err, sizeof(err)), 0);
	free(buf);
	assert_int_equal(kc_yaml_read_file(path, 4, &buf, &len, err, sizeof(err)), -EFBIG);
	assert_null(buf);
	snprintf(want, sizeof(want), "%s:1: expected at most 4 bytes, got 5", path);
	assert_string_equal(err, want);

	assert_int_equal(kc_yaml_read_file(sub, 100, &buf, &len, err, sizeof(err)), -EINVAL);
	assert_null(buf);
	snprintf(want, sizeof(want), "%s:1: expected a regular file, got a directory", sub);
	assert_string_equal(err, want);

	/* No writer: a blocking open would wait forever (the alarm fails the test). */
	assert_int_equal(kc_yaml_read_file(fifo, 100, &buf, &len, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: expected a regular file, got a FIFO", fifo);
	assert_string_equal(err, want);

	assert_int_equal(kc_yaml_read_file("/dev/null", 100, &buf, &len, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "/dev/null:1: expected a regular file, got a character device");

	snprintf(want, sizeof(want), "%s/missing", dir);
	assert_int_equal(kc_yaml_read_file(want, 100, &buf, &len, err, sizeof(err)), -ENOENT);
	strcat(want, ": No such file or directory");
	assert_string_equal(err, want);
}

static void test_events(void **state)
{
	static const char text[] = "a: 1\nb: [x, y]\n";
	static const yaml_event_type_t want[] = {
	    YAML_STREAM_START_EVENT,   YAML_DOCUMENT_START_EVENT, YAML_MAPPING_START_EVENT,
	    YAML_SCALAR_EVENT,	       YAML_SCALAR_EVENT,	  YAML_SCALAR_EVENT,
	    YAML_SEQUENCE_START_EVENT, YAML_SCALAR_EVENT,	  YAML_SCALAR_EVENT,
	    YAML_SEQUENCE_END_EVENT,   YAML_MAPPING_END_EVENT,	  YAML_DOCUMENT_END_EVENT,
	    YAML_STREAM_END_EVENT};
	struct kc_yaml y;
	char err[256] = "";

	assert_int_equal(kc_yaml_open(&y, "t.yaml", text, strlen(text), err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(kc_yaml_next(&y), 0);
		assert_int_equal(y.ev.type, want[i]);
		if (i == 5) { /* "b" */
			assert_string_equal((char *)y.ev.data.scalar.value, "b");
			assert_int_equal(kc_yaml_line(&y), 2);
		}
		if (i == 6)
			assert_string_equal(kc_yaml_kind(y.ev.type), "a list");
	}
	kc_yaml_close(&y);
}

/* Runs the stream to its end or first error; returns what kc_yaml_next returned. */
static int drain(const char *text, char *err, size_t errlen)
{
	struct kc_yaml y;
	int rc = kc_yaml_open(&y, "bad.yaml", text, strlen(text), err, errlen);

	while (!rc) {
		rc = kc_yaml_next(&y);
		if (!rc && y.ev.type == YAML_STREAM_END_EVENT)
			break;
	}
	kc_yaml_close(&y);
	return rc;
}

static void test_stream_errors(void **state)
{
	char err[256] = "";

	assert_int_equal(drain("a: 1\nb: 2\nc: [1, 2\n", err, sizeof(err)), -EINVAL);
	assert_true(strncmp(err, "bad.yaml:4: ", 12) == 0);
	assert_int_equal(drain("a: &x 1\nb: *x\n", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "bad.yaml:2: aliases are not supported");
	assert_int_equal(drain("a: 1\n\tb: 2\n", err, sizeof(err)), -EINVAL);
	assert_true(strncmp(err, "bad.yaml:2: ", 12) == 0);
}

static void test_document(void **state)
{
	yaml_document_t doc;
	yaml_node_t *root, *v;
	char err[256] = "";

	assert_int_equal(kc_yaml_load(&doc, "d.yaml", "x: 1\ny:\n  - z\n", 14, err, sizeof(err)),
			 0);
	root = yaml_document_get_root_node(&doc);
	assert_non_null(root);
	assert_int_equal(root->type, YAML_MAPPING_NODE);
	v = yaml_document_get_node(&doc, root->data.mapping.pairs.start[1].value);
	assert_int_equal(v->type, YAML_SEQUENCE_NODE);
	assert_int_equal(kc_yaml_node_line(v), 3);
	assert_int_equal(kc_yaml_node_line(NULL), 0);
	yaml_document_delete(&doc);

	assert_int_equal(kc_yaml_load(&doc, "d.yaml", "x: 1\ny: [\n", 10, err, sizeof(err)),
			 -EINVAL);
	assert_true(strncmp(err, "d.yaml:3: ", 10) == 0);

	assert_int_equal(kc_yaml_errf(err, sizeof(err), "f", 7, "%s: expected %s, got '%s'", "k",
				      "a number", "x"),
			 -EINVAL);
	assert_string_equal(err, "f:7: k: expected a number, got 'x'");
}

/* The three readers all load through kc_yaml_read_file: none blocks on a FIFO or reads a
 * directory, and each says so with the file's name. */
static void test_readers(void **state)
{
	struct kc_config cfg;
	struct kc_pol_spec spec;
	char err[512], want[512];
	const char *const targets[] = {fifo, sub};
	const char *const kinds[] = {"a FIFO", "a directory"};

	for (int i = 0; i < 2; i++) {
		snprintf(want, sizeof(want), "%s:1: expected a regular file, got %s", targets[i],
			 kinds[i]);
		kc_config_defaults(&cfg);
		assert_int_equal(kc_config_load_yaml(&cfg, targets[i], err, sizeof(err)), -EINVAL);
		assert_string_equal(err, want);
		assert_int_equal(kc_pol_parse_file(&spec, targets[i], 16, err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, want);
		kc_pol_spec_free(&spec);
		errno = 0;
		assert_null(kc_audit_policy_load(targets[i], err, sizeof(err)));
		assert_int_equal(errno, EINVAL);
		assert_string_equal(err, want);
	}
	/* And a YAML error through each carries file:line. */
	write_file("port: 11211\nport: [1\n");
	kc_config_defaults(&cfg);
	assert_int_equal(kc_config_load_yaml(&cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: ", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	write_file("rules:\n  - action: allow\n    prefix: [\n");
	assert_int_equal(kc_pol_parse_file(&spec, path, 16, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	kc_pol_spec_free(&spec);
	assert_null(kc_audit_policy_load(path, err, sizeof(err)));
	assert_true(strncmp(err, want, strlen(want)) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_file),	  cmocka_unit_test(test_events),
	    cmocka_unit_test(test_stream_errors), cmocka_unit_test(test_document),
	    cmocka_unit_test(test_readers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
