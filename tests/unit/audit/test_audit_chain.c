/* test_audit_chain.c: sealing, parsing and verifying audit chains without a daemon: an intact
 * chain verifies; a modified, deleted, inserted or swapped record, a torn last line, a wrong
 * key and truncation against a kept checkpoint each give the exact first bad seq; a chain
 * resumes from a file's last record. */
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

#define N 12

static char dir[64], keyf[128], logfile[128], ckf[128];
static char *lines[N + 1]; /* lines[seq], seq 1..N */

static void write_file(const char *path, int skip, int swap, int insert_after, int upto)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (int s = 1; s <= upto; s++) {
		int i = s;

		if (s == skip)
			continue;
		if (swap && s == swap)
			i = swap + 1;
		else if (swap && s == swap + 1)
			i = swap;
		fputs(lines[i], f);
		if (s == insert_after) {
			char *forged = strdup(lines[s + 1]);

			forged[strlen(forged) - 20] ^= 1; /* flip a mac digit's low bit */
			fputs(forged, f);
			free(forged);
		}
	}
	fclose(f);
}

static int verify(char *out, size_t outlen, int with_ck)
{
	char err[256];
	char *files[2] = {logfile, ckf};

	return kc_audit_verify(keyf, files, with_ck ? 2 : 1, out, outlen, err, sizeof(err));
}

static int setup(void **state)
{
	struct kc_audit_key key;
	struct kc_audit_chain c = {.key = &key};
	char err[256];
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kc-chain-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(keyf, sizeof(keyf), "%s/key", dir);
	snprintf(logfile, sizeof(logfile), "%s/log", dir);
	snprintf(ckf, sizeof(ckf), "%s/log.checkpoint", dir);
	fd = open(keyf, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef!", 33), 33);
	close(fd);
	assert_int_equal(kc_audit_key_load(keyf, &key, err, sizeof(err)), 0);
	for (int s = 1; s <= N; s++) {
		struct kc_buf b = {0};
		unsigned char mac[KC_AUDIT_MAC_LEN];
		char m[128];

		snprintf(m, sizeof(m), "\"time\":\"t%d\",\"type\":\"%s\",\"n\":%d", s,
			 s == N ? "checkpoint" : "syscall", s * 7);
		assert_int_equal(kc_audit_chain_seal(&c, m, strlen(m), &b, mac), 0);
		kc_audit_chain_commit(&c, mac);
		assert_int_equal(kc_buf_append(&b, "", 1), 0);
		lines[s] = b.data;
	}
	{ /* The kept checkpoint is record N. */
		FILE *f = fopen(ckf, "w");

		fputs(lines[N], f);
		fclose(f);
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[200];

	(void)state;
	for (int s = 1; s <= N; s++)
		free(lines[s]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void expect(int rc_want, const char *prefix, int with_ck)
{
	char out[512];
	int rc = verify(out, sizeof(out), with_ck);

	if (rc != rc_want || strncmp(out, prefix, strlen(prefix)))
		fail_msg("want %d '%s', got %d '%s'", rc_want, prefix, rc, out);
}

static void test_intact(void **state)
{
	struct kc_audit_chain c;

	(void)state;
	write_file(logfile, 0, 0, 0, N);
	expect(0, "OK: 12 records, seq 1..12, 1 checkpoints", 1);
	assert_int_equal(kc_audit_chain_resume(&c, logfile), 0);
	assert_int_equal(c.seq, N);
}

static void test_tampering(void **state)
{
	(void)state;
	write_file(logfile, 0, 0, 0, N);
	{ /* modified: one byte of record 4 */
		char *l = lines[4], *p = strstr(l, "\"n\":28"), was = p[5];

		p[5] = '9';
		write_file(logfile, 0, 0, 0, N);
		p[5] = was;
		expect(1, "FAIL: seq 4: mac mismatch", 1);
	}
	write_file(logfile, 6, 0, 0, N);
	expect(1, "FAIL: seq 6: missing", 1);
	write_file(logfile, 0, 0, 7, N);
	expect(1, "FAIL: seq 8: mac mismatch", 1);
	write_file(logfile, 0, 9, 0, N);
	expect(1, "FAIL: seq 9: missing: found seq 10", 1);
	write_file(logfile, 0, 0, 0, N - 2);
	expect(1, "FAIL: seq 11: truncated", 1);
	expect(0, "OK: 10 records", 0); /* without the kept checkpoint it cannot tell */
	{				/* a torn last line */
		FILE *f;

		write_file(logfile, 0, 0, 0, N - 1);
		f = fopen(logfile, "a");
		fwrite(lines[N], 1, 40, f);
		fclose(f);
		expect(1, "FAIL: seq 12: truncated record", 0);
	}
}

static void test_wrong_key(void **state)
{
	int fd;

	(void)state;
	write_file(logfile, 0, 0, 0, N);
	fd = open(keyf, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "another key another key another key", 35), 35);
	close(fd);
	expect(1, "FAIL: seq 1: mac mismatch", 0);
	chmod(keyf, 0644);
	{
		char out[256], err[256];
		char *files[1] = {logfile};

		assert_true(kc_audit_verify(keyf, files, 1, out, sizeof(out), err, sizeof(err)) <
			    0);
		assert_non_null(strstr(err, "chmod 600"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_intact),
	    cmocka_unit_test(test_tampering),
	    cmocka_unit_test(test_wrong_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
