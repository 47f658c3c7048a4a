/* redis_conn.c: the Redis client's connection (see redis_int.h): non-blocking DNS, TCP and TLS
 * through libevent bufferevents, hiredis' reply reader fed from them, and the reconnect timer
 * (exponential backoff with full jitter). Commands and state transitions are in redis.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "tiers/redis/redis_int.h"

static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	return s ? s : "unknown OpenSSL error";
}

int kc_redis_tls_init(struct kc_redis *r, char *err, size_t errlen)
{
	const struct kc_redis_url *u = &r->url;
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		kc_errf(err, errlen, "redis TLS: cannot create a context: %s", ssl_reason());
		return -1;
	}
	r->ssl_ctx = ctx;
	/* OpenSSL says "system lib" for a file it cannot open: say which and why first. */
	const char *files[] = {u->ca, u->cert, u->key},
		   *what[] = {"CA file", "client certificate", "client key"};
	for (int i = 0; i < 3; i++)
		if (files[i] && access(files[i], R_OK) != 0) {
			kc_errf(err, errlen, "redis TLS: %s %s: %s", what[i], files[i],
				strerror(errno));
			return -1;
		}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, u->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (u->ca && SSL_CTX_load_verify_locations(ctx, u->ca, NULL) != 1) {
		kc_errf(err, errlen, "redis TLS: CA file %s: %s", u->ca, ssl_reason());
		return -1;
	}
	if (!u->ca && !u->insecure && SSL_CTX_set_default_verify_paths(ctx) != 1) {
		kc_errf(err, errlen, "redis TLS: the system's CA store: %s", ssl_reason());
		return -1;
	}
	if (u->cert && SSL_CTX_use_certificate_chain_file(ctx, u->cert) != 1) {
		kc_errf(err, errlen, "redis TLS: client certificate %s: %s", u->cert, ssl_reason());
		return -1;
	}
	if (u->key && (SSL_CTX_use_PrivateKey_file(ctx, u->key, SSL_FILETYPE_PEM) != 1 ||
		       SSL_CTX_check_private_key(ctx) != 1)) {
		kc_errf(err, errlen, "redis TLS: client key %s: %s", u->key, ssl_reason());
		return -1;
	}
	return 0;
}

static bool numeric_host(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static struct bufferevent *make_bev(struct kc_redis *r)
{
	SSL *ssl;

	if (!r->tls)
		return bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	ssl = SSL_new(r->ssl_ctx);
	if (!ssl)
		return NULL;
	if (!numeric_host(r->host))
		SSL_set_tlsext_host_name(ssl, r->host); /* SNI takes names only */
	if (!r->url.insecure &&
	    (numeric_host(r->host) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), r->host)
				   : SSL_set1_host(ssl, r->host)) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    r->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Why the connection failed, in words an operator can act on. */
static void describe(struct kc_redis *r, struct bufferevent *bev, short what, int e, char *out,
		     size_t n)
{
	if (r->tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		unsigned long oe, last = 0;
		long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

		/* libevent stacks SSL_get_error()'s code under the library's own errors and pops
		 * the newest first: keep the first one OpenSSL has words for. */
		while ((oe = bufferevent_get_openssl_error(bev)))
			if (!last && ERR_reason_error_string(oe))
				last = oe;
		if (r->state == KC_RS_CONNECTING && vr != X509_V_OK) {
			snprintf(out, n, "TLS with %s:%u: certificate verify failed: %s", r->host,
				 r->port, X509_verify_cert_error_string(vr));
			return;
		}
		if (last) {
			const char *s = ERR_reason_error_string(last);
			snprintf(out, n, "TLS with %s:%u: %s", r->host, r->port,
				 s ? s : "OpenSSL error");
			return;
		}
	}
	if (what & BEV_EVENT_EOF)
		snprintf(out, n, "%s:%u closed the connection%s", r->host, r->port,
			 r->state == KC_RS_CONNECTING ? " during the TLS handshake" : "");
	else
		snprintf(out, n, "%s%s%s:%u: %s", r->state == KC_RS_CONNECTING ? "connect to " : "",
			 r->to_sentinel ? "sentinel " : "", r->host, r->port,
			 e ? evutil_socket_error_to_string(e) : "connection error");
}

/* Hands every complete reply in the reader to redis.c, until the connection drops (gen). */
static void parse(struct kc_redis *r, uint64_t gen)
{
	void *reply;

	while (r->gen == gen) {
		if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
			char why[640];
			snprintf(why, sizeof(why), "protocol error from %s:%u: %s", r->host,
				 r->port, ((redisReader *)r->reader)->errstr);
			kc_redis_drop(r, "protocol error", why, false);
			return;
		}
		if (!reply)
			return;
		kc_redis_on_reply(r, reply);
	}
}

