/* http.c: the HTTP listener (see http.h): address parsing and binding, routing, limits,
 * accounting, and the built-in /metrics and /healthz. Build-cache routes live elsewhere. */
#include "core/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/num.h"

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

struct kc_http {
	struct evhttp *http;
	struct kc_stats *stats; /* written on the base's thread only */
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
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct kc_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const struct route *r = find_route(h, path ? path : "");

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
	h->stats = kc_stats_new();
	h->http = h->stats ? evhttp_new(base) : NULL;
	if (!h->http) {
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
	if (!evhttp_accept_socket_with_handle(h->http, fd)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "http: listen on %s: libevent cannot watch the socket", addr);
		close(fd);
		goto err_free;
	}
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

void kc_http_stop(struct kc_http *h)
{
	if (!h)
		return;
	/* closes the listener (it owns the fd) and every connection */
	if (h->http)
		evhttp_free(h->http);
	for (size_t i = 0; i < h->nroutes; i++)
		free(h->routes[i].path);
	free(h->routes);
	kc_buf_free(&h->scratch);
	free(h);
}
