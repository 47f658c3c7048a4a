/* http.c: the HTTP listener (see http.h): address parsing and binding, routing, limits,
 * accounting, and the built-in /metrics and /healthz. Build-cache routes live elsewhere. */
#include "core/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/num.h"
#include "core/ratelimit.h"

#define TEXT_PLAIN   "text/plain; charset=utf-8"
#define PROM_TEXT    "text/plain; version=0.0.4; charset=utf-8"
#define ALL_METHODS  0x1ff	   /* EVHTTP_REQ_GET .. EVHTTP_REQ_PATCH: the router answers 405 */
#define METRICS_KEEP (1024 * 1024) /* render buffer kept between scrapes up to this size */

struct route {
	char *path;
	size_t len;
	bool prefix;
	kc_http_handler fn;
	void *ctx;
};

/* One open connection. evhttp owns it; we hold a reference on its bufferevent from the moment
 * evhttp asks us for one (bevcb) until evhttp says the connection closes (closecb), so that the
 * pointer stays valid while we count it and may cut it. */
struct http_conn {
	struct http_conn *prev, *next;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* NULL until adopted */
	uint64_t deadline_ns;		 /* its request header must be complete by then; 0: none */
	uint64_t in_bytes;		 /* read from the socket, in all */
	uint64_t in_at_start;		 /* in_bytes when the deadline was set */
	struct evbuffer_cb_entry *count; /* counts in_bytes */
	struct kc_http *h;
};

/* The listener's state: accepting, full (at max-conns: new connections get a 503 and are
 * closed), or paused (out of descriptors: nothing is accepted until a timer runs). */
enum accept_state { ACCEPTING, FULL, PAUSED };

struct kc_http {
	struct evhttp *http;
	struct evconnlistener *lev; /* evhttp's; we switch it off when full or paused */
	int lfd;
	struct event *overflow; /* on lfd while FULL: accept, 503, close */
	struct event *adopt;	/* runs right after evhttp set up new connections */
	struct event *sweep;	/* every second: header deadlines */
	struct event *resume;	/* ends a pause */
	enum accept_state state;
	struct http_conn *conns, *fresh; /* adopted; not yet adopted */
	size_t nconns, max_conns;
	uint64_t header_timeout_ns;
	struct kc_ratelimit rl;
	struct kc_http *next_http; /* all_http */
	struct kc_stats *stats;	   /* written on the base's thread only */
	struct route *routes;
	size_t nroutes;
	struct kc_buf scratch; /* reused by /metrics */
	int port;
};

/* --- replies and methods --------------------------------------------------------------- */

void kc_http_reply(struct evhttp_request *req, int code, const char *ctype, const void *body,
		   size_t len)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evhttp_request_get_output_buffer(req);
	char clen[24];

	evhttp_add_header(hdr, "Content-Type", ctype ? ctype : TEXT_PLAIN);
	/* evhttp sends whatever body it is given, even to HEAD: give it none, but say how long
	 * the GET's would have been */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(clen, sizeof(clen), "%zu", len);
		evhttp_add_header(hdr, "Content-Length", clen);
		len = 0;
	}
	if (len && evbuffer_add(b, body, len)) {
		evbuffer_drain(b, evbuffer_get_length(b));
		code = HTTP_INTERNAL;
	}
	evhttp_send_reply(req, code, NULL, NULL);
}

static void reply_text(struct evhttp_request *req, int code, const char *text)
{
	kc_http_reply(req, code, NULL, text, strlen(text));
}

/* clang-format off */
static const struct {
	unsigned bit;
	const char *name;
} method_names[] = {
	{EVHTTP_REQ_GET, "GET"},
	{EVHTTP_REQ_HEAD, "HEAD"},
	{EVHTTP_REQ_POST, "POST"},
	{EVHTTP_REQ_PUT, "PUT"},
	{EVHTTP_REQ_DELETE, "DELETE"},
	{EVHTTP_REQ_PATCH, "PATCH"},
	{EVHTTP_REQ_OPTIONS, "OPTIONS"},
	{EVHTTP_REQ_TRACE, "TRACE"},
	{EVHTTP_REQ_CONNECT, "CONNECT"},
};
/* clang-format on */

