/* proto_text.h: the memcached text protocol (classic and meta commands) over one byte stream.
 *
 * kc_proto_process() is a pure function of its input and the tier: it parses as many complete
 * requests as the input holds, executes them against the memory tier, and appends the replies
 * to an output buffer. It never reads past len, never blocks and keeps no pointer into the
 * input, so the same code serves TCP (a stream), UDP (one datagram at a time) and the fuzzer.
 *
 * Limits (memcached 1.6's): key <= 250 bytes; value <= item-size-max (larger values get
 * "SERVER_ERROR object too large for cache" and their bytes are swallowed); a command line
 * is at most KC_LINE_MAX bytes, a longer one gets "CLIENT_ERROR line too long" and a close,
 * except a get or gets (memcached answers any number of keys): its keys are taken as they
 * arrive, KC_LINE_MAX bytes at a time, so nothing longer than that is ever buffered; one get's
 * reply (one such piece's, for a longer one) is at most KC_GET_REPLY_MAX bytes.
 *
 * Over UDP (c->proto == KC_PROTO_UDP: one datagram, no handshake, so its source may be forged)
 * the protocol serves what the kernel tier exists for, and bounds what a datagram gets back:
 *   - reads: get, gets, mg (without T or N), mn, version, quit (a no-op);
 *   - mutations (set add replace append prepend cas delete incr decr touch gat gats ms md ma,
 *     mg with T or N, and any other known verb) only with env->udp_writes;
 *   - flush_all, verbosity and stats never;
 *   - the datagram's whole reply at most env->udp_out_max bytes (frame headers excluded).
 * A refused command is not executed, nor is anything after it in the datagram: out (which over
 * UDP holds this datagram's reply only) is replaced by one line, "CLIENT_ERROR not allowed
 * over UDP; use TCP" (nothing when a classic command ends in noreply) or "SERVER_ERROR reply
 * too large for UDP; use TCP", c->close is set and stats->udp_refused[why] counted.
 * Over TCP, flush_all is served only with env->allow_flush (memcached's -F reply otherwise),
 * and it empties this node's memory tier and hides every older value of the lower tiers from
 * this node until it restarts: never the durable, cluster-wide flush (kcachectl flush).
 */
#ifndef KC_PROTO_TEXT_H
#define KC_PROTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "mem/mem.h"
#include "core/metrics.h"
#include "serve/pend.h"

#define KC_LINE_MAX 65536 /* room for a get of ~250 keys of 250 bytes */
/* One get's reply is copied into the connection's output; past this it is refused with
 * memcached's "SERVER_ERROR out of memory writing get response" so memory stays bounded. */
#define KC_GET_REPLY_MAX (32u << 20)

/* What the daemon shares with every connection. */
struct kc_proto_env {
	struct kc_mem *mem;
	size_t item_max;
	int64_t started;	       /* Unix seconds, for stats uptime */
	_Atomic uint64_t *curr_conns;  /* may be NULL */
	_Atomic uint64_t *total_conns; /* may be NULL */
	unsigned threads;
	uint64_t memory_limit;
	/* Told about every key a get, gets, gat, gats or mg asks for, with the item found or NULL
	 * (the kernel tier's popularity counts). NULL disables it. Called on worker threads,
	 * with no tier lock held; `it` is valid during the call only. */
	void (*on_get)(void *ctx, const char *key, size_t nkey, const struct kc_item *it);
	void *on_get_ctx;
	/* UDP and flush_all rules (top of this file); all zero: UDP serves reads only, with no
	 * cap, and flush_all is refused. */
	bool udp_writes;
	bool allow_flush;
	size_t udp_out_max; /* 0: no cap */
};

/* Per-connection parser state. Zero it, then set env, stats and proto, and pend when lower
 * tiers are configured (pend.h). */
struct kc_proto_conn {
	const struct kc_proto_env *env;
	struct kc_stats *stats;
	enum kc_proto proto;
	uint64_t swallow; /* bytes of a rejected value still to discard */
	/* A get (1) or gets (2) whose line outgrew KC_LINE_MAX: more of its keys to come. */
	uint8_t stream;
	bool skip_line;	      /* discard input up to the next newline (a streamed get failed) */
	bool close;	      /* set when the connection must close after the output is sent */
	struct kc_pend *pend; /* NULL: memory tier only */
	/* Set by kc_proto_process when it stopped for the lower tiers: the caller runs
	 * kc_pend_run(pend, wait, out, reply_mark, ...) and calls again once it is done. */
	enum kc_wait wait;
	size_t reply_mark;
	/* 0: no limit. Otherwise a read (get, gets, gat, gats, mg) whose reply would take out->len
	 * past out_max is not answered: its reply is dropped, its line left unconsumed (it runs
	 * again on a later call) and out_full is set. The connection's share of the buffer
	 * budget (conn.h); other commands' replies are small and always kept. */
	size_t out_max;
	bool out_full;
};

/* Processes requests from in[0..len). Appends replies to out, and stops early once out holds
 * more than out_soft_limit bytes (the caller sends them, then calls again with the rest), or
 * when c->wait is set (a command needs the lower tiers: see pend.h).
 * Returns the number of input bytes consumed; bytes not consumed form an incomplete request
 * that needs more input (or, if c->close is set, are to be dropped). */
size_t kc_proto_process(struct kc_proto_conn *c, const char *in, size_t len, struct kc_buf *out,
			size_t out_soft_limit);

#define KC_UDP_NOT_ALLOWED "CLIENT_ERROR not allowed over UDP; use TCP\r\n"
#define KC_UDP_TOO_LARGE   "SERVER_ERROR reply too large for UDP; use TCP\r\n"

/* Converts a memcached exptime to absolute Unix seconds: 0 stays 0 (never), negative means
 * already expired, up to 30 days is relative to now, above is absolute. */
int64_t kc_proto_exptime(int64_t exptime, int64_t now);

#endif
