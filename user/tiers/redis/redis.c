/* redis.c: kcache's Redis client (see redis.h): the command queue and its timeouts, reply
 * dispatch, up/down transitions, creation and teardown. Sockets, TLS and backoff live in
 * redis_conn.c, the handshake and pub/sub in redis_pubsub.c, Sentinel in redis_sentinel.c. */
#include "tiers/redis/redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/log.h"
#include "tiers/redis/redis_int.h"

static void arm_tmo(struct kc_redis *r, uint64_t deadline)
{
	uint64_t now = kc_mono_ms(), ms = deadline > now ? deadline - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
			     .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(r->tmo, &tv);
}

/* Encodes one command into the output buffer in one reserved extent, so that it is either
 * written whole or not at all (a half-written command would desynchronise the stream). */
static int encode(struct kc_redis *r, int argc, const char *const *argv, const size_t *argvlen)
{
	struct evbuffer *out = kc_redis_outbuf(r);
	struct evbuffer_iovec v;
	size_t total = 32;
	char *p;

	for (int i = 0; i < argc; i++)
		total += 32 + (argvlen ? argvlen[i] : strlen(argv[i]));
	if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) != 1)
		return -ENOMEM;
	p = v.iov_base;
	p += sprintf(p, "*%d\r\n", argc);
	for (int i = 0; i < argc; i++) {
		size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
		p += sprintf(p, "$%zu\r\n", n);
		if (n)
			memcpy(p, argv[i], n);
		p += n;
		*p++ = '\r';
		*p++ = '\n';
	}
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	if (evbuffer_commit_space(out, &v, 1))
		return -ENOMEM;
	if (r->raw)
		event_active(r->flush, 0, 0); /* written later in this loop turn */
	return 0;
}

static int grow(struct kc_redis *r)
{
	uint32_t ncap = r->qcap ? r->qcap * 2 : 64;
	struct kc_redis_pending *nq = malloc(ncap * sizeof(*nq));

	if (!nq)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->qlen; i++)
		nq[i] = r->q[(r->qhead + i) % r->qcap];
	free(r->q);
	r->q = nq;
	r->qcap = ncap;
	r->qhead = 0;
	return 0;
}

/* Queues the reply slot and writes the command; arms the timeout when nothing else did. */
int kc_redis_push(struct kc_redis *r, enum kc_redis_op op, const char *what, bool step,
		  uint64_t deadline, int argc, const char *const *argv, const size_t *argvlen)
{
	struct kc_redis_pending *e;

	if (r->qlen == r->qcap && grow(r))
		return -ENOMEM;
	if (encode(r, argc, argv, argvlen))
		return -ENOMEM;
	e = &r->q[(r->qhead + r->qlen++) % r->qcap];
	*e = (struct kc_redis_pending){
	    .op = (uint8_t)op, .what = what, .step = step, .deadline = deadline};
	if (step)
		r->hs_left++;
	if (!evtimer_pending(r->tmo, NULL))
		arm_tmo(r, deadline);
	return 0;
}

static void defer_fail(struct kc_redis *r, kc_redis_cb cb, void *ctx, const char *err)
{
	struct kc_redis_deferred *d = malloc(sizeof(*d));

	if (!d) { /* no memory even to defer: the one case that calls back at once */
		r->st.errors++;
		cb(ctx, NULL, "out of memory");
		return;
	}
	*d = (struct kc_redis_deferred){.cb = cb, .ctx = ctx, .err = err};
	if (r->dtail)
		r->dtail->next = d;
	else
		r->dhead = d;
	r->dtail = d;
	event_active(r->defer, 0, 0);
}

static void run_deferred(struct kc_redis *r)
{
	struct kc_redis_deferred *d = r->dhead;

	r->dhead = r->dtail = NULL;
	while (d) {
		struct kc_redis_deferred *next = d->next;
		r->st.errors++;
		d->cb(d->ctx, NULL, d->err);
		free(d);
		d = next;
	}
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kc_redis *r = arg;

	while (r->dhead) /* callbacks may defer more */
		run_deferred(r);
}

