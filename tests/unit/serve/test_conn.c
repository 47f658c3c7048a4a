/* test_conn: the TCP connection's state machine (serve/conn.c): the transition table, the
 * assert on an illegal move, the drive loop's decision, and the states a real connection goes
 * through. The connection is real (kc_conn_on_accept on a Unix-domain listener in the abstract
 * namespace, a private event base pumped by the test, no root, no port); the lower tiers are
 * fake_tiers.h, completed by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/metrics.h"
#define FAKE_MAX 40000 /* test_wait_many_sets: more waits than KC_OUT_SOFT / "STORED\r\n" */
#include "fake_tiers.h"
#include "serve/conn.h"

static struct kc_tiers *const T = (struct kc_tiers *)&fake; /* any non-NULL handle */

/* ---- the table, independent of conn.c's -------------------------------------------------- */

#define R  KC_CONN_READING
#define N  KC_CONN_NEW
#define U  KC_CONN_RUNNING
#define W  KC_CONN_WRITING
#define WC KC_CONN_WAIT_CALL
#define WE KC_CONN_WAIT_EARLY
#define WT KC_CONN_WAITING
#define L  KC_CONN_LINGER
#define C  KC_CONN_CLOSED

static const struct {
	enum kc_conn_state from, to;
} legal[] = {
    {N, R}, {R, U}, {R, C},   {U, R},	{U, W},	 {U, WC}, {U, L},  {U, C},
    {W, U}, {W, C}, {WC, WE}, {WC, WT}, {WE, U}, {WT, U}, {WT, C}, {L, C},
};

static void test_transition_table(void **state)
{
	(void)state;
	for (int from = 0; from < KC_CONN_NSTATES; from++)
		for (int to = 0; to < KC_CONN_NSTATES; to++) {
			bool want = false;

			for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++)
				want |= legal[i].from == (enum kc_conn_state)from &&
					legal[i].to == (enum kc_conn_state)to;
			if (kc_conn_transition_ok(from, to) != want)
				fail_msg("%s -> %s: table says %d, expected %d",
					 kc_conn_state_name(from), kc_conn_state_name(to),
					 kc_conn_transition_ok(from, to), want);
		}
	/* the moves that would hide a bug */
	assert_false(kc_conn_transition_ok(U, U));   /* conn_drive re-entered */
	assert_false(kc_conn_transition_ok(WC, U));  /* kc_pend_run returned without a decision */
	assert_false(kc_conn_transition_ok(WT, WE)); /* a late done treated as an early one */
	assert_false(kc_conn_transition_ok(R, W));
	assert_false(kc_conn_transition_ok(L, R)); /* lingering is final */
	assert_false(kc_conn_transition_ok(KC_CONN_NSTATES, R));
	assert_false(kc_conn_transition_ok(R, KC_CONN_NSTATES));
	assert_false(kc_conn_transition_ok((enum kc_conn_state) - 1, R));
	assert_string_equal(kc_conn_state_name(WT), "WAITING");
	assert_string_equal(kc_conn_state_name(KC_CONN_NSTATES), "?");
}