static bool feed(struct kc_redis *r, const char *p, size_t n)
{
	if (redisReaderFeed(r->reader, p, n) == REDIS_OK)
		return true;
	kc_redis_drop(r, "connection lost", "out of memory for a reply", false);
	return false;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct kc_redis *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint64_t gen = r->gen;
	size_t n;

	while ((n = evbuffer_get_contiguous_space(in)) > 0) {
		if (!feed(r, (const char *)evbuffer_pullup(in, (ev_ssize_t)n), n))
			return;
		evbuffer_drain(in, n);
	}
	parse(r, gen);
}

/* Raw mode: reads what the socket has into the reader. Returns 1 if it read something, 0 if
 * the socket had nothing, -1 if the connection dropped (EOF, error). */
static int raw_read(struct kc_redis *r)
{
	char buf[16384];
	int got = 0;

	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(bufferevent_getfd(r->bev), buf, sizeof(buf), MSG_DONTWAIT);
		char why[320];

		if (n > 0) {
			if (!feed(r, buf, (size_t)n))
				return -1;
			got = 1;
			if ((size_t)n < sizeof(buf))
				break; /* a short read: the socket is drained */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0)
			snprintf(why, sizeof(why), "%s:%u closed the connection", r->host, r->port);
		else
			snprintf(why, sizeof(why), "%s:%u: %s", r->host, r->port, strerror(errno));
		kc_redis_drop(r, r->state == KC_RS_UP ? "connection lost" : "not connected", why,
			      false);
		return -1;
	}
	return got;
}

static void raw_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kc_redis *r = arg;
	uint64_t gen = r->gen;

	(void)fd, (void)what;
	if (raw_read(r) > 0)
		parse(r, gen);
}

/* Plain TCP, connected: our own read event; the bufferevent keeps only its write side. */
static void go_raw(struct kc_redis *r, int fd)
{
	r->rev = event_new(r->base, fd, EV_READ | EV_PERSIST, raw_read_cb, r);
	if (!r->rev || event_add(r->rev, NULL)) {
		if (r->rev)
			event_free(r->rev);
		r->rev = NULL;
		return; /* stays a bufferevent connection: slower, still correct */
	}
	bufferevent_disable(r->bev, EV_READ);
	r->raw = true;
}

struct evbuffer *kc_redis_outbuf(struct kc_redis *r)
{
	return r->raw ? r->wq : bufferevent_get_output(r->bev);
}

size_t kc_redis_unsent(struct kc_redis *r)
{
	return evbuffer_get_length(bufferevent_get_output(r->bev)) +
	       (r->raw ? evbuffer_get_length(r->wq) : 0);
}

/* Polls the socket for up to busy_poll_us while replies are due: a reply that comes back
 * within it is handled without the loop sleeping and being woken. */
static void busy_poll(struct kc_redis *r)
{
	uint64_t gen = r->gen, until = 0;

	for (unsigned i = 0;; i++) {
		int rc = raw_read(r);

		if (rc > 0) {
			parse(r, gen);
			return;
		}
		if (rc < 0)
			return;
		uint64_t now = kc_mono_ns();

		if (!i)
			until = now + (uint64_t)r->busy_poll_us * 1000u;
		else if (now >= until)
			return;
	}
}

/* Raw mode: writes this turn's commands (one sendmsg); what the socket does not take goes to
 * the bufferevent, which writes it when the socket is writable again. */
void kc_redis_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kc_redis *r = arg;
	struct evbuffer *out;
	struct evbuffer_iovec v[16];
	int nv;

	(void)fd, (void)what;
	if (!r->raw || !evbuffer_get_length(r->wq))
		return;
	out = bufferevent_get_output(r->bev);
	if (!evbuffer_get_length(out) && (nv = evbuffer_peek(r->wq, -1, NULL, v, 16)) > 0) {
		struct msghdr m = {.msg_iov = (struct iovec *)v,
				   .msg_iovlen = (size_t)(nv < 16 ? nv : 16)};
		ssize_t n;

		do
			n = sendmsg(bufferevent_getfd(r->bev), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n > 0)
			evbuffer_drain(r->wq, (size_t)n);
		/* an error other than EAGAIN: the bufferevent's own write finds and reports it */
	}
	if (evbuffer_get_length(r->wq)) {
		evbuffer_add_buffer(out, r->wq);
		return;
	}
	if (r->busy_poll_us && r->qlen)
		busy_poll(r);
}

static void try_next(struct kc_redis *r);

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct kc_redis *r = arg;
	int e = EVUTIL_SOCKET_ERROR();
	char why[320];

	if (bev != r->bev)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1, fd = bufferevent_getfd(bev);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		if (!r->tls)
			go_raw(r, fd);
		evutil_freeaddrinfo(r->ai);
		r->ai = r->ai_next = NULL;
		kc_redis_handshake(r);
		return;
	}
	if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
		return;
	describe(r, bev, what, e, why, sizeof(why));
	if (r->state == KC_RS_CONNECTING && r->ai_next) { /* the name has another address */
		bufferevent_free(r->bev);
		r->bev = NULL;
		try_next(r);
		return;
	}
	if (r->state == KC_RS_CONNECTING || r->state == KC_RS_HANDSHAKE)
		kc_redis_drop(r, "not connected", why, false);
	else
		kc_redis_drop(r, "connection lost", why, false);
}

