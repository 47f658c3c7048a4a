/* test_audit_sink_files.c: the file sink never follows a symlink someone planted beside the audit
 * log (issue 13, item 14): not at <log>.checkpoint.tmp (root used to truncate and overwrite its
 * target), not at <log> (root used to create the file wherever it pointed); and it refuses a
 * folder anyone may write to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit_chain.h"
#include "audit/audit_sink.h"

static char dir[64], alog[128], target[128], tmpf[160], ckf[160], err[300];
static struct kc_audit_key key = {.k = "0123456789abcdef0123456789abcdef", .len = 32};

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kc-asink-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(alog, sizeof(alog), "%s/audit.log", dir);
	snprintf(target, sizeof(target), "%s/precious", dir);
	snprintf(tmpf, sizeof(tmpf), "%s.checkpoint.tmp", alog);
	snprintf(ckf, sizeof(ckf), "%s.checkpoint", alog);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(alog);
	unlink(target);
	unlink(tmpf);
	unlink(ckf);
	chmod(dir, 0700);
	return rmdir(dir);
}

static struct kc_audit_sink *start(void)
{
	struct kc_audit_sink_cfg c = {.kind = KC_SINK_FILE,
				      .path = alog,
				      .max_files = 2,
				      .queue_bytes = 1 << 20,
				      .checkpoint_s = 3600,
				      .key = &key,
				      .node = "test"};

	return kc_audit_sink_start(&c, err, sizeof(err));
}

static void write_target(void)
{
	FILE *f = fopen(target, "w");

	assert_non_null(f);
	fputs("precious", f);
	fclose(f);
}

static void check_target(void)
{
	char buf[32] = "";
	FILE *f = fopen(target, "r");

	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "precious");
}

static void test_checkpoint_tmp_symlink(void **state)
{
	struct kc_audit_sink *s;
	struct stat st;

	(void)state;
	write_target();
	assert_int_equal(symlink(target, tmpf), 0);
	s = start();
	assert_non_null(s);
	kc_audit_sink_stop(s); /* its final checkpoint goes to the sidecar */
	check_target();
	assert_int_equal(lstat(ckf, &st), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_size > 0);
}

static void test_log_symlink(void **state)
{
	(void)state;
	assert_int_equal(symlink(target, alog), 0); /* a target that does not exist yet */
	assert_null(start());
	assert_non_null(strstr(err, "audit log"));
	assert_int_equal(access(target, F_OK), -1);
}

static void test_open_folder(void **state)
{
	(void)state;
	assert_int_equal(chmod(dir, 0777), 0);
	assert_null(start());
	assert_int_equal(chmod(dir, 01777), 0); /* sticky and ours: fine */
	struct kc_audit_sink *s = start();

	assert_non_null(s);
	kc_audit_sink_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_checkpoint_tmp_symlink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_symlink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_folder, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
