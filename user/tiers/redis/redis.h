/* redis.h: kcache's non-blocking Redis client for the Redis tier (L2) and its invalidation channel.
 *
 * Built on libevent bufferevents (plain TCP, or OpenSSL for rediss://); hiredis 0.14 is used only
 * for its reply parser and reply type. One client belongs to one event_base and every function
 * here must be called on that base's thread; nothing blocks (connect, TLS handshake and DNS run
 * on the base). Reconnects with exponential backoff and full jitter, fails every command within
 * its timeout, follows Sentinel failovers. Not here: which keys go where (the tier code). */
#ifndef KC_REDIS_H
#define KC_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

struct event_base;

#define KC_REDIS_URL_MAX       4096 /* longest URL accepted */
#define KC_REDIS_MAX_SENTINELS 16

struct kc_redis_addr {
	char *host; /* name or numeric address, without brackets for IPv6 */
	uint16_t port;
};

/* A parsed URL:
 *   redis://[user:pass@]host[:port][/db]                 port defaults to 6379
 *   rediss://…                                           the same over TLS
 *   redis+sentinel://[user:pass@]MASTER@host[:port],host[:port]…[/db]    sentinel port 26379
 *   rediss+sentinel://…                                  TLS to the data nodes, sentinels plain
 * Query options: ?timeout_ms=N&ca=PATH&cert=PATH&key=PATH&insecure=0|1 (the TLS ones need
 * rediss). user, pass and paths may be %XX-encoded. */
struct kc_redis_url {
	bool tls;
	bool sentinel;
	char *user;   /* NULL: none (AUTH pass, the "default" user) */
	char *pass;   /* NULL: no AUTH */
	char *master; /* sentinel master name, NULL otherwise */
	struct kc_redis_addr addrs[KC_REDIS_MAX_SENTINELS]; /* the node, or the sentinels */
	unsigned naddrs;
	unsigned db;
	uint32_t timeout_ms; /* 0: not given */
	char *ca;	     /* CA file to verify the server; NULL: the system's store */
	char *cert;	     /* client certificate for mutual TLS, with key */
	char *key;
	bool insecure; /* skip certificate and hostname verification */
};

/* Parses s into u (zeroed first). Returns 0, or -1 with a precise reason in err, such as
 * "redis URL: port 99999 out of range"; u then holds nothing to free. */
int kc_redis_url_parse(const char *s, struct kc_redis_url *u, char *err, size_t errlen);
/* The URL of one key (the audit stream's): the path's last segment is the key (%XX-decoded,
 * required), a segment before it the db: scheme://[user:pass@]host[:port][/DB]/KEY[?options],
 * with every scheme and option of kc_redis_url_parse. Returns 0 with *key malloc'd (the
 * caller frees it), or -1 with the reason in err (never the password); then neither u nor
 * *key holds anything to free. */
int kc_redis_url_parse_key(const char *s, struct kc_redis_url *u, char **key, char *err,
			   size_t errlen);
/* Deep copy. Returns 0 or -ENOMEM (dst then holds nothing to free). */
int kc_redis_url_dup(struct kc_redis_url *dst, const struct kc_redis_url *src);
void kc_redis_url_free(struct kc_redis_url *u);
/* The URL for logs, password redacted: "redis://user:***@host:6379/0" (query options that were
 * given are printed too; none of them is secret). Always NUL-terminates when n > 0. */
void kc_redis_url_print(const struct kc_redis_url *u, char *out, size_t n);