static void test_after_write(void **state)
{
	static const struct {
		bool close, eof, progress;
		enum kc_conn_state want;
	} rows[] = {
	    {false, false, false, R}, {false, false, true, U}, {false, true, false, C},
	    {false, true, true, U},   {true, false, false, L}, {true, false, true, L},
	    {true, true, false, C},   {true, true, true, C},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (kc_conn_after_write(rows[i].close, rows[i].eof, rows[i].progress) !=
		    rows[i].want)
			fail_msg("close %d eof %d progress %d: %s, expected %s", rows[i].close,
				 rows[i].eof, rows[i].progress,
				 kc_conn_state_name(kc_conn_after_write(rows[i].close, rows[i].eof,
									rows[i].progress)),
				 kc_conn_state_name(rows[i].want));
}

/* ---- a real connection ----------------------------------------------------------------------- */

struct fixture {
	struct kc_mem *mem;
	struct kc_proto_env env;
	_Atomic uint64_t curr, total;
	struct kc_worker w;
	int lfd, cfd;
	struct kc_buf got; /* what the client received */
	struct kc_conn_budget budget;
};

static struct kc_stats *stats;

static int setup_with(void **state, struct kc_tiers *tiers)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static int seq;
	socklen_t len;
	int n;

	assert_non_null(f);
	if (!stats)
		stats = kc_stats_new();
	fake_reset(tiers);
	f->mem = kc_mem_new(16 << 20, 1 << 20);
	f->env = (struct kc_proto_env){.mem = f->mem,
				       .item_max = 1 << 20,
				       .threads = 1,
				       .curr_conns = &f->curr,
				       .total_conns = &f->total};
	f->w = (struct kc_worker){.base = event_base_new(),
				  .stats = stats,
				  .env = &f->env,
				  .max_conns = 8,
				  .tiers = tiers,
				  .budget = &f->budget,
				  .tcp_fd = -1,
				  .udp_fd = -1};
	assert_non_null(f->mem);
	assert_non_null(f->w.base);
	/* abstract namespace: nothing in the file system to clean up */
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "kc-test-conn-%d-%d", getpid(),
		     seq++);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	f->cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->cfd >= 0);
	assert_int_equal(connect(f->cfd, (struct sockaddr *)&sa, len), 0);
	kc_conn_on_accept(f->lfd, EV_READ, &f->w);
	assert_non_null(f->w.conns);
	assert_int_equal(f->curr, 1);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

static int setup_tiers(void **state)
{
	return setup_with(state, T);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kc_conn_close_all(&f->w);
	assert_int_equal(f->curr, 0);
	assert_int_equal(atomic_load(&f->budget.used), 0); /* every buffer given back */
	close(f->cfd);
	close(f->lfd);
	kc_buf_free(&f->w.udp_out);
	event_base_free(f->w.base);
	kc_mem_free(f->mem);
	kc_buf_free(&f->got);
	free(f);
	return 0;
}

static enum kc_conn_state st(struct fixture *f)
{
	assert_non_null(f->w.conns);
	return kc_conn_get_state(f->w.conns);
}

#define assert_state(f, s)                                                                         \
	do {                                                                                       \
		enum kc_conn_state got_ = st(f);                                                   \
		if (got_ != (s))                                                                   \
			fail_msg("state %s, expected %s", kc_conn_state_name(got_),                \
				 kc_conn_state_name(s));                                           \
	} while (0)

/* Runs what the worker's loop has ready, a few rounds. */
static void pump(struct fixture *f)
{
	for (int i = 0; i < 4; i++)
		event_base_loop(f->w.base, EVLOOP_NONBLOCK);
}

static void send_str(struct fixture *f, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(write(f->cfd, s, n), (ssize_t)n);
}

/* Reads what the client has; returns false on EOF. */
static bool client_read(struct fixture *f)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(f->cfd, buf, sizeof(buf))) > 0)
		assert_int_equal(kc_buf_append(&f->got, buf, (size_t)n), 0);
	if (n == 0)
		return false;
	assert_true(errno == EAGAIN);
	return true;
}

/* Pumps until the client got at least n bytes (at most about 5 s); then compares and forgets
 * them. */
static void expect_reply(struct fixture *f, const char *want)
{
	size_t n = strlen(want);

	for (int i = 0; i < 5000 && kc_buf_avail(&f->got) < n; i++) {
		pump(f);
		if (!client_read(f))
			break;
		if (kc_buf_avail(&f->got) < n)
			usleep(1000);
	}
	if (kc_buf_avail(&f->got) != n || memcmp(kc_buf_head(&f->got), want, n))
		fail_msg("got %zu bytes \"%.*s\", expected \"%s\"", kc_buf_avail(&f->got),
			 (int)(kc_buf_avail(&f->got) > 200 ? 200 : kc_buf_avail(&f->got)),
			 kc_buf_head(&f->got), want);
	kc_buf_consume(&f->got, n);
}

static void expect_nothing(struct fixture *f)
{
	pump(f);
	assert_true(client_read(f));
	assert_int_equal(kc_buf_avail(&f->got), 0);
}

