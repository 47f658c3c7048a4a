/* test_http.c: the HTTP listener on 127.0.0.1:<ephemeral>, driven by a plain socket client
 * while its event_base runs in a thread of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/thread.h>

#include "core/http.h"

struct server {
	struct event_base *base;
	struct kc_http *h;   /* default limits */
	struct kc_http *big; /* max body raised to 4 MiB */
	pthread_t thread;
};

struct resp {
	int status;
	char *headers; /* status line and headers, NUL-terminated */
	char *body;    /* NUL-terminated */
	size_t body_len;
	char *raw;
};

/* --- a tiny client ------------------------------------------------------------------------ */

static int dial(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 10};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Sends req (len bytes), reads to EOF (requests say Connection: close) and parses. A send
 * that fails because the server already answered and closed is not an error. */
static struct resp fetch_raw(int port, const char *req, size_t len)
{
	struct resp r = {0};
	size_t n = 0, cap = 1 << 16, off = 0;
	int fd = dial(port);
	char *sep;
	ssize_t k;

	while (off < len) {
		k = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	r.raw = malloc(cap + 1);
	assert_non_null(r.raw);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			r.raw = realloc(r.raw, cap + 1);
			assert_non_null(r.raw);
		}
		k = recv(fd, r.raw + n, cap - n, 0);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	r.raw[n] = '\0';
	if (sscanf(r.raw, "HTTP/1.%*d %d", &r.status) != 1)
		r.status = -1;
	sep = strstr(r.raw, "\r\n\r\n");
	if (sep) {
		sep[2] = '\0';
		r.headers = r.raw;
		r.body = sep + 4;
		r.body_len = n - (size_t)(r.body - r.raw);
	} else {
		r.headers = r.body = r.raw + n;
	}
	return r;
}

static struct resp fetch(int port, const char *method, const char *path)
{
	char req[512];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
			 method, path);

	return fetch_raw(port, req, (size_t)n);
}

static void resp_free(struct resp *r)
{
	free(r->raw);
}

static const char *header(const struct resp *r, const char *name)
{
	static char v[256];
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	p = strcasestr(r->headers, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	snprintf(v, sizeof(v), "%.*s", (int)strcspn(p, "\r\n"), p);
	return v;
}

/* --- the server under test ----------------------------------------------------------------- */

/* Echoes the path and body size, so that routing and body limits can be seen. */
static void echo(struct evhttp_request *req, void *ctx)
{
	const char *tag = ctx;
	char out[512];
	int n;

	n = snprintf(out, sizeof(out), "%s %s %zu\n", tag, evhttp_request_get_uri(req),
		     evbuffer_get_length(evhttp_request_get_input_buffer(req)));
	kc_http_reply(req, 200, NULL, out, (size_t)n);
}

static void *run(void *arg)
{
	struct server *s = arg;

	event_base_dispatch(s->base);
	return NULL;
}

static int setup(void **state)
{
	struct server *s = calloc(1, sizeof(*s));
	char err[256];

	assert_non_null(s);
	s->base = event_base_new();
	assert_non_null(s->base);
	s->h = kc_http_start(s->base, "127.0.0.1:0", err, sizeof(err));
	if (!s->h)
		fail_msg("kc_http_start: %s", err);
	assert_true(kc_http_port(s->h) > 0);
	assert_int_equal(kc_http_route(s->h, "/ac/", echo, "ac"), 0);
	assert_int_equal(kc_http_route(s->h, "/ac/special/", echo, "special"), 0);
	assert_int_equal(kc_http_route(s->h, "/exact", echo, "exact"), 0);

	s->big = kc_http_start(s->base, "127.0.0.1:0", err, sizeof(err));
	if (!s->big)
		fail_msg("kc_http_start: %s", err);
	kc_http_set_max_body(s->big, 4 << 20);
	assert_int_equal(kc_http_route(s->big, "/cas/", echo, "cas"), 0);

	assert_int_equal(pthread_create(&s->thread, NULL, run, s), 0);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct server *s = *state;

	event_base_loopexit(s->base, NULL);
	pthread_join(s->thread, NULL);
	kc_http_stop(s->h);
	kc_http_stop(s->big);
	event_base_free(s->base);
	free(s);
	return 0;
}

/* --- tests ----------------------------------------------------------------------------------- */

static void test_healthz(void **state)
{
	struct server *s = *state;
	struct resp r = fetch(kc_http_port(s->h), "GET", "/healthz");

	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	assert_string_equal(header(&r, "Content-Type"), "text/plain; charset=utf-8");
	resp_free(&r);
}

static void test_metrics(void **state)
{
	struct server *s = *state;
	struct resp r = fetch(kc_http_port(s->h), "GET", "/metrics?x=1");

	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(r.body, "# TYPE kcache_requests_total counter\n"));
	assert_non_null(strstr(r.body, "# TYPE kcache_request_duration_seconds histogram\n"));
	resp_free(&r);

	r = fetch(kc_http_port(s->h), "HEAD", "/metrics");
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	assert_true(atoi(header(&r, "Content-Length")) > 100);
	resp_free(&r);
}