void kc_redis_cmd(struct kc_redis *r, kc_redis_cb cb, void *ctx, int argc, const char *const *argv,
		  const size_t *argvlen)
{
	struct kc_redis_pending *e;
	const char *why = NULL;

	r->st.cmds++;
	if (r->subscriber)
		why = "subscriber client";
	else if (argc <= 0)
		why = "no arguments";
	else if (r->state != KC_RS_UP)
		why = "not connected";
	else if (r->n_user >= r->max_in_flight || kc_redis_unsent(r) >= r->max_out)
		why = "too many in flight";
	else if (kc_redis_push(r, KC_ROP_USER, NULL, false, kc_mono_ms() + r->timeout_ms, argc,
			       argv, argvlen))
		why = "out of memory";
	if (why) {
		defer_fail(r, cb, ctx, why);
		return;
	}
	e = &r->q[(r->qhead + r->qlen - 1) % r->qcap];
	e->cb = cb;
	e->ctx = ctx;
	r->n_user++;
}

static bool pop(struct kc_redis *r, struct kc_redis_pending *e)
{
	if (!r->qlen)
		return false;
	*e = r->q[r->qhead];
	r->qhead = (r->qhead + 1) % r->qcap;
	r->qlen--;
	if (e->op == KC_ROP_USER)
		r->n_user--;
	else if (e->op == KC_ROP_PING)
		r->ping_out = false;
	return true;
}

static void fail_all(struct kc_redis *r, const char *err)
{
	struct kc_redis_pending e;

	while (pop(r, &e)) {
		if (e.op != KC_ROP_USER)
			continue;
		r->st.errors++;
		if (err == r->tmo_err)
			r->st.timeouts++;
		e.cb(e.ctx, NULL, err);
	}
	r->hs_left = 0;
}

/* Whether why was logged since the client was last up (and remembers it): a server that keeps
 * failing, even in turns between two reasons, is logged once per reason, not per retry. */
static bool seen(struct kc_redis *r, const char *why)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = why; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (unsigned i = 0; i < r->nseen && i < KC_REDIS_SEEN; i++)
		if (r->seen[i] == h)
			return true;
	r->seen[r->nseen++ % KC_REDIS_SEEN] = h;
	return false;
}

void kc_redis_drop(struct kc_redis *r, const char *err, const char *why, bool now)
{
	bool was_up = r->state == KC_RS_UP, was_query = r->to_sentinel;

	kc_redis_close(r);
	if (was_up) {
		log_warn("%s: down (%s): %s", r->tag, r->url_str, why);
		r->nseen = 0;
		seen(r, why);
	} else if (!seen(r, why)) {
		log_warn("%s: cannot connect (%s): %s", r->tag, r->url_str, why);
	} else {
		log_debug("%s: cannot connect (%s): %s", r->tag, r->url_str, why);
	}
	if (was_up && r->on_state)
		r->on_state(r->state_ctx, false);
	fail_all(r, err);
	if (r->closing)
		return;
	if (r->url.sentinel)
		kc_redis_sentinel_dropped(r, was_query, &now);
	kc_redis_schedule(r, now);
}

void kc_redis_failf(struct kc_redis *r, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	kc_redis_drop(r, "not connected", why, false);
}

static void tmo_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kc_redis *r = arg;
	uint64_t now = kc_mono_ms();

	if (r->state == KC_RS_CONNECTING) {
		kc_redis_failf(r, "connect to %s:%u: timeout after %u ms", r->host, r->port,
			       r->timeout_ms);
		return;
	}
	if (!r->qlen || r->state == KC_RS_DOWN)
		return;
	if (r->q[r->qhead].deadline > now) {
		arm_tmo(r, r->q[r->qhead].deadline);
		return;
	}
	if (r->state == KC_RS_HANDSHAKE) {
		kc_redis_failf(r, "%s %s:%u: timeout after %u ms",
			       r->to_sentinel ? "sentinel query to" : "handshake with", r->host,
			       r->port, r->timeout_ms);
		return;
	}
	char why[400];
	snprintf(why, sizeof(why), "no reply from %s:%u: %s", r->host, r->port, r->tmo_err);
	kc_redis_drop(r, r->tmo_err, why, false);
}