/* A child that moves the connection illegally dies of the assert; a legal move does not. */
static void test_illegal_asserts(void **state)
{
	struct fixture *f = *state;
	int status;
	pid_t pid;

	assert_state(f, R);
	for (int legal_move = 0; legal_move < 2; legal_move++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct rlimit no_core = {0, 0};

			setrlimit(RLIMIT_CORE, &no_core); /* the abort is expected */
			kc_conn_set_state(f->w.conns, legal_move ? U : W);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (legal_move) {
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		} else {
			assert_true(WIFSIGNALED(status));
			assert_int_equal(WTERMSIG(status), SIGABRT);
		}
	}
	assert_state(f, R); /* the parent's connection did not move */
}

/* Requests in, replies out, back to READING; a partial line waits in READING. */
static void test_request_reply(void **state)
{
	struct fixture *f = *state;

	send_str(f, "set a 0 0 1\r\nx\r\nget a\r\n");
	expect_reply(f, "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
	assert_state(f, R);
	send_str(f, "get a");
	expect_nothing(f);
	assert_state(f, R);
	send_str(f, "\r\n");
	expect_reply(f, "VALUE a 0 1\r\nx\r\nEND\r\n");
	assert_state(f, R);
}

/* The connection's own socket: the one with the listener's name that is not listening. */
static int server_fd(struct fixture *f)
{
	struct sockaddr_un want, got;
	socklen_t wl = sizeof(want), gl;
	int found = -1, acc, fd;

	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&want, &wl), 0);
	for (fd = 3; fd < 1024; fd++) {
		socklen_t al = sizeof(acc);

		gl = sizeof(got);
		if (fd == f->lfd || getsockname(fd, (struct sockaddr *)&got, &gl) || gl != wl ||
		    memcmp(&got, &want, wl) ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) || acc)
			continue;
		assert_int_equal(found, -1);
		found = fd;
	}
	assert_true(found >= 0);
	return found;
}

/* Completes every fake write not completed yet; returns how many are done in all. */
static int complete_writes(void)
{
	int done = 0;

	for (int i = 0; i < fake.n; i++) {
		if (!fake.calls[i].completed && fake.calls[i].kind == FAKE_WRITE)
			fake_written(i, NULL);
		done += fake.calls[i].completed;
	}
	return done;
}

/* Sends all of s, pumping the worker while the socket is full (the connection may be
 * WAITING or WRITING meanwhile and read only part of it). complete: completes the fake
 * tiers' writes as they come, as a disk that keeps up would. */
static void send_all(struct fixture *f, const char *s, size_t n, bool complete)
{
	for (int i = 0; n && i < 200000; i++) {
		ssize_t k = write(f->cfd, s, n);

		if (k > 0) {
			s += k;
			n -= (size_t)k;
			continue;
		}
		assert_true(k < 0 && errno == EAGAIN);
		pump(f);
		if (complete)
			complete_writes();
		assert_true(client_read(f));
	}
	assert_int_equal(n, 0);
}

/* Pumps, reads and (with tiers) completes writes until the client holds `want` bytes or
 * nothing moves for a while; returns how often the connection was seen WRITING. */
static int drain_until(struct fixture *f, size_t want, bool complete)
{
	int writing = 0, idle = 0;

	while (kc_buf_avail(&f->got) < want && idle < 2000) {
		size_t before = kc_buf_avail(&f->got);

		if (f->w.conns)
			writing += st(f) == W;
		pump(f);
		if (complete)
			complete_writes();
		assert_true(client_read(f));
		idle = kc_buf_avail(&f->got) == before ? idle + 1 : 0;
		if (idle > 1000)
			usleep(1000); /* a bounded wait, only to turn a hang into a failure */
	}
	return writing;
}

/* A client that does not read: WRITING; once it reads, every reply comes, in order, and the
 * connection is READING again. With vlen = 100 KiB and 30 gets the replies are far over
 * KC_OUT_SOFT: a round that resumes from WRITING must measure the limit by bytes still unsent
 * (kc_buf_consume resets out only once it is empty), and a round that parsed nothing because
 * the output was over it must parse again once the output drained (issue 13, item 1: only 3
 * of 30 replies came). With tiers, a set that waits for durability sits between the gets. */
