/* drv_redis: drives one kc_redis client (user/tiers/redis/redis.h) for the redis_*.sh integration
 * tests. Reads commands from stdin, one per line, and prints one result line per command on stdout;
 * client up/down transitions and pub/sub messages are printed as they happen. It aborts when the
 * client breaks its contract: a callback inside kc_redis_cmd, or a callback called twice.
 *
 *   drv_redis URL [--timeout MS] [--name NAME]
 *   up MS | down MS          wait for the client to be up (down); prints up/down or "still …"
 *   cmd ARG…                 one command (\xNN escapes); prints "reply TYPE …" or "fail ERR"
 *   retry MS ARG…            the command every 100 ms until it gets a non-error reply
 *   pipe N                   N pipelined SETs of binary values (one of 1 MiB) then N GETs
 *   burst N                  N pipelined GETs; prints "burst ok=A fail=B err=FIRST"
 *   sub CH                   subscribes a second client (same URL) to CH: "msg CH PAYLOAD"
 *   limit N                  kc_redis_set_limits(N in flight)
 *   stats | quit N           stats line; N commands then kc_redis_free (which must call every
 *                            callback before it returns: "quit called=N of N"), then exit */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/log.h"
#include "tiers/redis/redis.h"

#define MAXARGS 64

static struct event_base *base;
static struct kc_redis *cli, *sub;
static struct kc_redis_url url;
static const char *name = "kc-test";
static uint32_t timeout_ms;
static bool in_cmd;
static struct event *waiter;
static int wait_up, wait_left; /* up/down waits: which, and ticks left */
static bool busy;	       /* a command is running: the next line waits for it */
static struct event *resume;
static struct bufferevent *in;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* The running command finished: read the next line from the event loop. */
static void done(void)
{
	busy = false;
	event_active(resume, 0, 0);
}

static void esc(char *o, size_t n, const char *s, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; i < len && j + 5 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c > ' ' && c < 0x7f && c != '\\')
			o[j++] = (char)c;
		else
			j += (size_t)snprintf(o + j, n - j, "\\x%02x", c);
	}
	o[j] = '\0';
}

static void fmt_reply(char *o, size_t n, const redisReply *x)
{
	static const char *const types[] = {"?",   "string", "array", "int",
					    "nil", "status", "error"};
	size_t j;

	switch (x->type) {
	case REDIS_REPLY_INTEGER:
		snprintf(o, n, "int %lld", x->integer);
		return;
	case REDIS_REPLY_NIL:
		snprintf(o, n, "nil");
		return;
	case REDIS_REPLY_ARRAY:
		j = (size_t)snprintf(o, n, "array %zu [", x->elements);
		for (size_t i = 0; i < x->elements && j + 8 < n; i++) {
			fmt_reply(o + j, n - j, x->element[i]);
			j += strlen(o + j);
			j += (size_t)snprintf(o + j, n - j, i + 1 < x->elements ? ", " : "");
		}
		if (j + 2 < n)
			snprintf(o + j, n - j, "]");
		return;
	default:
		j = (size_t)snprintf(o, n, "%s ", types[x->type < 7 ? x->type : 0]);
		if (x->type == REDIS_REPLY_ERROR) /* errors read better unescaped */
			snprintf(o + j, n - j, "%s", x->str);
		else
			esc(o + j, n - j, x->str, x->len);
	}
}

/* One command's bookkeeping: every callback must come exactly once, never inside kc_redis_cmd. */
struct call {
	int calls;
	int kind; /* 0 print, 1 retry, 2 burst, 3 pipe set, 4 pipe get, 5 quit */
	int argc;
	char *argv[MAXARGS];
	size_t len[MAXARGS];
	int retry_left;
	size_t idx;
};

static void check_call(struct call *c)
{
	if (in_cmd) {
		out("BUG: callback inside kc_redis_cmd");
		abort();
	}
	if (++c->calls != 1) {
		out("BUG: callback called %d times", c->calls);
		abort();
	}
}

static void call_free(struct call *c)
{
	for (int i = 0; i < c->argc; i++)
		free(c->argv[i]);
	free(c);
}

static void cmd_cb(void *ctx, const redisReply *x, const char *err);

static void issue(struct call *c)
{
	c->calls = 0;
	in_cmd = true;
	kc_redis_cmd(cli, cmd_cb, c, c->argc, (const char *const *)c->argv, c->len);
	in_cmd = false;
}

static int burst_left, burst_ok, burst_fail;
static char burst_err[128];
static int pipe_left, pipe_bad;
static char pipe_why[160];
static int quit_called;

/* The value of pipe key i: binary (every byte value), sizes from 0 up, one of 1 MiB. */
static size_t pipe_val(size_t i, char *v)
{
	size_t n = i == 7 ? (1u << 20) : (i * 37) % 3000;

	for (size_t k = 0; k < n; k++)
		v[k] = (char)((k * 31 + i) & 0xff);
	return n;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	issue(arg);
}

