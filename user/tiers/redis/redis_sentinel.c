/* redis_sentinel.c: the Redis client through Sentinel (redis+sentinel://): discovery (each sentinel
 * in turn, SENTINEL get-master-addr-by-name, then ROLE on the node), and failover: a watcher
 * subscribed to +switch-master on one sentinel moves the client at once, and every drop or
 * READONLY reply sends it back to discovery. Sentinels are spoken to in plain TCP, without AUTH. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/log.h"
#include "core/num.h"
#include "tiers/redis/redis_int.h"

void kc_redis_sentinel_target(struct kc_redis *r)
{
	const struct kc_redis_addr *a = &r->url.addrs[r->sent_idx % r->url.naddrs];

	r->to_sentinel = true;
	r->tls = false;
	snprintf(r->host, sizeof(r->host), "%s", a->host);
	r->port = a->port;
}

static bool parse_port(const char *s, size_t n, uint16_t *port)
{
	uint64_t v;

	if (kc_parse_u64n(s, n, 65535, &v) || v == 0)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* The answer to SENTINEL get-master-addr-by-name: [ip, port], or nil for an unknown master. */
void kc_redis_sentinel_answer(struct kc_redis *r, const redisReply *x)
{
	const redisReply *h, *p;
	uint16_t port;

	if (x->type == REDIS_REPLY_NIL) {
		kc_redis_failf(r, "sentinel %s:%u does not know master '%s'", r->host, r->port,
			       r->url.master);
		return;
	}
	if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
	    (h = x->element[0])->type != REDIS_REPLY_STRING ||
	    (p = x->element[1])->type != REDIS_REPLY_STRING || h->len == 0 ||
	    h->len >= sizeof(r->master_host) || !parse_port(p->str, p->len, &port)) {
		kc_redis_failf(r, "sentinel %s:%u: malformed answer for master '%s'", r->host,
			       r->port, r->url.master);
		return;
	}
	memcpy(r->master_host, h->str, h->len);
	r->master_host[h->len] = '\0';
	r->master_port = port;
	r->have_master = true;
	r->good_idx = r->sent_idx % r->url.naddrs;
	r->sent_fails = 0;
	log_debug("%s: sentinel %s:%u: master '%s' is %s:%u", r->tag, r->host, r->port,
		  r->url.master, r->master_host, port);
	kc_redis_close(r); /* not a failure: on to the master */
	kc_redis_schedule(r, true);
}

/* ROLE on the node Sentinel named: its first element must be "master". */
bool kc_redis_sentinel_role(struct kc_redis *r, const redisReply *x)
{
	const redisReply *role = x->type == REDIS_REPLY_ARRAY && x->elements ? x->element[0] : NULL;

	if (role && role->type == REDIS_REPLY_STRING && role->len == 6 &&
	    memcmp(role->str, "master", 6) == 0)
		return true;
	kc_redis_failf(r, "%s:%u is a %.*s, not the master of '%s'", r->host, r->port,
		       role && role->type == REDIS_REPLY_STRING ? (int)role->len : 7,
		       role && role->type == REDIS_REPLY_STRING ? role->str : "unknown",
		       r->url.master);
	return false;
}

void kc_redis_sentinel_dropped(struct kc_redis *r, bool was_query, bool *now)
{
	bool keep = r->keep_master;

	r->keep_master = false;
	if (was_query) {	    /* the next sentinel at once, until each had its turn */
		if (r->have_master) /* a +switch-master arrived meanwhile */
			return;
		r->sent_idx = (r->sent_idx + 1) % r->url.naddrs;
		if (++r->sent_fails < r->url.naddrs)
			*now = true;
		else
			r->sent_fails = 0;
		return;
	}
	if (!keep) { /* rediscover, starting with the sentinel that answered last */
		r->have_master = false;
		r->sent_idx = r->good_idx;
	}
}

/* "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>" from the watcher. */
static void on_switch(void *ctx, const char *chan, size_t nchan, const char *msg, size_t n)
{
	struct kc_redis *r = ctx;
	char buf[600], name[256], oh[256], nh[256];
	unsigned op, np;

	if (n >= sizeof(buf))
		return;
	memcpy(buf, msg, n);
	buf[n] = '\0';
	if (sscanf(buf, "%255s %255s %u %255s %u", name, oh, &op, nh, &np) != 5 || np == 0 ||
	    np > 65535 || strcmp(name, r->url.master) != 0)
		return;
	log_info("%s: sentinel: +switch-master '%s' %s:%u -> %s:%u", r->tag, name, oh, op, nh, np);
	snprintf(r->master_host, sizeof(r->master_host), "%s", nh);
	r->master_port = (uint16_t)np;
	r->have_master = true;
	if (r->state == KC_RS_UP && strcmp(r->host, nh) == 0 && r->port == np)
		return; /* there already */
	if (r->state != KC_RS_DOWN) {
		r->keep_master = true;
		kc_redis_drop(r, "connection lost", "failover: the master moved", true);
	} else {
		kc_redis_schedule(r, true);
	}
}

static void watch_start(struct kc_redis *r)
{
	struct kc_redis_url u = {.naddrs = 1};
	char name[128];
	char err[256];

	u.addrs[0] = r->url.addrs[r->watch_idx % r->url.naddrs];
	snprintf(name, sizeof(name), "%s-sentinel", r->name ? r->name : "client");
	struct kc_redis_opts o = {.url = &u,
				  .timeout_ms = r->timeout_ms,
				  .backoff_min_ms = r->backoff_min,
				  .backoff_max_ms = r->backoff_max,
				  .name = name};
	r->watch = kc_redis_new(r->base, &o, err, sizeof(err));
	if (!r->watch) {
		log_error("%s: sentinel watcher: %s", r->tag, err);
		return;
	}
	r->watch->sentinel_peer = true;
	if (kc_redis_subscribe(r->watch, "+switch-master", on_switch, r)) {
		log_error("%s: sentinel watcher: out of memory", r->tag);
		kc_redis_free(r->watch);
		r->watch = NULL;
	}
	r->watch_down = 0;
}

/* Every KC_REDIS_WATCH_MS: a watcher that stayed down for two checks moves to the next sentinel. */
static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kc_redis *r = arg;

	if (r->watch && kc_redis_up(r->watch)) {
		r->watch_down = 0;
		return;
	}
	if (r->watch && (++r->watch_down < 2 || r->url.naddrs == 1))
		return;
	kc_redis_free(r->watch);
	r->watch = NULL;
	r->watch_idx = (r->watch_idx + 1) % r->url.naddrs;
	watch_start(r);
}

/* The client reached a master: make sure a watcher listens for failovers. */
void kc_redis_sentinel_up(struct kc_redis *r)
{
	struct timeval tv = {.tv_sec = KC_REDIS_WATCH_MS / 1000,
			     .tv_usec = (KC_REDIS_WATCH_MS % 1000) * 1000};

	if (r->watch_ev)
		return;
	r->watch_ev = event_new(r->base, -1, EV_PERSIST, watch_cb, r);
	if (!r->watch_ev) {
		log_error("%s: out of memory for the sentinel watcher", r->tag);
		return;
	}
	evtimer_add(r->watch_ev, &tv);
	r->watch_idx = r->good_idx;
	watch_start(r);
}

void kc_redis_sentinel_free(struct kc_redis *r)
{
	if (r->watch_ev)
		event_free(r->watch_ev);
	r->watch_ev = NULL;
	kc_redis_free(r->watch);
	r->watch = NULL;
}