bool kc_http_check_method(struct evhttp_request *req, unsigned methods)
{
	char allow[80] = ""; /* all nine names fit */
	size_t n = 0;

	if (evhttp_request_get_command(req) & methods)
		return true;
	for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
		if (methods & method_names[i].bit)
			n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "",
					      method_names[i].name);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	reply_text(req, HTTP_BADMETHOD, "method not allowed\n");
	return false;
}

/* --- built-in routes -------------------------------------------------------------------- */

static void serve_metrics(struct evhttp_request *req, void *ctx)
{
	struct kc_http *h = ctx;
	int err;

	if (!kc_http_check_method(req, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD))
		return;
	h->scratch.len = h->scratch.off = 0;
	err = kc_metrics_render(&h->scratch);
	if (err) {
		log_warn("http: render metrics: %s", strerror(-err));
		reply_text(req, HTTP_INTERNAL, "cannot render metrics\n");
	} else {
		kc_http_reply(req, HTTP_OK, PROM_TEXT, h->scratch.data, h->scratch.len);
	}
	h->scratch.len = 0;
	kc_buf_shrink(&h->scratch, METRICS_KEEP);
}

static void serve_healthz(struct evhttp_request *req, void *ctx)
{
	if (kc_http_check_method(req, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD))
		reply_text(req, HTTP_OK, "ok\n");
}

/* --- connections: the cap, the header deadline, descriptor exhaustion ---------------------- */

static void set_state(struct kc_http *h, enum accept_state st)
{
	const struct timeval pause = {0, KC_ACCEPT_PAUSE_MS * 1000};

	if (h->state == st || !h->lev)
		return;
	h->state = st;
	if (st == ACCEPTING) {
		event_del(h->overflow);
		evconnlistener_enable(h->lev);
		return;
	}
	evconnlistener_disable(h->lev);
	if (st == FULL) {
		event_add(h->overflow, NULL);
	} else {
		event_del(h->overflow);
		event_add(h->resume, &pause);
	}
}

/* Out of descriptors (or memory) at accept: stop for a while, and say so once per period. */
static void accept_failed(struct kc_http *h, int err)
{
	uint64_t left_out;
	bool pause = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;

	if (kc_ratelimit(&h->rl, KC_ACCEPT_LOG_PERIOD_S * KC_NS_PER_S, &left_out))
		log_warn("http: accept on port %d: %s%s (%llu more in the last %d s)", h->port,
			 strerror(err), pause ? ": pausing accepts" : "",
			 (unsigned long long)left_out, KC_ACCEPT_LOG_PERIOD_S);
	if (pause)
		set_state(h, PAUSED);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct kc_http *h = arg;

	(void)fd, (void)what;
	if (h->state == PAUSED)
		set_state(h, h->nconns >= h->max_conns ? FULL : ACCEPTING);
}

/* The listener's error callback gets the listener's argument, which evhttp set to its struct
 * evhttp: the listeners, to find ours by it. */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kc_http *all_http;

static void on_listener_error(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct kc_http *h;

	(void)lev;
	pthread_mutex_lock(&all_lock);
	for (h = all_http; h && (void *)h->http != arg; h = h->next_http)
		;
	pthread_mutex_unlock(&all_lock);
	if (h)
		accept_failed(h, err);
}

/* FULL: take what waits in the backlog and close it with a 503, so that clients learn at once
 * and the backlog does not keep them waiting for a slot. */
static void on_overflow(evutil_socket_t lfd, short what, void *arg)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
				   "Content-Length: 0\r\n\r\n";
	struct kc_http *h = arg;
	char sink[4096];

	(void)what;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				accept_failed(h, errno);
			return;
		}
		/* read what the client already sent, so that the close is a FIN after the 503 and
		 * not a reset (a request still on its way may reset it anyway) */
		ssize_t got = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		ssize_t sent = send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);

		(void)got, (void)sent; /* best effort: the connection is refused either way */
		close(fd);
	}
}