static void cmd_cb(void *ctx, const redisReply *x, const char *err)
{
	struct call *c = ctx;
	char line[2048];

	check_call(c);
	switch (c->kind) {
	case 1:
		if ((!x || x->type == REDIS_REPLY_ERROR) && --c->retry_left > 0) {
			struct timeval tv = {0, 100000};
			event_base_once(base, -1, EV_TIMEOUT, retry_cb, c, &tv);
			return;
		}
		/* fall through */
	case 0:
		if (x)
			fmt_reply(line, sizeof(line), x);
		out(x ? "reply %s" : "fail %s", x ? line : err);
		done();
		break;
	case 2:
	case 5:
		if (c->kind == 5)
			quit_called++;
		if (x) {
			burst_ok++;
		} else {
			burst_fail++;
			if (!burst_err[0])
				snprintf(burst_err, sizeof(burst_err), "%s", err);
		}
		if (c->kind == 2 && --burst_left == 0) {
			out("burst ok=%d fail=%d err=%s", burst_ok, burst_fail,
			    burst_err[0] ? burst_err : "-");
			done();
		}
		break;
	case 3:
	case 4: {
		static char want[(1u << 20) + 1];
		size_t n = pipe_val(c->idx, want);
		if (!x && !pipe_bad++)
			snprintf(pipe_why, sizeof(pipe_why), "%zu: %s", c->idx, err);
		else if (x && c->kind == 4 &&
			 (x->type != REDIS_REPLY_STRING || x->len != n ||
			  memcmp(x->str, want, n)) &&
			 !pipe_bad++)
			snprintf(pipe_why, sizeof(pipe_why), "%zu: value differs (type %d len %zu)",
				 c->idx, x->type, x->len);
		if (--pipe_left == 0) {
			if (pipe_bad)
				out("pipe FAIL %d bad, first %s", pipe_bad, pipe_why);
			else
				out("pipe ok");
			done();
		}
		break;
	}
	}
	call_free(c);
}

static void on_state(void *ctx, bool up)
{
	out("state %s %s", (const char *)ctx, up ? "up" : "down");
}

static void on_msg(void *ctx, const char *ch, size_t nch, const char *msg, size_t n)
{
	char a[256], b[1024];

	esc(a, sizeof(a), ch, nch);
	esc(b, sizeof(b), msg, n);
	out("msg %s %s", a, b);
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
	if (kc_redis_up(cli) == (wait_up == 1)) {
		out(wait_up ? "up" : "down");
		done();
	} else if (--wait_left <= 0) {
		out("still %s", wait_up ? "down" : "up");
		done();
	} else {
		struct timeval tv = {0, 10000};
		evtimer_add(waiter, &tv);
	}
}

/* Splits line into c's arguments, decoding \xNN. */
static struct call *parse_args(char *line, int kind)
{
	struct call *c = calloc(1, sizeof(*c));
	char *tok, *save = NULL;

	c->kind = kind;
	for (tok = strtok_r(line, " ", &save); tok && c->argc < MAXARGS;
	     tok = strtok_r(NULL, " ", &save)) {
		char *d = malloc(strlen(tok) + 1);
		size_t j = 0;
		for (size_t i = 0; tok[i]; i++) {
			if (tok[i] == '\\' && tok[i + 1] == 'x' &&
			    isxdigit((unsigned char)tok[i + 2]) &&
			    isxdigit((unsigned char)tok[i + 3])) {
				char hex[3] = {tok[i + 2], tok[i + 3], 0};
				d[j++] = (char)strtol(hex, NULL, 16);
				i += 3;
			} else {
				d[j++] = tok[i];
			}
		}
		c->argv[c->argc] = d;
		c->len[c->argc++] = j;
	}
	return c;
}

static struct kc_redis *make(const char *n, const char *tag)
{
	char err[512];
	struct kc_redis_opts o = {.url = &url,
				  .timeout_ms = timeout_ms,
				  .name = n,
				  .on_state = on_state,
				  .state_ctx = (void *)tag};
	struct kc_redis *r = kc_redis_new(base, &o, err, sizeof(err));

	if (!r) {
		out("new failed: %s", err);
		exit(1);
	}
	return r;
}

static void pipe_cmd(int n)
{
	static char v[(1u << 20) + 1];
	char key[32];

	pipe_left = 2 * n;
	pipe_bad = 0;
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < n; i++) {
			struct call *c = calloc(1, sizeof(*c));
			size_t vl = pipe_val((size_t)i, v);
			const char *a[] = {k ? "GET" : "SET", key, v};
			size_t l[] = {3, (size_t)snprintf(key, sizeof(key), "pipe:\r\n\x01%d", i),
				      vl};
			c->kind = 3 + k;
			c->idx = (size_t)i;
			in_cmd = true;
			kc_redis_cmd(cli, cmd_cb, c, k ? 2 : 3, a, l);
			in_cmd = false;
		}
}

