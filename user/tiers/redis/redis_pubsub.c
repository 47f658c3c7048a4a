/* redis_pubsub.c: the Redis client's handshake (AUTH, SELECT, SETNAME, ROLE, SUBSCRIBE, or the
 * SENTINEL query) and its subscriber mode: channels, message delivery and the health-check ping.
 * See redis.h; the reply queue is in redis.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/log.h"
#include "tiers/redis/redis_int.h"

static bool is_str(const redisReply *x, const char *s)
{
	size_t n = strlen(s);

	return x && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS) &&
	       x->len == n && strncasecmp(x->str, s, n) == 0;
}

/* Sends the handshake, or the SENTINEL query on a discovery connection. Every step has the
 * connect deadline, so that connect + TLS + handshake share one timeout. */
void kc_redis_handshake(struct kc_redis *r)
{
	uint64_t dl = r->conn_deadline;
	char db[16];
	int rc = 0;

	r->state = KC_RS_HANDSHAKE;
	if (r->to_sentinel) {
		const char *a[] = {"SENTINEL", "get-master-addr-by-name", r->url.master};
		rc = kc_redis_push(r, KC_ROP_QUERY, "SENTINEL", true, dl, 3, a, NULL);
		goto out;
	}
	if (r->url.pass && !r->sentinel_peer) {
		const char *a[] = {"AUTH", r->url.user, r->url.pass};
		if (r->url.user)
			rc |= kc_redis_push(r, KC_ROP_STEP, "AUTH", true, dl, 3, a, NULL);
		else
			rc |= kc_redis_push(r, KC_ROP_STEP, "AUTH", true, dl, 2,
					    (const char *[]){"AUTH", r->url.pass}, NULL);
	}
	if (r->url.db && !r->sentinel_peer) {
		snprintf(db, sizeof(db), "%u", r->url.db);
		rc |= kc_redis_push(r, KC_ROP_STEP, "SELECT", true, dl, 2,
				    (const char *[]){"SELECT", db}, NULL);
	}
	if (r->name && !r->sentinel_peer)
		rc |= kc_redis_push(r, KC_ROP_STEP, "CLIENT SETNAME", true, dl, 3,
				    (const char *[]){"CLIENT", "SETNAME", r->name}, NULL);
	if (r->url.sentinel)
		rc |= kc_redis_push(r, KC_ROP_ROLE, "ROLE", true, dl, 1, (const char *[]){"ROLE"},
				    NULL);
	if (!r->hs_left) /* something must answer before we call the server up */
		rc |= kc_redis_push(r, KC_ROP_STEP, "PING", true, dl, 1, (const char *[]){"PING"},
				    NULL);
	for (unsigned i = 0; i < r->nchans; i++) {
		const char *a[] = {"SUBSCRIBE", r->chans[i].name};
		size_t l[] = {9, r->chans[i].len};
		rc |= kc_redis_push(r, KC_ROP_SUBSCRIBE, "SUBSCRIBE", true, dl, 2, a, l);
	}
out:
	if (rc)
		kc_redis_failf(r, "out of memory for the handshake");
}

/* A published message: ["message", channel, payload]. */
bool kc_redis_deliver(struct kc_redis *r, const redisReply *x)
{
	const redisReply *ch, *msg;

	if (x->type != REDIS_REPLY_ARRAY || x->elements != 3 || !is_str(x->element[0], "message"))
		return false;
	ch = x->element[1];
	msg = x->element[2];
	if (ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING)
		return false;
	for (unsigned i = 0; i < r->nchans; i++)
		if (r->chans[i].len == ch->len && memcmp(r->chans[i].name, ch->str, ch->len) == 0)
			r->chans[i].fn(r->chans[i].ctx, ch->str, ch->len, msg->str, msg->len);
	return true;
}

void kc_redis_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kc_redis *r = arg;

	if (r->state != KC_RS_UP || r->ping_out)
		return;
	if (kc_redis_push(r, KC_ROP_PING, "PING", false, kc_mono_ms() + r->timeout_ms, 1,
			  (const char *[]){"PING"}, NULL) == 0)
		r->ping_out = true;
}

int kc_redis_subscribe(struct kc_redis *r, const char *channel, kc_redis_msg_fn fn, void *ctx)
{
	struct kc_redis_chan *nc, *c;
	size_t n = channel ? strlen(channel) : 0;

	if (!n || !fn || r->n_user)
		return -EINVAL;
	for (unsigned i = 0; i < r->nchans; i++)
		if (r->chans[i].len == n && memcmp(r->chans[i].name, channel, n) == 0)
			return -EINVAL;
	nc = realloc(r->chans, (r->nchans + 1) * sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	r->chans = nc;
	c = &nc[r->nchans];
	*c = (struct kc_redis_chan){.name = strdup(channel), .len = n, .fn = fn, .ctx = ctx};
	if (!c->name)
		return -ENOMEM;
	r->nchans++;
	if (!r->subscriber) {
		struct timeval tv = {.tv_sec = KC_REDIS_PING_MS / 1000,
				     .tv_usec = (KC_REDIS_PING_MS % 1000) * 1000};
		r->subscriber = true;
		evtimer_add(r->ping, &tv);
	}
	/* Connected: subscribe now; otherwise the handshake will. */
	if ((r->state == KC_RS_UP || r->state == KC_RS_HANDSHAKE) && !r->to_sentinel &&
	    kc_redis_push(r, KC_ROP_SUBSCRIBE, "SUBSCRIBE", false, kc_mono_ms() + r->timeout_ms, 2,
			  (const char *[]){"SUBSCRIBE", c->name}, (const size_t[]){9, n}))
		return -ENOMEM;
	return 0;
}