static void conn_unlink(struct http_conn **head, struct http_conn *c)
{
	if (*head == c)
		*head = c->next;
	else if (c->prev)
		c->prev->next = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void conn_push(struct http_conn **head, struct http_conn *c)
{
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

static void count_in(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn *c = arg;

	(void)b;
	c->in_bytes += info->n_added;
}

static void set_deadline(struct kc_http *h, struct http_conn *c)
{
	c->deadline_ns = kc_mono_ns() + h->header_timeout_ns;
	c->in_at_start = c->in_bytes;
}

/* Forgets c and drops our reference (evhttp's own, if any, closes the socket on free). */
static void conn_forget(struct kc_http *h, struct http_conn **head, struct http_conn *c)
{
	conn_unlink(head, c);
	if (c->count)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->count);
	bufferevent_decref(c->bev);
	free(c);
	h->nconns--;
	if (h->state == FULL && h->nconns < h->max_conns)
		set_state(h, ACCEPTING);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;

	(void)evcon;
	conn_forget(c->h, &c->h->conns, c);
}

/* evhttp asks for each new connection's bufferevent (from its accept callback): count it, and
 * at the cap stop accepting. */
static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
	struct kc_http *h = arg;
	struct http_conn *c = calloc(1, sizeof(*c));
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (!c || !bev) {
		free(c);
		return bev; /* evhttp goes on with it, or fails the connection itself */
	}
	bufferevent_incref(bev);
	c->bev = bev;
	c->h = h;
	c->count = evbuffer_add_cb(bufferevent_get_input(bev), count_in, c);
	set_deadline(h, c);
	conn_push(&h->fresh, c);
	h->nconns++;
	if (h->nconns >= h->max_conns)
		set_state(h, FULL);
	event_active(h->adopt, EV_TIMEOUT, 0);
	return bev;
}

/* After evhttp's accept callback: its connection is the bufferevent's callback argument. */
static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
	struct kc_http *h = arg;

	(void)fd, (void)what;
	while (h->fresh) {
		struct http_conn *c = h->fresh;
		bufferevent_event_cb eventcb = NULL;
		void *evcon = NULL;

		bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &evcon);
		if (!eventcb || !evcon) { /* evhttp gave up on it already */
			conn_forget(h, &h->fresh, c);
			continue;
		}
		conn_unlink(&h->fresh, c);
		c->evcon = evcon;
		evhttp_connection_set_closecb(c->evcon, on_conn_close, c);
		conn_push(&h->conns, c);
	}
}

static struct http_conn *conn_of(struct kc_http *h, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	for (struct http_conn *c = h->conns; c && evcon; c = c->next)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

/* The header deadline: evhttp's timeout is per read, so one byte every few seconds would keep
 * a connection for hours; a connection whose request header is not complete in time is cut. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct kc_http *h = arg;
	uint64_t now = kc_mono_ns();

	(void)fd, (void)what;
	for (struct http_conn *c = h->conns; c; c = c->next) {
		if (c->deadline_ns && now >= c->deadline_ns) {
			evutil_socket_t cfd = bufferevent_getfd(c->bev);

			c->deadline_ns = 0;
			/* more than a header can hold arrived: evhttp is reading a body (or has
			 * refused the header), at the pace its per-read timeout allows */
			if (c->in_bytes - c->in_at_start > KC_HTTP_MAX_HEADERS)
				continue;
			/* evhttp reads the end of the stream and frees the connection itself */
			if (cfd >= 0)
				shutdown(cfd, SHUT_RDWR);
		}
	}
}

/* --- routing and accounting ------------------------------------------------------------- */

