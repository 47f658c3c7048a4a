/* redis_int.h: the inside of struct kc_redis, shared by redis.c (commands, replies, state),
 * redis_conn.c (sockets, TLS, DNS, backoff), redis_sentinel.c (discovery, failover) and
 * redis_pubsub.c (handshake, subscriber mode). Not a public header: the tier code uses redis.h. */
#ifndef KC_REDIS_INT_H
#define KC_REDIS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/clock.h"
#include "tiers/redis/redis.h"

#define KC_REDIS_DEF_MAX_IN_FLIGHT 65536u
#define KC_REDIS_DEF_MAX_OUT	   (64u << 20)
#define KC_REDIS_PING_MS	   1000 /* subscriber health check */
#define KC_REDIS_WATCH_MS	   2000 /* how often the sentinel watcher is checked */
#define KC_REDIS_SEEN		   8	/* failure reasons remembered, to log each once */

/* The connection state machine:
 *   DOWN --retry timer--> CONNECTING (DNS, TCP, TLS) --connected--> HANDSHAKE (AUTH, SELECT,
 *   SETNAME, ROLE, SUBSCRIBE, or the SENTINEL query) --last reply--> UP
 * Any failure, timeout or loss goes back to DOWN, failing what is in flight, and arms the retry
 * timer (backoff, or at once for the next sentinel or a known new master). */
enum kc_redis_state { KC_RS_DOWN, KC_RS_CONNECTING, KC_RS_HANDSHAKE, KC_RS_UP };

/* What a queued reply belongs to. */
enum kc_redis_op {
	KC_ROP_USER,	  /* kc_redis_cmd: cb/ctx */
	KC_ROP_STEP,	  /* a handshake step (AUTH, SELECT, CLIENT SETNAME, PING); what names it */
	KC_ROP_ROLE,	  /* handshake through Sentinel: the node must say it is a master */
	KC_ROP_SUBSCRIBE, /* one channel's subscribe confirmation */
	KC_ROP_PING,	  /* subscriber health check */
	KC_ROP_QUERY,	  /* SENTINEL get-master-addr-by-name */
};

struct kc_redis_pending {
	kc_redis_cb cb;
	void *ctx;
	const char *what;
	uint64_t deadline; /* CLOCK_MONOTONIC ms */
	uint8_t op;	   /* enum kc_redis_op */
	bool step;	   /* part of the handshake: its reply counts down hs_left */
};

/* A failure decided inside kc_redis_cmd, delivered from the event loop (callbacks never run
 * inside kc_redis_cmd). */
struct kc_redis_deferred {
	struct kc_redis_deferred *next;
	kc_redis_cb cb;
	void *ctx;
	const char *err;
};

struct kc_redis_chan {
	char *name;
	size_t len;
	kc_redis_msg_fn fn;
	void *ctx;
};

struct kc_redis {
	struct event_base *base;
	struct kc_redis_url url;
	char *name; /* log prefix and SETNAME; NULL: no SETNAME */
	char tag[96];
	char url_str[512]; /* redacted, for logs */
	uint32_t timeout_ms, backoff_min, backoff_max;
	void (*on_state)(void *ctx, bool up);
	void *state_ctx;
	char tmo_err[48]; /* "timeout after N ms" */

	SSL_CTX *ssl_ctx;
	struct evdns_base *dns;
	struct evdns_getaddrinfo_request *dns_req;
	struct evutil_addrinfo *ai, *ai_next;

	/* The connection */
	enum kc_redis_state state;
	uint64_t gen; /* bumped on every close: a callback compares it to see a drop */
	struct bufferevent *bev;
	void *reader; /* redisReader */
	/* Plain TCP once connected ("raw"): the bufferevent only connects and drains what the
	 * socket could not take at once. Replies are read by our own event (recv straight into
	 * the reader, no FIONREAD probe), and commands queue in wq, which flush writes before
	 * the loop next sleeps: all the commands of one loop turn in one sendmsg, and no EPOLLOUT
	 * arming per command. TLS keeps the whole bufferevent_openssl path. */
	bool raw;
	struct event *rev;     /* raw: the socket is readable */
	struct event *flush;   /* raw: activated by a queued command; runs later in the same turn */
	struct evbuffer *wq;   /* raw: commands of this turn not written yet */
	uint32_t busy_poll_us; /* raw: after a flush, poll for the reply this long (0: never) */
	char host[256];
	uint16_t port;
	bool tls;	  /* this connection uses TLS */
	bool to_sentinel; /* this connection is a SENTINEL query */
	uint64_t conn_deadline;
	uint32_t hs_left;
	bool ping_out;