static void line_cmd(char *line)
{
	char *sp = strchr(line, ' ');
	char *rest = sp ? sp + 1 : line + strlen(line);
	struct kc_redis_stats st;

	if (sp)
		*sp = '\0';
	busy = true;
	if (!strcmp(line, "up") || !strcmp(line, "down")) {
		wait_up = !strcmp(line, "up");
		wait_left = atoi(rest) / 10 + 1;
		wait_cb(-1, 0, NULL);
	} else if (!strcmp(line, "cmd")) {
		issue(parse_args(rest, 0));
	} else if (!strcmp(line, "retry")) {
		char *s2 = strchr(rest, ' ');
		struct call *c;
		if (!s2) {
			out("usage: retry MS ARG...");
			busy = false;
			return;
		}
		*s2 = '\0';
		c = parse_args(s2 + 1, 1);
		c->retry_left = atoi(rest) / 100 + 1;
		issue(c);
	} else if (!strcmp(line, "pipe")) {
		pipe_cmd(atoi(rest));
	} else if (!strcmp(line, "burst") || !strcmp(line, "quit")) {
		int n = atoi(rest), kind = line[0] == 'b' ? 2 : 5;
		burst_left = n;
		burst_ok = burst_fail = 0;
		burst_err[0] = '\0';
		for (int i = 0; i < n; i++) {
			char l2[] = "GET burst";
			issue(parse_args(l2, kind));
		}
		if (kind == 5) {
			kc_redis_free(sub);
			kc_redis_free(cli);
			cli = sub = NULL;
			out("quit called=%d of %d", quit_called, n);
			event_base_loopbreak(base);
		}
	} else if (!strcmp(line, "sub")) {
		if (!sub)
			sub = make("kc-test-sub", "sub");
		out("sub %d", kc_redis_subscribe(sub, rest, on_msg, NULL));
		busy = false;
	} else if (!strcmp(line, "limit")) {
		kc_redis_set_limits(cli, (uint32_t)atoi(rest), 0);
		out("limit %s", rest);
		busy = false;
	} else if (!strcmp(line, "stats")) {
		busy = false;
		kc_redis_get_stats(cli, &st);
		out("stats cmds=%llu errors=%llu timeouts=%llu reconnects=%llu failovers=%llu "
		    "in_flight=%llu",
		    (unsigned long long)st.cmds, (unsigned long long)st.errors,
		    (unsigned long long)st.timeouts, (unsigned long long)st.reconnects,
		    (unsigned long long)st.failovers, (unsigned long long)st.in_flight);
	} else {
		out("unknown command '%s'", line);
		busy = false;
	}
}

static bool stdin_eof;

static void stdin_cb(struct bufferevent *bev, void *arg)
{
	char *line;

	while (cli && !busy &&
	       (line = evbuffer_readln(bufferevent_get_input(in), NULL, EVBUFFER_EOL_LF))) {
		line_cmd(line);
		free(line);
	}
	if (stdin_eof && !busy)
		event_base_loopbreak(base);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	stdin_cb(in, NULL);
}

static void stdin_ev(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		stdin_eof = true;
		stdin_cb(in, NULL);
	}
}

int main(int argc, char **argv)
{
	char err[512], printed[600];

	signal(SIGPIPE, SIG_IGN);
	if (getenv("KC_DRV_DEBUG"))
		kc_log_set_level(KC_LOG_DEBUG);
	if (argc < 2) {
		fprintf(stderr, "usage: drv_redis URL [--timeout MS] [--name NAME]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--timeout"))
			timeout_ms = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--name"))
			name = argv[i + 1];
	}
	if (kc_redis_url_parse(argv[1], &url, err, sizeof(err))) {
		out("url failed: %s", err);
		return 1;
	}
	kc_redis_url_print(&url, printed, sizeof(printed));
	base = event_base_new();
	waiter = evtimer_new(base, wait_cb, NULL);
	resume = event_new(base, -1, 0, resume_cb, NULL);
	cli = make(name, "main");
	in = bufferevent_socket_new(base, 0, 0);
	bufferevent_setcb(in, stdin_cb, NULL, stdin_ev, NULL);
	bufferevent_enable(in, EV_READ);
	out("ready %s", printed);
	event_base_dispatch(base);
	kc_redis_free(sub);
	kc_redis_free(cli);
	bufferevent_free(in);
	event_free(waiter);
	event_free(resume);
	event_base_free(base);
	kc_redis_url_free(&url);
	return 0;
}