static void try_next(struct kc_redis *r)
{
	int e = 0;

	while (r->ai_next) {
		struct evutil_addrinfo *ai = r->ai_next;
		struct bufferevent *bev = make_bev(r);
		r->ai_next = ai->ai_next;
		if (!bev) {
			kc_redis_failf(r, "%s:%u: cannot create a %s connection", r->host, r->port,
				       r->tls ? "TLS" : "TCP");
			return;
		}
		bufferevent_setcb(bev, read_cb, NULL, event_cb, r);
		r->bev = bev;
		if (bufferevent_socket_connect(bev, ai->ai_addr, (int)ai->ai_addrlen) == 0) {
			bufferevent_enable(bev, EV_READ | EV_WRITE);
			return;
		}
		e = EVUTIL_SOCKET_ERROR();
		r->bev = NULL;
		bufferevent_free(bev);
	}
	kc_redis_failf(r, "connect to %s:%u: %s", r->host, r->port,
		       e ? evutil_socket_error_to_string(e) : "no address");
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct kc_redis *r = arg;

	if (result == EVUTIL_EAI_CANCEL)
		return;
	r->dns_req = NULL;
	if (result) {
		kc_redis_failf(r, "resolve %s: %s", r->host, evutil_gai_strerror(result));
		return;
	}
	r->ai = r->ai_next = res;
	try_next(r);
}

void kc_redis_connect(struct kc_redis *r)
{
	struct evutil_addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
	char port[8];
	struct evdns_getaddrinfo_request *req;

	r->to_sentinel = false;
	r->tls = r->url.tls;
	if (r->url.sentinel && !r->have_master) {
		kc_redis_sentinel_target(r);
	} else if (r->url.sentinel) {
		snprintf(r->host, sizeof(r->host), "%s", r->master_host);
		r->port = r->master_port;
	} else {
		snprintf(r->host, sizeof(r->host), "%s", r->url.addrs[0].host);
		r->port = r->url.addrs[0].port;
	}
	if (!(r->reader = redisReaderCreate())) {
		kc_redis_failf(r, "out of memory for a reply reader");
		return;
	}
	r->state = KC_RS_CONNECTING;
	r->conn_deadline = kc_mono_ms() + r->timeout_ms;
	struct timeval tv = {.tv_sec = r->timeout_ms / 1000,
			     .tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000};
	evtimer_add(r->tmo, &tv);
	snprintf(port, sizeof(port), "%u", r->port);
	hints.ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV;
	if (evutil_getaddrinfo(r->host, port, &hints, &r->ai) == 0) {
		r->ai_next = r->ai;
		try_next(r);
		return;
	}
	r->ai = NULL;
	hints.ai_flags = EVUTIL_AI_NUMERICSERV;
	if (!r->dns && !(r->dns = evdns_base_new(r->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
							      EVDNS_BASE_DISABLE_WHEN_INACTIVE))) {
		kc_redis_failf(r, "resolve %s: cannot start a resolver", r->host);
		return;
	}
	uint64_t gen = r->gen;
	req = evdns_getaddrinfo(r->dns, r->host, port, &hints, dns_cb, r);
	if (r->gen == gen && r->state == KC_RS_CONNECTING && !r->ai)
		r->dns_req = req; /* else it answered at once */
}

void kc_redis_close(struct kc_redis *r)
{
	if (r->dns_req) {
		struct evdns_getaddrinfo_request *req = r->dns_req;
		r->dns_req = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	if (r->ai)
		evutil_freeaddrinfo(r->ai);
	r->ai = r->ai_next = NULL;
	if (r->rev)
		event_free(r->rev); /* before the bufferevent closes the socket */
	r->rev = NULL;
	r->raw = false;
	if (r->wq)
		evbuffer_drain(r->wq, evbuffer_get_length(r->wq));
	if (r->bev)
		bufferevent_free(r->bev);
	r->bev = NULL;
	if (r->reader)
		redisReaderFree(r->reader);
	r->reader = NULL;
	if (r->tmo)
		evtimer_del(r->tmo);
	r->state = KC_RS_DOWN;
	r->hs_left = 0;
	r->gen++;
}

static uint64_t next_rand(struct kc_redis *r)
{
	r->rng ^= r->rng << 13; /* xorshift64 */
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->rng;
}

void kc_redis_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kc_redis *r = arg;

	if (r->state == KC_RS_DOWN)
		kc_redis_connect(r);
}

/* Arms the reconnect: at once, or after min + rand(0 .. min(max, min * 2^attempt) - min). */
void kc_redis_schedule(struct kc_redis *r, bool now)
{
	uint64_t cap, ms = 0;
	struct timeval tv;

	if (!now) {
		cap = (uint64_t)r->backoff_min << (r->attempt < 20 ? r->attempt : 20);
		if (cap > r->backoff_max)
			cap = r->backoff_max;
		ms = r->backoff_min + next_rand(r) % (cap - r->backoff_min + 1);
		r->attempt++;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(r->retry, &tv);
}