	/* In-flight replies, oldest first: a ring */
	struct kc_redis_pending *q;
	uint32_t qcap, qhead, qlen;
	uint32_t n_user;
	uint32_t max_in_flight;
	size_t max_out;

	struct event *tmo;   /* connect deadline, then the oldest reply's deadline */
	struct event *retry; /* backoff, or an immediate (re)connect */
	struct event *defer; /* runs the deferred failures */
	struct event *ping;  /* subscribers only */
	struct kc_redis_deferred *dhead, *dtail;
	uint32_t attempt;
	uint64_t rng;
	uint32_t seen[KC_REDIS_SEEN]; /* hashes of the failures logged since the last up */
	unsigned nseen;
	bool closing;
	bool ever_up;

	bool subscriber;
	struct kc_redis_chan *chans;
	unsigned nchans;

	/* Sentinel */
	bool sentinel_peer; /* this client talks to a sentinel (the watcher): PING handshake */
	bool have_master;   /* master_host is known: connect there, not to a sentinel */
	bool keep_master;   /* the next drop keeps have_master (a +switch-master told us) */
	char master_host[256];
	uint16_t master_port;
	char up_host[256]; /* where the last handshake completed: failovers are changes of it */
	uint16_t up_port;
	unsigned sent_idx, sent_fails, good_idx;
	struct kc_redis *watch;
	struct event *watch_ev;
	unsigned watch_idx, watch_down;

	struct kc_redis_stats st;
};

/* redis.c */
int kc_redis_push(struct kc_redis *r, enum kc_redis_op op, const char *what, bool step,
		  uint64_t deadline, int argc, const char *const *argv, const size_t *argvlen);
void kc_redis_on_reply(struct kc_redis *r, void *reply);
/* Closes the connection, logs why (once per kind of failure), reports down, fails in flight
 * commands with err, and arms the retry timer: at once if now, else after a backoff. */
void kc_redis_drop(struct kc_redis *r, const char *err, const char *why, bool now);
/* A handshake or discovery step failed: drop with "not connected" for the log message why. */
void kc_redis_failf(struct kc_redis *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* redis_pubsub.c */
void kc_redis_handshake(struct kc_redis *r);
/* A published message (["message", channel, payload]) goes to its channel's fn: true. */
bool kc_redis_deliver(struct kc_redis *r, const redisReply *x);
void kc_redis_ping_cb(evutil_socket_t fd, short what, void *arg);

/* redis_conn.c */
int kc_redis_tls_init(struct kc_redis *r, char *err, size_t errlen);
void kc_redis_connect(struct kc_redis *r);
/* Frees the connection's bufferevent, reader, DNS request; bumps gen; state DOWN. */
void kc_redis_close(struct kc_redis *r);
void kc_redis_schedule(struct kc_redis *r, bool now);
void kc_redis_retry_cb(evutil_socket_t fd, short what, void *arg);
/* Where a command is encoded: wq (raw) or the bufferevent's output. */
struct evbuffer *kc_redis_outbuf(struct kc_redis *r);
/* Bytes queued and not written yet. */
size_t kc_redis_unsent(struct kc_redis *r);
void kc_redis_flush_cb(evutil_socket_t fd, short what, void *arg);

/* redis_sentinel.c */
void kc_redis_sentinel_target(struct kc_redis *r);
void kc_redis_sentinel_answer(struct kc_redis *r, const redisReply *reply);
bool kc_redis_sentinel_role(struct kc_redis *r, const redisReply *reply);
void kc_redis_sentinel_up(struct kc_redis *r);
/* After a drop: chooses the next sentinel or forgets the master; may ask for an immediate retry. */
void kc_redis_sentinel_dropped(struct kc_redis *r, bool was_query, bool *now);
void kc_redis_sentinel_free(struct kc_redis *r);

#endif