struct kc_redis_opts {
	const struct kc_redis_url *url; /* copied by kc_redis_new */
	/* Per command, and for connect + TLS + handshake together. The URL's timeout_ms wins when
	 * given (it is what the operator wrote), then this, then 200. */
	uint32_t timeout_ms;
	uint32_t backoff_min_ms; /* reconnect backoff, exponential with full jitter; default 50 */
	uint32_t backoff_max_ms; /* default 5000 */
	const char *name; /* CLIENT SETNAME and log prefix, e.g. "kcached-w0"; NULL: "redis" and
			     no SETNAME. Printable ASCII without spaces. */
	/* Up/down transitions (optional); called on the base's thread, never from kc_redis_*
	 * calls themselves. A subscriber is up only once its channels are subscribed. */
	void (*on_state)(void *ctx, bool up);
	void *state_ctx;
	/* Plain TCP only: after writing commands, poll the socket for a reply for up to this
	 * many microseconds before the loop goes back to sleep (0: never). A reply that comes
	 * back within it skips the thread's sleep and wakeup; the price is a core spinning for
	 * up to this long per batch of commands, and the loop's other connections waiting as
	 * long. */
	uint32_t busy_poll_us;
};

struct kc_redis;

/* Creates a client and starts connecting in the background; a server that is down is not an
 * error (it keeps reconnecting). Returns NULL only for bad options (err says which, e.g. a CA
 * file that cannot be loaded) or ENOMEM. */
struct kc_redis *kc_redis_new(struct event_base *base, const struct kc_redis_opts *o, char *err,
			      size_t errlen);
/* Closes the connection and calls every pending callback with an error ("client closed") before
 * it returns. Must not be called from inside one of this client's own callbacks. NULL is a
 * no-op. */
void kc_redis_free(struct kc_redis *r);

/* Reply callback: called exactly once per command, on the base's thread, never from inside
 * kc_redis_cmd itself. reply == NULL means failure and err says why: "timeout after 200 ms",
 * "not connected", "connection lost", "protocol error", "too many in flight", "client closed".
 * Server errors ("-ERR …") are replies of type REDIS_REPLY_ERROR. reply is freed after the
 * callback returns. The callback may issue new commands. */
typedef void (*kc_redis_cb)(void *ctx, const redisReply *reply, const char *err);

/* Queues one command (binary-safe arguments, copied before it returns; argvlen NULL: they are C
 * strings). Pipelined: many may be in flight. Fails fast ("not connected") while disconnected,
 * connecting, or waiting out the reconnect backoff, and with "too many in flight" over the
 * in-flight or output-buffer cap. */
void kc_redis_cmd(struct kc_redis *r, kc_redis_cb cb, void *ctx, int argc, const char *const *argv,
		  const size_t *argvlen);
/* True when connected and through the handshake (AUTH, SELECT, SETNAME, ROLE, SUBSCRIBE). */
bool kc_redis_up(const struct kc_redis *r);

/* Caps (defaults 65536 commands and 64 MiB of unsent output; 0 keeps a value). */
void kc_redis_set_limits(struct kc_redis *r, uint32_t max_in_flight, size_t max_out_bytes);

/* Pub/sub: turns r into a subscriber (it must be used only for this: kc_redis_cmd then fails with
 * "subscriber client"). Messages for channel arrive at fn. Resubscribes after every reconnect
 * and reports up/down through on_state, so that the caller knows it may have missed messages.
 * A subscriber pings its server every second to notice a dead one. Returns 0, -EINVAL (empty
 * channel, subscribed already, or commands in flight) or -ENOMEM. */
typedef void (*kc_redis_msg_fn)(void *ctx, const char *channel, size_t nchan, const char *msg,
				size_t nmsg);
int kc_redis_subscribe(struct kc_redis *r, const char *channel, kc_redis_msg_fn fn, void *ctx);

struct kc_redis_stats {
	uint64_t cmds;	     /* kc_redis_cmd calls */
	uint64_t errors;     /* of those, completed with reply == NULL (timeouts included) */
	uint64_t timeouts;   /* of those, failed with "timeout after N ms" */
	uint64_t reconnects; /* handshakes completed after the first */
	uint64_t failovers;  /* the master's address changed between two handshakes (Sentinel) */
	uint64_t in_flight;  /* commands sent and waiting for their reply */
};
void kc_redis_get_stats(const struct kc_redis *r, struct kc_redis_stats *out);

#endif
