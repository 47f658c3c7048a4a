/* test_audit_event.c: the record encoder on events the kernel side can send since issue 13:
 * a string the program could not read is null (never what the buffer held), an io_uring open
 * and a call sent at enter have no result, open_by_handle_at names the file it opened, and the
 * new id and process-memory hooks have their arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_event.h"
#include "core/buf.h"

static char line[8192];

/* Encodes ev and keeps the text in line. */
static const char *encode(const struct kc_audit_event *ev)
{
	struct kc_audit_enrich *e = kc_audit_enrich_new(16, 16, "/nonexistent", "node");
	struct kc_buf b = {0};

	assert_non_null(e);
	assert_int_equal(kc_audit_encode_event(e, ev, "r", 0, &b), 0);
	snprintf(line, sizeof(line), "%.*s", (int)b.len, b.data);
	kc_buf_free(&b);
	kc_audit_enrich_free(e);
	return line;
}

static void has(const char *s, const char *want)
{
	if (!strstr(s, want))
		fail_msg("want '%s' in %s", want, s);
}

static void lacks(const char *s, const char *bad)
{
	if (strstr(s, bad))
		fail_msg("'%s' must not be in %s", bad, s);
}

static struct kc_audit_event ev_of(unsigned hook, unsigned nr)
{
	struct kc_audit_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = KC_REC_EVENT;
	ev.hook = hook;
	ev.nr = nr;
	ev.pid = ev.tid = 42;
	memcpy(ev.comm, "t", 2);
	return ev;
}

static void test_unreadable_string(void **state)
{
	struct kc_audit_event ev = ev_of(KC_HOOK_OPENAT, 257);

	(void)state;
	snprintf(ev.str[0], sizeof(ev.str[0]), "/another/process/file");
	ev.xflags = KC_EVX_STR0_FAULT;
	ev.ret = 3;
	has(encode(&ev), "\"path\":null");
	lacks(line, "/another/process/file");
	has(line, "\"ret\":3,");
}

static void test_uring_and_early(void **state)
{
	struct kc_audit_event ev = ev_of(KC_HOOK_OPENAT, 18);

	(void)state;
	snprintf(ev.str[0], sizeof(ev.str[0]), "/etc/shadow");
	ev.xflags = KC_EVX_URING;
	ev.ret = 0;
	has(encode(&ev), "\"name\":\"IORING_OP_OPENAT\",\"nr\":18,\"hook\":\"openat\"");
	has(line, "\"io_uring\":true,\"ret\":null,\"error\":null");
	has(line, "\"path\":\"/etc/shadow\"");
	ev = ev_of(KC_HOOK_OPENAT, 257);
	ev.xflags = KC_EVX_EARLY;
	ev.ret = -13; /* not known in fact: the encoder must not print it */
	has(encode(&ev), "\"ret\":null,\"error\":null");
	lacks(line, "io_uring");
}

static void test_new_hooks(void **state)
{
	struct kc_audit_event ev = ev_of(KC_HOOK_OPEN_BY_HANDLE_AT, 304);
	uint32_t h[2] = {8, 1}, g[3] = {0, 4, 27};

	(void)state;
	memcpy(ev.aux, h, sizeof(h));
	ev.args[0] = 3;
	snprintf(ev.str[1], sizeof(ev.str[1]), "/etc/shadow");
	ev.ret = 5;
	has(encode(&ev), "\"path\":null"); /* str[1] is not the fd's path unless flagged */
	ev.xflags = KC_EVX_FDPATH;
	has(encode(&ev), "\"mount_fd\":3,\"handle_bytes\":8,\"handle_type\":1,\"flags\":\"0x0\","
			 "\"path\":\"/etc/shadow\"");
	ev = ev_of(KC_HOOK_SETGROUPS, 116);
	ev.args[0] = 3;
	memcpy(ev.aux, g, sizeof(g));
	has(encode(&ev), "\"size\":3,\"groups\":[0,4,27]");
	ev = ev_of(KC_HOOK_SETREGID, 114);
	ev.args[0] = 5;
	ev.args[1] = 0;
	has(encode(&ev), "\"rgid\":5,\"egid\":0");
	ev = ev_of(KC_HOOK_PROCESS_VM_READV, 310);
	ev.args[0] = 77;
	ev.args[2] = 1;
	ev.args[4] = 2;
	has(encode(&ev), "\"pid\":77,\"liovcnt\":1,\"riovcnt\":2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unreadable_string),
	    cmocka_unit_test(test_uring_and_early),
	    cmocka_unit_test(test_new_hooks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