int kc_http_route(struct kc_http *h, const char *path, kc_http_handler fn, void *ctx)
{
	struct route *r;
	size_t len;

	if (!path || path[0] != '/' || !fn)
		return -EINVAL;
	len = strlen(path);
	for (size_t i = 0; i < h->nroutes; i++) {
		if (h->routes[i].len == len && memcmp(h->routes[i].path, path, len) == 0)
			return -EEXIST;
	}
	r = realloc(h->routes, (h->nroutes + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	h->routes = r;
	r = &h->routes[h->nroutes];
	r->path = strdup(path);
	if (!r->path)
		return -ENOMEM;
	r->len = len;
	r->prefix = path[len - 1] == '/';
	r->fn = fn;
	r->ctx = ctx;
	h->nroutes++;
	return 0;
}

static const struct route *find_route(const struct kc_http *h, const char *path)
{
	const struct route *best = NULL;
	size_t len = strlen(path);

	for (size_t i = 0; i < h->nroutes; i++) {
		const struct route *r = &h->routes[i];

		if (!r->prefix) {
			if (r->len == len && memcmp(r->path, path, len) == 0)
				return r;
		} else if (r->len <= len && memcmp(r->path, path, r->len) == 0 &&
			   (!best || r->len > best->len)) {
			best = r;
		}
	}
	return best;
}

static void count_done(struct evhttp_request *req, void *arg)
{
	struct kc_http *h = arg;
	int code = evhttp_request_get_response_code(req);
	enum kc_res res = KC_RES_OK;

	if (code >= 500)
		res = KC_RES_SERVER_ERROR;
	else if (code >= 400)
		res = KC_RES_CLIENT_ERROR;

	kc_stats_count(h->stats, KC_PROTO_HTTP, KC_OP_OTHER, res);
	/* the next request on this connection has its own header deadline */
	struct http_conn *c = conn_of(h, req);

	if (c)
		set_deadline(h, c);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct kc_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const struct route *r = find_route(h, path ? path : "");
	struct http_conn *c = conn_of(h, req);

	if (c)
		c->deadline_ns = 0; /* the header is in: the handler's time is not the client's */
	evhttp_request_set_on_complete_cb(req, count_done, h);
	if (!r) {
		reply_text(req, HTTP_NOTFOUND, "not found\n");
		return;
	}
	r->fn(req, r->ctx);
}

/* --- start and stop --------------------------------------------------------------------- */

/* Parses "a.b.c.d:port" or "[v6]:port" into ss. Returns 0 or -EINVAL with a message. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
		      size_t errlen)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *p;
	uint64_t port;
	size_t hlen;
	bool v6 = addr[0] == '[';

	if (v6) {
		p = strchr(addr, ']');
		colon = p && p[1] == ':' ? p + 1 : NULL;
		hlen = p ? (size_t)(p - addr - 1) : 0;
		p = addr + 1;
	} else {
		colon = strrchr(addr, ':');
		hlen = colon ? (size_t)(colon - addr) : 0;
		p = addr;
		if (colon && memchr(addr, ':', hlen)) {
			snprintf(err, errlen,
				 "http address \"%s\": put an IPv6 address in brackets", addr);
			return -EINVAL;
		}
	}
	if (!colon || hlen == 0 || hlen >= sizeof(host)) {
		snprintf(err, errlen, "http address \"%s\": expected host:port or [v6]:port", addr);
		return -EINVAL;
	}
	if (kc_parse_u64(colon + 1, 65535, &port)) {
		snprintf(err, errlen, "http address \"%s\": port must be 0..65535", addr);
		return -EINVAL;
	}
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (v6 && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*s6);
	} else if (!v6 && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*s4);
	} else {
		snprintf(err, errlen, "http address \"%s\": \"%s\" is not an IPv%d address", addr,
			 host, v6 ? 6 : 4);
		return -EINVAL;
	}
	return 0;
}

/* Returns a listening, non-blocking socket bound to addr, or -errno with a message. */
static int listen_on(const char *addr, int *port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, one = 1, ret;

	ret = parse_addr(addr, &ss, &sslen, err, errlen);
	if (ret)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket for %s: %s", addr, strerror(errno));
		return ret;
	}
	/* a restart must not wait for the previous process's connections in TIME_WAIT */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, sslen)) {
		ret = -errno;
		snprintf(err, errlen, "bind %s: %s", addr, strerror(errno));
		goto err_close;
	}
	if (listen(fd, SOMAXCONN)) {
		ret = -errno;
		snprintf(err, errlen, "listen %s: %s", addr, strerror(errno));
		goto err_close;
	}
	sslen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen)) {
		ret = -errno;
		snprintf(err, errlen, "getsockname %s: %s", addr, strerror(errno));
		goto err_close;
	}
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;

err_close:
	close(fd);
	return ret;
}

struct kc_http *kc_http_start(struct event_base *base, const char *addr, char *err, size_t errlen)
{
	char scratch[8];
	struct kc_http *h;
	int fd, ret;