static void backpressure(struct fixture *f, int vlen, int gets, bool sets)
{
	char *val = malloc((size_t)vlen + 1), hdr[64];
	struct kc_buf req = {0};
	size_t per, total;
	int small = 16 << 10, writing;

	memset(val, 'v', (size_t)vlen);
	val[vlen] = 0;
	assert_int_equal(setsockopt(server_fd(f), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	snprintf(hdr, sizeof(hdr), "set big 0 0 %d\r\n", vlen);
	send_str(f, hdr);
	send_all(f, val, (size_t)vlen, false);
	send_str(f, "\r\n");
	if (sets) {
		pump(f);
		assert_state(f, WT);
		complete_writes();
	}
	expect_reply(f, "STORED\r\n");
	for (int i = 0; i < gets; i++) {
		kc_buf_puts(&req, "get big\r\n");
		if (sets)
			kc_buf_printf(&req, "set s%d 0 0 1\r\nv\r\n", i);
	}
	send_all(f, kc_buf_head(&req), kc_buf_avail(&req), sets);
	pump(f);
	assert_state(f, sets ? WT : W);
	snprintf(hdr, sizeof(hdr), "VALUE big 0 %d\r\n", vlen);
	per = strlen(hdr) + (size_t)vlen + 2 + 5 + (sets ? 8 : 0);
	writing = drain_until(f, per * (size_t)gets, sets);
	total = kc_buf_avail(&f->got);
	if (total != per * (size_t)gets)
		fail_msg("%zu of %zu reply bytes (%zu of %d replies), state %s", total,
			 per * (size_t)gets, total / per, gets, kc_conn_state_name(st(f)));
	for (int i = 0; i < gets; i++) {
		const char *p = kc_buf_head(&f->got) + (size_t)i * per;

		assert_memory_equal(p, hdr, strlen(hdr));
		assert_memory_equal(p + strlen(hdr), val, (size_t)vlen);
		assert_memory_equal(p + strlen(hdr) + (size_t)vlen, "\r\nEND\r\n", 7);
		if (sets)
			assert_memory_equal(p + per - 8, "STORED\r\n", 8);
	}
	assert_true(writing > 0); /* WRITING while the client had not read it all */
	assert_state(f, R);
	f->got.len = f->got.off = 0;
	kc_buf_free(&req);
	free(val);
}

static void test_backpressure(void **state)
{
	backpressure(*state, 40 << 10, 5, false);
}

static void test_backpressure_over_soft(void **state)
{
	enum { VAL = 100 << 10, GETS = 30 };

	assert_true((size_t)VAL * GETS > 2 * KC_OUT_SOFT);
	backpressure(*state, VAL, GETS, false);
}

static void test_backpressure_waiting(void **state)
{
	backpressure(*state, 100 << 10, 30, true);
}

/* Pipelined sets, each waiting for durability, more than KC_OUT_SOFT of "STORED\r\n" in all,
 * and a client that reads: every reply comes (issue 13, item 1: replies made during the waits
 * piled up to KC_OUT_SOFT, then a wait that ended over it parsed nothing and went READING with
 * complete sets buffered: 98,304 of 100,000 replies, then a hang). */
static void test_wait_many_sets(void **state)
{
	enum { SETS = KC_OUT_SOFT / 8 + 1000 };
	struct fixture *f = *state;
	struct kc_buf req = {0};
	int big = 1 << 20, got;
	socklen_t gl = sizeof(got);

	assert_true(SETS < FAKE_MAX);
	/* a socket that takes KC_OUT_SOFT in one write, as TCP on loopback does: the round that
	 * held its input back then drains all output at once and must not go READING */
	assert_int_equal(setsockopt(server_fd(f), SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	assert_int_equal(getsockopt(server_fd(f), SOL_SOCKET, SO_SNDBUF, &got, &gl), 0);
	assert_true(got > KC_OUT_SOFT + 4096);
	for (int i = 0; i < SETS; i++)
		kc_buf_printf(&req, "set k%d 0 0 1\r\nv\r\n", i % 100);
	/* all of it buffered while the first set waits (it is under the input limit), so no
	 * later input can wake a connection that stopped */
	send_all(f, kc_buf_head(&req), kc_buf_avail(&req), false);
	assert_int_equal(fake_count(FAKE_WRITE), 1);
	drain_until(f, (size_t)SETS * 8, true);
	if (kc_buf_avail(&f->got) != (size_t)SETS * 8)
		fail_msg("%zu of %d replies, state %s, %d writes", kc_buf_avail(&f->got) / 8, SETS,
			 kc_conn_state_name(st(f)), fake_count(FAKE_WRITE));
	for (int i = 0; i < SETS; i++)
		assert_memory_equal(kc_buf_head(&f->got) + (size_t)i * 8, "STORED\r\n", 8);
	assert_state(f, R);
	f->got.len = f->got.off = 0;
	kc_buf_free(&req);
}

/* quit before the client's EOF: LINGER (our side shut down, input discarded), then CLOSED at
 * its EOF. */
static void test_quit_lingers(void **state)
{
	struct fixture *f = *state;

	send_str(f, "get a\r\nquit\r\nget b\r\n");
	expect_reply(f, "END\r\n");
	assert_state(f, L);
	for (int i = 0; i < 100 && client_read(f); i++)
		pump(f);
	assert_false(client_read(f)); /* our side is shut down */
	send_str(f, "get c\r\n");     /* discarded */
	pump(f);
	assert_state(f, L);
	assert_int_equal(kc_buf_avail(&f->got), 0);
	shutdown(f->cfd, SHUT_WR);
	pump(f);
	assert_null(f->w.conns);
	assert_int_equal(f->curr, 0);
}

/* The client's EOF after its requests: they are answered, then CLOSED. */
static void test_eof_answers_then_closes(void **state)
{
	struct fixture *f = *state;

	send_str(f, "get a\r\nget b\r\n");
	shutdown(f->cfd, SHUT_WR);
	expect_reply(f, "END\r\nEND\r\n");
	pump(f);
	assert_null(f->w.conns);
	assert_false(client_read(f));
}

/* The buffer budget (issue 13, item 12): a client that sends many gets of a large value and
 * does not read keeps the connection's buffers within the budget (pre-budget: KC_OUT_SOFT
 * plus a reply of output and the request's input, 640 KiB here); once it reads, every reply
 * comes, in order, and the buffers are given back. */
static void test_budget_non_reader(void **state)
{
	enum { VAL = 100 << 10, GETS = 30, LIMIT = 512 << 10 };
	struct fixture *f = *state;
	char *val = malloc(VAL + 1), hdr[64];
	struct kc_buf req = {0};
	uint64_t most = 0;
	size_t per;
	int small = 16 << 10;

	f->budget.limit = LIMIT;
	memset(val, 'v', VAL);
	val[VAL] = 0;
	assert_int_equal(setsockopt(server_fd(f), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	snprintf(hdr, sizeof(hdr), "set big 0 0 %d\r\n", VAL);
	send_str(f, hdr);
	send_all(f, val, VAL, false);
	send_str(f, "\r\n");
	expect_reply(f, "STORED\r\n");
	for (int i = 0; i < GETS; i++)
		kc_buf_puts(&req, "get big\r\n");
	send_all(f, kc_buf_head(&req), kc_buf_avail(&req), false);
	for (int i = 0; i < 50; i++) { /* the client reads nothing meanwhile */
		pump(f);
		if (atomic_load(&f->budget.used) > most)
			most = atomic_load(&f->budget.used);
		usleep(2000);
	}
	if (most > LIMIT)
		fail_msg("connection buffers %llu bytes, budget %d", (unsigned long long)most,
			 LIMIT);
	snprintf(hdr, sizeof(hdr), "VALUE big 0 %d\r\n", VAL);
	per = strlen(hdr) + VAL + 2 + 5;
	drain_until(f, per * GETS, false);
	assert_int_equal(kc_buf_avail(&f->got), per * GETS);
	for (int i = 0; i < GETS; i++)
		assert_memory_equal(kc_buf_head(&f->got) + (size_t)i * per, hdr, strlen(hdr));
	assert_state(f, R);
	assert_true(atomic_load(&f->budget.used) <= 128 << 10); /* KEEP_BUF of in and out at most */
	f->got.len = f->got.off = 0;
	kc_buf_free(&req);
	free(val);
}

/* Incomplete large sets hold no more input than the budget: the connection stops reading;
 * the budget counts nothing once it is closed. */
static void test_budget_incomplete_set(void **state)
{
	enum { LIMIT = 256 << 10 };
	struct fixture *f = *state;
	char *val = calloc(1, 900 << 10);
	int big = 1 << 20;

	f->budget.limit = LIMIT;
	assert_int_equal(setsockopt(f->cfd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	send_str(f, "set k 0 0 1000000\r\n");
	memset(val, 'x', 900 << 10);
	for (int i = 0; i < 100; i++) {
		ssize_t n = write(f->cfd, val, 900 << 10);

		(void)n;
		pump(f);
		if (atomic_load(&f->budget.used) > LIMIT)
			fail_msg("input %llu bytes, budget %d",
				 (unsigned long long)atomic_load(&f->budget.used), LIMIT);
	}
	kc_conn_close_all(&f->w);
	assert_int_equal(atomic_load(&f->budget.used), 0);
	free(val);
}

/* Pumps (sleeping between rounds) until the connection is gone; bounded at about 10 s, which
 * only turns a connection that is never closed into a failure. */
static bool pump_until_closed(struct fixture *f)
{
	for (int i = 0; i < 1000 && f->w.conns; i++) {
		pump(f);
		if (f->w.conns)
			usleep(10000);
	}
	return !f->w.conns;
}

/* An incomplete request (a set's value, a command line) is closed request-timeout after it
 * began, without a reply, whatever trickles in meanwhile; nothing is stored. */
static void test_request_timeout(void **state)
{
	struct fixture *f = *state;

	f->w.request_timeout = 1;
	send_str(f, "get a\r\n");
	expect_reply(f, "END\r\n");
	send_str(f, "set k 0 0 10\r\nab");
	expect_nothing(f);
	assert_state(f, R);
	usleep(500000);
	send_str(f, "c"); /* a trickle does not reset the clock */
	expect_nothing(f);
	assert_true(pump_until_closed(f));
	assert_false(client_read(f));
	assert_int_equal(kc_buf_avail(&f->got), 0);
	assert_int_equal(f->curr, 0);
}

/* Pipelined requests, each under the limit, past request-timeout in all, the next always
 * begun: never closed; with idle-timeout off, nothing closes an idle connection. */
static void test_request_timeout_per_request(void **state)
{
	struct fixture *f = *state;

	f->w.request_timeout = 1;
	send_str(f, "set k 0 0 1\r\n");
	for (int i = 0; i < 4; i++) { /* the input is never empty: each set completes the last */
		usleep(400000);
		send_str(f, "v\r\nset k 0 0 1\r\n");
		expect_reply(f, "STORED\r\n");
	}
	send_str(f, "v\r\n");
	expect_reply(f, "STORED\r\n");
	usleep(1200000);
	expect_nothing(f);
	assert_state(f, R);
}

/* idle-timeout: a connection with nothing to do is closed after it. */
static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;

	f->w.idle_timeout = 1;
	send_str(f, "get a\r\n");
	expect_reply(f, "END\r\n");
	assert_state(f, R);
	assert_true(pump_until_closed(f));
	assert_false(client_read(f));
}

/* ---- waits on the lower tiers ---------------------------------------------------------------- */

/* A miss waits (WAITING); input is buffered meanwhile and nothing after the waiting request is
 * parsed; each wait's end runs the rest; every reply comes, in request order. */
static void test_wait_fetch_in_order(void **state)
{
	struct fixture *f = *state;

	send_str(f, "get a\r\nget b\r\n");
	pump(f);
	assert_state(f, WT);
	assert_int_equal(fake.n, 1);
	send_str(f, "get c\r\n");
	expect_nothing(f);
	assert_state(f, WT);
	assert_int_equal(fake.n, 1); /* nothing parsed while waiting */
	fake_fetched(0, "va");
	assert_state(f, WT); /* ran "get a" again, then waits for b */
	assert_int_equal(fake.n, 2);
	assert_memory_equal(fake.calls[1].key, "b", 1);
	fake_fetched(1, NULL);
	assert_state(f, WT);
	assert_int_equal(fake.n, 3);
	assert_memory_equal(fake.calls[2].key, "c", 1);
	fake_fetched(2, "vc");
	assert_state(f, R);
	expect_reply(f, "VALUE a 0 2\r\nva\r\nEND\r\nEND\r\nVALUE c 0 2\r\nvc\r\nEND\r\n");
}

/* A set's reply waits for durability; a failure becomes SERVER_ERROR; the next request is
 * answered only after. */
static void test_wait_write(void **state)
{
	struct fixture *f = *state;

	send_str(f, "set k 0 0 1\r\nv\r\nget none:z\r\n");
	pump(f);
	assert_state(f, WT);
	assert_int_equal(fake_count(FAKE_WRITE), 1);
	expect_nothing(f);
	fake_written(0, "disk full");
	assert_state(f, R);
	expect_reply(f, "SERVER_ERROR disk full\r\nEND\r\n");
	send_str(f, "set k 0 0 1\r\nw\r\n");
	pump(f);
	assert_state(f, WT);
	fake_written(1, NULL);
	assert_state(f, R);
	expect_reply(f, "STORED\r\n");
}

/* A wait whose done comes inside kc_pend_run: WAIT_CALL -> WAIT_EARLY -> RUNNING, all in the
 * same drive, never WAITING. */
static void test_wait_early(void **state)
{
	struct fixture *f = *state;

	fake.immediate = true;
	send_str(f, "get a\r\nset k 0 0 1\r\nv\r\nget none:z\r\n");
	expect_reply(f, "END\r\nSTORED\r\nEND\r\n");
	assert_state(f, R);
	assert_int_equal(fake_count(FAKE_FETCH), 1);
	assert_int_equal(fake_count(FAKE_WRITE), 1);
}

/* Closed while waiting (shutdown): the wait is dropped; its late completion touches nothing. */
static void test_close_while_waiting(void **state)
{
	struct fixture *f = *state;

	send_str(f, "get a\r\n");
	pump(f);
	assert_state(f, WT);
	kc_conn_close_all(&f->w);
	assert_null(f->w.conns);
	assert_int_equal(f->curr, 0);
	fake_fetched(0, "late"); /* ASan: no use of the freed connection */
	assert_false(client_read(f));
	assert_int_equal(kc_buf_avail(&f->got), 0);
}

/* The client's EOF while waiting: still WAITING (EOF is input, not a state); once the wait
 * ends the request is answered, then CLOSED. */
static void test_eof_while_waiting(void **state)
{
	struct fixture *f = *state;

	send_str(f, "get a\r\n");
	pump(f);
	assert_state(f, WT);
	shutdown(f->cfd, SHUT_WR);
	pump(f);
	assert_state(f, WT);
	fake_fetched(0, "va");
	expect_reply(f, "VALUE a 0 2\r\nva\r\nEND\r\n");
	pump(f);
	assert_null(f->w.conns);
}

/* --udp-max-reply counts frame headers: the reply text that fits (issue 13). */
static void test_udp_out_max(void **state)
{
	(void)state;
	assert_int_equal(kc_udp_out_max(1400), 1392);		 /* one full datagram */
	assert_int_equal(kc_udp_out_max(8192), 5 * 1392 + 1184); /* 5 full, 1192 - 8 */
	assert_int_equal(kc_udp_out_max(128), 120);
	assert_int_equal(kc_udp_out_max(1408), 1392); /* 8 more bytes: a header, no text */
	assert_int_equal(kc_udp_out_max(1409), 1393);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transition_table),
	    cmocka_unit_test(test_after_write),
	    cmocka_unit_test(test_udp_out_max),
	    cmocka_unit_test_setup_teardown(test_illegal_asserts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backpressure_over_soft, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backpressure_waiting, setup_tiers, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_many_sets, setup_tiers, teardown),
	    cmocka_unit_test_setup_teardown(test_quit_lingers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budget_non_reader, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budget_incomplete_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_timeout_per_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_eof_answers_then_closes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_fetch_in_order, setup_tiers, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_write, setup_tiers, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_early, setup_tiers, teardown),
	    cmocka_unit_test_setup_teardown(test_close_while_waiting, setup_tiers, teardown),
	    cmocka_unit_test_setup_teardown(test_eof_while_waiting, setup_tiers, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