static void test_not_found_and_method(void **state)
{
	struct server *s = *state;
	struct resp r = fetch(kc_http_port(s->h), "GET", "/nope");

	assert_int_equal(r.status, 404);
	resp_free(&r);

	r = fetch(kc_http_port(s->h), "GET", "/metrics/");
	assert_int_equal(r.status, 404);
	resp_free(&r);

	r = fetch(kc_http_port(s->h), "POST", "/metrics");
	assert_int_equal(r.status, 405);
	assert_string_equal(header(&r, "Allow"), "GET, HEAD");
	resp_free(&r);

	r = fetch(kc_http_port(s->h), "PATCH", "/healthz");
	assert_int_equal(r.status, 405);
	assert_string_equal(header(&r, "Allow"), "GET, HEAD");
	resp_free(&r);
}

static void test_routes(void **state)
{
	struct server *s = *state;
	int port = kc_http_port(s->h);
	struct resp r;

	r = fetch(port, "GET", "/ac/abc");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ac /ac/abc 0\n");
	resp_free(&r);

	r = fetch(port, "GET", "/ac/special/x?q=1");
	assert_string_equal(r.body, "special /ac/special/x?q=1 0\n");
	resp_free(&r);

	r = fetch(port, "GET", "/ac/special");
	assert_string_equal(r.body, "ac /ac/special 0\n");
	resp_free(&r);

	r = fetch(port, "GET", "/ac");
	assert_int_equal(r.status, 404);
	resp_free(&r);

	r = fetch(port, "PUT", "/exact");
	assert_string_equal(r.body, "exact /exact 0\n");
	resp_free(&r);

	r = fetch(port, "GET", "/exact/more");
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

static void test_route_errors(void **state)
{
	struct event_base *base = event_base_new();
	struct kc_http *h = kc_http_start(base, "127.0.0.1:0", NULL, 0);

	assert_non_null(h);
	assert_int_equal(kc_http_route(h, "/metrics", echo, NULL), -EEXIST);
	assert_int_equal(kc_http_route(h, "x/", echo, NULL), -EINVAL);
	assert_int_equal(kc_http_route(h, "", echo, NULL), -EINVAL);
	assert_int_equal(kc_http_route(h, "/y", NULL, NULL), -EINVAL);
	kc_http_stop(h);
	kc_http_stop(NULL);
	event_base_free(base);
}

static void test_big_header(void **state)
{
	struct server *s = *state;
	size_t big = 10 * 1024;
	char *req = malloc(big + 256);
	struct resp r;
	int n;

	assert_non_null(req);
	n = sprintf(req, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Big: ");
	memset(req + n, 'a', big);
	n += (int)big;
	n += sprintf(req + n, "\r\n\r\n");
	r = fetch_raw(kc_http_port(s->h), req, (size_t)n);
	assert_true(r.status >= 400 && r.status < 500);
	resp_free(&r);
	free(req);

	/* and the listener is still there */
	r = fetch(kc_http_port(s->h), "GET", "/healthz");
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

static struct resp put(int port, const char *path, size_t len)
{
	char *req = malloc(len + 256);
	struct resp r;
	int n;

	assert_non_null(req);
	n = sprintf(req,
		    "PUT %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		    "Content-Length: %zu\r\n\r\n",
		    path, len);
	memset(req + n, 'b', len);
	r = fetch_raw(port, req, (size_t)n + len);
	free(req);
	return r;
}

static void test_body_limit(void **state)
{
	struct server *s = *state;
	struct resp r;

	r = put(kc_http_port(s->h), "/ac/k", 1000);
	assert_string_equal(r.body, "ac /ac/k 1000\n");
	resp_free(&r);

	r = put(kc_http_port(s->h), "/ac/k", 2 << 20);
	assert_int_equal(r.status, 413);
	resp_free(&r);

	r = put(kc_http_port(s->big), "/cas/k", 2 << 20);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "cas /cas/k 2097152\n");
	resp_free(&r);
}

/* A request is counted when its reply has been written, which may be just after the client
 * read it: poll /metrics until the counts show. */
static void test_accounting(void **state)
{
	struct server *s = *state;
	int port = kc_http_port(s->h);
	struct resp r;
	bool ok = false;

	r = fetch(port, "GET", "/healthz");
	resp_free(&r);
	r = fetch(port, "GET", "/nope");
	resp_free(&r);
	for (int i = 0; i < 50 && !ok; i++) {
		r = fetch(port, "GET", "/metrics");
		ok = strstr(r.body, "\nkcache_requests_total{proto=\"http\",op=\"other\","
				    "result=\"ok\"} ") &&
		     strstr(r.body, "\nkcache_requests_total{proto=\"http\",op=\"other\","
				    "result=\"client_error\"} ");
		if (!ok)
			usleep(20000);
		resp_free(&r);
	}
	assert_true(ok);
}

static void test_start_errors(void **state)
{
	struct event_base *base = event_base_new();
	struct kc_http *a, *b;
	char err[256], want[128], addr[64];
	int port;

	assert_non_null(base);
	a = kc_http_start(base, "127.0.0.1:0", err, sizeof(err));
	assert_non_null(a);
	port = kc_http_port(a);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);

	b = kc_http_start(base, addr, err, sizeof(err));
	assert_null(b);
	assert_int_equal(errno, EADDRINUSE);
	snprintf(want, sizeof(want), "bind %s: Address already in use", addr);
	assert_string_equal(err, want);

	/* stop closes the socket: the port can be bound again */
	kc_http_stop(a);
	a = kc_http_start(base, addr, err, sizeof(err));
	if (!a)
		fail_msg("rebind after stop: %s", err);
	assert_int_equal(kc_http_port(a), port);
	kc_http_stop(a);

	static const struct {
		const char *addr, *msg;
	} bad[] = {
	    {"127.0.0.1", "expected host:port"},
	    {":80", "expected host:port"},
	    {"localhost:80", "is not an IPv4 address"},
	    {"127.0.0.1:", "port must be"},
	    {"127.0.0.1:70000", "port must be"},
	    {"127.0.0.1:-1", "port must be"},
	    {"127.0.0.1:80x", "port must be"},
	    {"::1:80", "brackets"},
	    {"[::1]", "expected host:port"},
	    {"[1.2.3.4]:80", "is not an IPv6 address"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		b = kc_http_start(base, bad[i].addr, err, sizeof(err));
		assert_null(b);
		assert_int_equal(errno, EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].addr, err, bad[i].msg);
	}

	/* IPv6 loopback, where the host has it */
	a = kc_http_start(base, "[::1]:0", err, sizeof(err));
	if (a) {
		assert_true(kc_http_port(a) > 0);
		kc_http_stop(a);
	} else {
		assert_non_null(strstr(err, "[::1]:0"));
	}
	event_base_free(base);
}

/* issue 13 item 6: at the cap a connection gets 503 and is closed; a header that is not
 * complete within the header timeout is cut, however steadily its bytes arrive; then the
 * listener takes connections again. */
static void test_cap_and_header_deadline(void **state)
{
	static const char partial[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	struct server s = {0};
	struct timespec nap = {0, 100 * 1000 * 1000};
	char err[256], buf[256];
	struct resp r;
	int a, b, port, ok = 0;

	(void)state;
	s.base = event_base_new();
	assert_non_null(s.base);
	s.h = kc_http_start(s.base, "127.0.0.1:0", err, sizeof(err));
	if (!s.h)
		fail_msg("kc_http_start: %s", err);
	kc_http_set_max_conns(s.h, 2);
	kc_http_set_header_timeout(s.h, 1);
	port = kc_http_port(s.h);
	assert_int_equal(pthread_create(&s.thread, NULL, run, &s), 0);
	a = dial(port);
	b = dial(port);
	assert_int_equal(send(a, partial, sizeof(partial) - 1, 0), (ssize_t)sizeof(partial) - 1);
	assert_int_equal(send(b, partial, sizeof(partial) - 1, 0), (ssize_t)sizeof(partial) - 1);
	for (int i = 0; i < 50 && kc_http_conns(s.h) < 2; i++)
		nanosleep(&nap, NULL);
	assert_int_equal(kc_http_conns(s.h), 2);
	/* the third, over the cap: a 503 before it even asks (one that sends may see a reset) */
	int c = dial(port);
	ssize_t n = recv(c, buf, sizeof(buf) - 1, 0);

	assert_true(n > 0);
	buf[n] = 0;
	assert_true(strncmp(buf, "HTTP/1.1 503 ", 13) == 0);
	close(c);
	r = fetch(port, "GET", "/healthz");
	assert_int_not_equal(r.status, 200);
	resp_free(&r);
	/* one more byte now and then does not help: the whole header had 1 s */
	assert_int_equal(send(a, "x", 1, 0), 1);
	assert_true(recv(a, buf, sizeof(buf), 0) <= 0); /* EOF or reset; 10 s timeout: EAGAIN */
	assert_int_not_equal(errno, EAGAIN);
	assert_true(recv(b, buf, sizeof(buf), 0) <= 0);
	close(a);
	close(b);
	for (int i = 0; i < 50 && !ok; i++) {
		r = fetch(port, "GET", "/healthz");
		ok = r.status == 200;
		resp_free(&r);
		if (!ok)
			nanosleep(&nap, NULL);
	}
	assert_true(ok);
	/* a body slower than the header timeout is not cut: the header was in, and more bytes
	 * than a header can hold arrived */
	static const char put_hdr[] = "PUT /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
				      "Content-Length: 20000\r\n\r\n";
	static char body[20000];
	struct timespec over = {1, 800 * 1000 * 1000};

	memset(body, 'b', sizeof(body));
	a = dial(port);
	assert_int_equal(send(a, put_hdr, sizeof(put_hdr) - 1, 0), (ssize_t)sizeof(put_hdr) - 1);
	assert_int_equal(send(a, body, 10000, 0), 10000);
	nanosleep(&over, NULL); /* the 1 s deadline passes, with the sweep */
	nanosleep(&over, NULL);
	assert_int_equal(send(a, body + 10000, 10000, MSG_NOSIGNAL), 10000);
	ssize_t got = recv(a, buf, sizeof(buf) - 1, 0);

	assert_true(got > 12);
	buf[got] = 0;
	assert_true(strncmp(buf, "HTTP/1.1 405", 12) == 0); /* answered, not cut */
	close(a);
	event_base_loopexit(s.base, NULL);
	pthread_join(s.thread, NULL);
	kc_http_stop(s.h);
	event_base_free(s.base);
}

/* issue 13 item 6: out of descriptors, the listener pauses and says so once per period, not
 * once per attempt. The server runs in a child whose RLIMIT_NOFILE leaves room for 3
 * connections; this process opens 12 and counts the child's log lines. */
static void test_emfile_pause_logs_once(void **state)
{
	char logf[] = "/tmp/kc_test_http_log_XXXXXX", line[512];
	int lfd = mkstemp(logf), sync[2], port = 0, socks[12], pauses = 0, lines = 0, status;
	pid_t pid;
	FILE *f;

	(void)state;
	assert_true(lfd >= 0);
	assert_int_equal(pipe(sync), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct event_base *base = event_base_new();
		struct kc_http *h = kc_http_start(base, "127.0.0.1:0", NULL, 0);
		struct timeval run_for = {3, 0};
		struct rlimit rl;

		dup2(lfd, 2);
		if (!base || !h)
			_exit(3);
		kc_http_set_max_conns(h, 1000);
		port = kc_http_port(h);
		/* what is open now, and three more */
		int top = dup(0);

		close(top);
		rl.rlim_cur = rl.rlim_max = (rlim_t)top + 3;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			_exit(4);
		if (write(sync[1], &port, sizeof(port)) != sizeof(port))
			_exit(5);
		event_base_loopexit(base, &run_for);
		event_base_dispatch(base);
		_exit(0);
	}
	close(sync[1]);
	assert_int_equal(read(sync[0], &port, sizeof(port)), (ssize_t)sizeof(port));
	close(sync[0]);
	for (int i = 0; i < 12; i++) {
		socks[i] = dial(port);
		assert_true(send(socks[i], "GET / HTTP/1.1\r\n", 16, 0) == 16);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int i = 0; i < 12; i++)
		close(socks[i]);
	f = fdopen(lfd, "r");
	assert_non_null(f);
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		lines++;
		pauses += strstr(line, "pausing accepts") != NULL;
	}
	fclose(f);
	unlink(logf);
	assert_int_equal(pauses, 1); /* ~6 pauses in 3 s, one line for them */
	assert_true(lines <= 3);     /* that line and "listening on" */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_big_header, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_accounting, setup, teardown),
	    cmocka_unit_test(test_route_errors),
	    cmocka_unit_test(test_start_errors),
	    cmocka_unit_test(test_cap_and_header_deadline),
	    cmocka_unit_test(test_emfile_pause_logs_once),
	};

	/* event_base_loopexit() comes from the test thread */
	if (evthread_use_pthreads()) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