static void became_up(struct kc_redis *r)
{
	r->state = KC_RS_UP;
	r->attempt = 0;
	r->nseen = 0;
	if (r->ever_up)
		r->st.reconnects++;
	if (r->url.sentinel && r->ever_up &&
	    (strcmp(r->up_host, r->host) != 0 || r->up_port != r->port)) {
		r->st.failovers++;
		log_warn("%s: failover: master '%s' is now %s:%u (was %s:%u)", r->tag,
			 r->url.master, r->host, r->port, r->up_host, r->up_port);
	}
	snprintf(r->up_host, sizeof(r->up_host), "%s", r->host);
	r->up_port = r->port;
	r->ever_up = true;
	log_info("%s: connected to %s:%u (%s)", r->tag, r->host, r->port, r->url_str);
	if (r->url.sentinel)
		kc_redis_sentinel_up(r);
	if (r->on_state)
		r->on_state(r->state_ctx, true);
}

static void step_reply(struct kc_redis *r, const struct kc_redis_pending *e, const redisReply *x)
{
	if (x->type == REDIS_REPLY_ERROR) {
		if (e->op == KC_ROP_QUERY)
			kc_redis_failf(r, "sentinel %s:%u: %s", r->host, r->port, x->str);
		else
			kc_redis_failf(r, "%s failed on %s:%u: %s", e->what, r->host, r->port,
				       x->str);
		return;
	}
	if (e->op == KC_ROP_QUERY) {
		kc_redis_sentinel_answer(r, x);
		return;
	}
	if (e->op == KC_ROP_ROLE && !kc_redis_sentinel_role(r, x))
		return;
	if (e->step && --r->hs_left == 0 && r->state == KC_RS_HANDSHAKE)
		became_up(r);
}

/* One parsed reply from the connection (redis_conn.c's read callback); frees it. */
void kc_redis_on_reply(struct kc_redis *r, void *reply)
{
	redisReply *x = reply;
	struct kc_redis_pending e;

	if (r->subscriber && kc_redis_deliver(r, x))
		goto out;
	if (!pop(r, &e)) {
		kc_redis_drop(r, "protocol error", "protocol error: a reply nobody asked for",
			      false);
		goto out;
	}
	if (e.op == KC_ROP_USER) {
		e.cb(e.ctx, x, NULL);
		if (r->url.sentinel && x->type == REDIS_REPLY_ERROR &&
		    strncmp(x->str, "READONLY", 8) == 0 && r->state == KC_RS_UP) {
			r->keep_master = false;
			kc_redis_drop(r, "connection lost",
				      "READONLY: the node is no longer the master", true);
		}
	} else if (e.op == KC_ROP_SUBSCRIBE && !e.step && x->type == REDIS_REPLY_ERROR) {
		log_error("%s: SUBSCRIBE failed: %s", r->tag, x->str);
	} else if (e.step) {
		step_reply(r, &e, x);
	}
out:
	freeReplyObject(x);
}