	if (!err) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		ret = -ENOMEM;
		snprintf(err, errlen, "http: out of memory");
		goto err;
	}
	h->lfd = -1;
	h->max_conns = KC_HTTP_MAX_CONNS_DEFAULT;
	h->header_timeout_ns = KC_HTTP_HEADER_TIMEOUT_DEFAULT * KC_NS_PER_S;
	h->stats = kc_stats_new();
	h->http = h->stats ? evhttp_new(base) : NULL;
	h->adopt = event_new(base, -1, 0, on_adopt, h);
	h->sweep = event_new(base, -1, EV_PERSIST, on_sweep, h);
	h->resume = evtimer_new(base, on_resume, h);
	if (!h->http || !h->adopt || !h->sweep || !h->resume) {
		ret = -ENOMEM;
		snprintf(err, errlen, "http: out of memory");
		goto err_free;
	}
	evhttp_set_max_headers_size(h->http, KC_HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->http, KC_HTTP_MAX_BODY_DEFAULT);
	evhttp_set_timeout(h->http, KC_HTTP_TIMEOUT_DEFAULT);
	evhttp_set_allowed_methods(h->http, ALL_METHODS);
	/* read an oversized body to the end (discarding it) so the client sees the 413 rather
	 * than a reset while it is still sending */
	evhttp_set_flags(h->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_gencb(h->http, dispatch, h);
	evhttp_set_bevcb(h->http, on_new_conn, h);
	if (kc_http_route(h, "/metrics", serve_metrics, h) ||
	    kc_http_route(h, "/healthz", serve_healthz, h)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "http: out of memory");
		goto err_free;
	}

	fd = listen_on(addr, &h->port, err, errlen);
	if (fd < 0) {
		ret = fd;
		goto err_free;
	}
	struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(h->http, fd);
	const struct timeval second = {1, 0};

	h->overflow = event_new(base, fd, EV_READ | EV_PERSIST, on_overflow, h);
	if (!bound || !h->overflow || event_add(h->sweep, &second)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "http: listen on %s: libevent cannot watch the socket", addr);
		if (!bound)
			close(fd);
		goto err_free;
	}
	h->lfd = fd;
	h->lev = evhttp_bound_socket_get_listener(bound);
	pthread_mutex_lock(&all_lock);
	h->next_http = all_http;
	all_http = h;
	pthread_mutex_unlock(&all_lock);
	evconnlistener_set_error_cb(h->lev, on_listener_error);
	log_info("http: listening on %s (port %d)", addr, h->port);
	return h;

err_free:
	kc_http_stop(h);
err:
	errno = -ret;
	return NULL;
}

int kc_http_port(const struct kc_http *h)
{
	return h->port;
}

void kc_http_set_max_body(struct kc_http *h, size_t bytes)
{
	evhttp_set_max_body_size(h->http,
				 bytes > (size_t)EV_SSIZE_MAX ? EV_SSIZE_MAX : (ev_ssize_t)bytes);
}

void kc_http_set_timeout(struct kc_http *h, int seconds)
{
	evhttp_set_timeout(h->http, seconds);
}

void kc_http_set_max_conns(struct kc_http *h, size_t n)
{
	h->max_conns = n ? n : 1;
	if (h->state == ACCEPTING && h->nconns >= h->max_conns)
		set_state(h, FULL);
	else if (h->state == FULL && h->nconns < h->max_conns)
		set_state(h, ACCEPTING);
}

void kc_http_set_header_timeout(struct kc_http *h, int seconds)
{
	h->header_timeout_ns = (uint64_t)(seconds > 0 ? seconds : 1) * KC_NS_PER_S;
}

size_t kc_http_conns(const struct kc_http *h)
{
	return h->nconns;
}

void kc_http_stop(struct kc_http *h)
{
	if (!h)
		return;
	/* closes the listener (it owns the fd) and every connection: their close callbacks
	 * drop our references, and must not switch the freed listener back on */
	h->lev = NULL;
	pthread_mutex_lock(&all_lock);
	for (struct kc_http **p = &all_http; *p; p = &(*p)->next_http)
		if (*p == h) {
			*p = h->next_http;
			break;
		}
	pthread_mutex_unlock(&all_lock);
	if (h->overflow)
		event_del(h->overflow);
	if (h->http)
		evhttp_free(h->http);
	while (h->fresh)
		conn_forget(h, &h->fresh, h->fresh);
	while (h->conns) /* none left, unless evhttp freed one without telling */
		conn_forget(h, &h->conns, h->conns);
	if (h->overflow)
		event_free(h->overflow);
	if (h->adopt)
		event_free(h->adopt);
	if (h->sweep)
		event_free(h->sweep);
	if (h->resume)
		event_free(h->resume);
	for (size_t i = 0; i < h->nroutes; i++)
		free(h->routes[i].path);
	free(h->routes);
	kc_buf_free(&h->scratch);
	free(h);
}
