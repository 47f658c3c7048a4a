/* http.h: the HTTP listener (libevent evhttp) that serves /metrics, /healthz and, through
 * kc_http_route(), the build-cache API. Routing, limits and request accounting live here; what
 * a route answers lives with its module.
 *
 * Threading: a listener runs on the event_base it was started with. Call every function below
 * from the thread that runs that base (or before the base starts dispatching); handlers are
 * called on that thread too. Nothing here takes a lock.
 *
 * Accounting: every request that reaches the router is counted, when its reply has been
 * written, in kcache_requests_total{proto="http",op="other"} with result ok (1xx-3xx),
 * client_error (4xx) or server_error (5xx). Requests that evhttp rejects itself before
 * routing (malformed request line, headers or body over the limit) are answered but not
 * counted: libevent 2.1 offers no hook for them.
 */
#ifndef KC_HTTP_H
#define KC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>

#define KC_HTTP_MAX_HEADERS	       (8 * 1024) /* request line + headers; over it: 400, closed */
#define KC_HTTP_MAX_BODY_DEFAULT       (1024 * 1024) /* over it: 413 */
#define KC_HTTP_TIMEOUT_DEFAULT	       30	     /* seconds of read or write inactivity */
#define KC_HTTP_MAX_CONNS_DEFAULT      256	     /* open connections; over it: 503, closed */
#define KC_HTTP_HEADER_TIMEOUT_DEFAULT 10	     /* seconds for a whole request header */

struct kc_http;

/* Handles one request: must reply, now or later (evhttp_send_reply and friends, on the base's
 * thread). ctx is what was given to kc_http_route(). */
typedef void (*kc_http_handler)(struct evhttp_request *req, void *ctx);

/* Binds addr ("a.b.c.d:port" or "[v6]:port"; port 0 picks an ephemeral one), and serves on
 * base with the built-in routes GET|HEAD /metrics and /healthz. Returns the listener, or NULL
 * with errno set and a message in err (e.g. "bind 127.0.0.1:8080: Address already in use";
 * err may be NULL). */
struct kc_http *kc_http_start(struct event_base *base, const char *addr, char *err, size_t errlen);

/* The bound port (useful after asking for port 0). */
int kc_http_port(const struct kc_http *h);

/* Routes path to fn. A path ending in '/' is a prefix ("/cas/" takes "/cas/<anything>", not
 * "/cas"); any other path must match exactly. An exact match wins over a prefix, and a longer
 * prefix over a shorter one. Paths are compared raw (no percent-decoding, no dot-segment
 * removal; the query string is not part of it): a prefix handler must validate what follows
 * its prefix. Returns 0, -EINVAL (path not starting with '/'), -EEXIST (already routed) or
 * -ENOMEM. */
int kc_http_route(struct kc_http *h, const char *path, kc_http_handler fn, void *ctx);

/* Largest request body accepted (default KC_HTTP_MAX_BODY_DEFAULT); larger ones get 413. */
void kc_http_set_max_body(struct kc_http *h, size_t bytes);

/* Read/write inactivity timeout in seconds (default KC_HTTP_TIMEOUT_DEFAULT). */
void kc_http_set_timeout(struct kc_http *h, int seconds);

/* Most connections open at once (default KC_HTTP_MAX_CONNS_DEFAULT; 0 counts as 1). At the
 * cap the listener stops handing connections to evhttp: what waits in the backlog is accepted,
 * answered 503 and closed. At EMFILE/ENFILE (either accept path) nothing is accepted for
 * KC_ACCEPT_PAUSE_MS, and one warning per KC_ACCEPT_LOG_PERIOD_S says how many it stands for. */
void kc_http_set_max_conns(struct kc_http *h, size_t n);

/* Seconds a connection has to send a whole request header, from its accept or from the end of
 * its previous request (default KC_HTTP_HEADER_TIMEOUT_DEFAULT; <= 0 counts as 1). evhttp's
 * own timeout is per read; this one is not: past it the connection is shut down (checked once
 * a second), unless more than KC_HTTP_MAX_HEADERS bytes arrived meanwhile (the header is then
 * complete and a body is on its way: libevent 2.1 tells us only when the body is in too). */
void kc_http_set_header_timeout(struct kc_http *h, int seconds);

/* Connections open now (for tests and metrics). */
size_t kc_http_conns(const struct kc_http *h);

/* For handlers: true when the request's method is in methods (a mask of EVHTTP_REQ_*);
 * otherwise replies 405 with an Allow header listing methods, and returns false. */
bool kc_http_check_method(struct evhttp_request *req, unsigned methods);

/* For handlers: replies code with body (len bytes, copied) and Content-Type ctype (NULL for
 * "text/plain; charset=utf-8"). To a HEAD request it sends the headers only, with the
 * Content-Length of the body (evhttp_send_reply() itself would send the body to HEAD too). */
void kc_http_reply(struct evhttp_request *req, int code, const char *ctype, const void *body,
		   size_t len);

/* Closes the listening socket and every open connection (requests in flight are dropped
 * without a reply) and frees h. NULL is a no-op. */
void kc_http_stop(struct kc_http *h);

#endif