static int copy_opts(struct kc_redis *r, const struct kc_redis_opts *o, char *err, size_t errlen)
{
	if (!o || !o->url || !o->url->naddrs) {
		kc_errf(err, errlen, "redis: no URL");
		return -EINVAL;
	}
	if (o->url->sentinel && (!o->url->master || !*o->url->master)) {
		kc_errf(err, errlen, "redis: a sentinel URL needs a master name");
		return -EINVAL;
	}
	if (o->name) {
		for (const char *p = o->name; *p; p++)
			if (*p <= ' ' || *p >= 0x7f) {
				kc_errf(err, errlen,
					"redis: client name '%s': printable, no spaces", o->name);
				return -EINVAL;
			}
		if (!*o->name) {
			kc_errf(err, errlen, "redis: empty client name");
			return -EINVAL;
		}
		if (!(r->name = strdup(o->name)))
			return -ENOMEM;
	}
	if (kc_redis_url_dup(&r->url, o->url))
		return -ENOMEM;
	r->timeout_ms = o->url->timeout_ms ? o->url->timeout_ms
			: o->timeout_ms	   ? o->timeout_ms
					   : 200;
	r->backoff_min = o->backoff_min_ms ? o->backoff_min_ms : 50;
	r->backoff_max = o->backoff_max_ms ? o->backoff_max_ms : 5000;
	if (r->backoff_max < r->backoff_min)
		r->backoff_max = r->backoff_min;
	r->on_state = o->on_state;
	r->state_ctx = o->state_ctx;
	r->busy_poll_us = o->busy_poll_us;
	snprintf(r->tag, sizeof(r->tag), "redis %s", r->name ? r->name : "client");
	snprintf(r->tmo_err, sizeof(r->tmo_err), "timeout after %u ms", r->timeout_ms);
	kc_redis_url_print(&r->url, r->url_str, sizeof(r->url_str));
	return 0;
}

struct kc_redis *kc_redis_new(struct event_base *base, const struct kc_redis_opts *o, char *err,
			      size_t errlen)
{
	struct kc_redis *r = calloc(1, sizeof(*r));
	int rc;

	if (!r) {
		kc_errf(err, errlen, "redis: out of memory");
		return NULL;
	}
	r->base = base;
	r->max_in_flight = KC_REDIS_DEF_MAX_IN_FLIGHT;
	r->max_out = KC_REDIS_DEF_MAX_OUT;
	r->rng = kc_mono_ms() ^ (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ull;
	rc = copy_opts(r, o, err, errlen);
	if (rc == -ENOMEM)
		kc_errf(err, errlen, "redis: out of memory");
	if (rc)
		goto fail;
	if (r->url.tls && kc_redis_tls_init(r, err, errlen))
		goto fail;
	r->tmo = evtimer_new(base, tmo_cb, r);
	r->retry = evtimer_new(base, kc_redis_retry_cb, r);
	r->defer = event_new(base, -1, 0, defer_cb, r);
	r->ping = event_new(base, -1, EV_PERSIST, kc_redis_ping_cb, r);
	r->flush = event_new(base, -1, 0, kc_redis_flush_cb, r);
	r->wq = evbuffer_new();
	if (!r->tmo || !r->retry || !r->defer || !r->ping || !r->flush || !r->wq) {
		kc_errf(err, errlen, "redis: out of memory for events");
		goto fail;
	}
	kc_redis_schedule(r, true);
	return r;
fail:
	kc_redis_free(r);
	return NULL;
}

void kc_redis_free(struct kc_redis *r)
{
	if (!r)
		return;
	r->closing = true;
	kc_redis_sentinel_free(r);
	kc_redis_close(r);
	fail_all(r, "client closed");
	while (r->dhead)
		run_deferred(r);
	if (r->tmo)
		event_free(r->tmo);
	if (r->retry)
		event_free(r->retry);
	if (r->defer)
		event_free(r->defer);
	if (r->ping)
		event_free(r->ping);
	if (r->flush)
		event_free(r->flush);
	if (r->wq)
		evbuffer_free(r->wq);
	if (r->dns)
		evdns_base_free(r->dns, 0);
	if (r->ssl_ctx)
		SSL_CTX_free(r->ssl_ctx);
	for (unsigned i = 0; i < r->nchans; i++)
		free(r->chans[i].name);
	free(r->chans);
	free(r->q);
	free(r->name);
	kc_redis_url_free(&r->url);
	free(r);
}

bool kc_redis_up(const struct kc_redis *r)
{
	return r && r->state == KC_RS_UP;
}

void kc_redis_set_limits(struct kc_redis *r, uint32_t max_in_flight, size_t max_out_bytes)
{
	if (max_in_flight)
		r->max_in_flight = max_in_flight;
	if (max_out_bytes)
		r->max_out = max_out_bytes;
}

void kc_redis_get_stats(const struct kc_redis *r, struct kc_redis_stats *out)
{
	*out = r->st;
	out->in_flight = r->n_user;
}
