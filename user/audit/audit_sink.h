/* audit_sink.h: where audit records go: a file with rotation, stdout, or a Redis stream.
 *
 * Each sink is a thread with a bounded queue (bytes) and its own hash chain (audit_chain.h).
 * kc_audit_sink_push() never blocks: when the queue is full the record is dropped and counted
 * per hook, and the sink writes a gap record for the drops into its chain before its next
 * record, so a reader of that output sees exactly what it missed. A write that fails (disk
 * full, Redis down) is a drop too; the chain only advances over records really written.
 * The Redis sink speaks through the tiers' client (tiers/redis/redis.h: AUTH, TLS, Sentinel)
 * on an event base of its own thread, one XADD at a time. When Redis goes away the next batch
 * waits up to a second for it, later ones a quarter of a second (the client retries every
 * 200 ms at most); then their records are drops (the file sink, when there is one, still has
 * them), and the gap record goes out when it is back.
 * Checkpoint records are written every checkpoint_s seconds, at rotation and at stop; a file
 * sink also keeps the latest one in "<file>.checkpoint" (0600) for truncation checks.
 */
#ifndef KC_AUDIT_SINK_H
#define KC_AUDIT_SINK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <kcache/audit.h>

#include "audit/audit_chain.h"
#include "tiers/redis/redis.h"

/* A record's own members (`"time":...,"node":...,...`, no braces), shared by every sink it
 * is pushed to. */
/* One record, shared by every sink it is pushed to (reference counted, never modified): each
 * sink queues it through a node of its own, since one link field cannot be in two queues. */
struct kc_audit_rec {
	_Atomic int refs;
	uint8_t hook; /* counted against this hook when dropped */
	uint32_t len;
	char body[];
};

/* Returns a record with one reference, or NULL (ENOMEM). */
struct kc_audit_rec *kc_audit_rec_new(const char *body, size_t len, unsigned hook);
void kc_audit_rec_put(struct kc_audit_rec *r);

enum kc_audit_sink_kind { KC_SINK_FILE, KC_SINK_STDOUT, KC_SINK_REDIS };

struct kc_audit_sink_cfg {
	enum kc_audit_sink_kind kind;
	const char *path;   /* file */
	uint64_t max_size;  /* file: rotate past this many bytes (0: never) */
	unsigned max_files; /* file: keep this many files, the current one included */
	const struct kc_redis_url *redis_url; /* Redis: copied by kc_audit_sink_start */
	const char *stream;		      /* Redis stream key, copied */
	uint64_t stream_max;		      /* XADD MAXLEN ~ */
	uint64_t queue_bytes;		      /* bound of the queue */
	unsigned checkpoint_s;
	const struct kc_audit_key *key;
	const char *node;
};

struct kc_audit_sink_stats {
	uint64_t written;		  /* records in the chain, gaps and checkpoints included */
	uint64_t dropped[KC_HOOK__COUNT]; /* records the sink could not take, by hook */
	uint64_t rotations;
	uint64_t queued_bytes;
	int connected; /* Redis: 1 while connected */
};

/* Opens the output (a file sink resumes the chain from the file's last record; a Redis sink
 * starts connecting, and a server that is down is not an error) and starts the thread.
 * Returns NULL with a message in err (never a password), e.g. a CA file that cannot be read. */
struct kc_audit_sink *kc_audit_sink_start(const struct kc_audit_sink_cfg *cfg, char *err,
					  size_t errlen);

/* Queues r (taking a reference) or counts it as dropped. Never blocks on I/O. Thread-safe. */
void kc_audit_sink_push(struct kc_audit_sink *s, struct kc_audit_rec *r);

/* A snapshot of the counters. Thread-safe. */
void kc_audit_sink_stats(struct kc_audit_sink *s, struct kc_audit_sink_stats *out);
const char *kc_audit_sink_name(const struct kc_audit_sink *s);

/* Writes what is queued (waiting at most a few seconds for a slow output), a final
 * checkpoint, and frees the sink. NULL is allowed. */
void kc_audit_sink_stop(struct kc_audit_sink *s);

/* Formats CLOCK_REALTIME ns as RFC 3339 UTC with nanoseconds into out (at least 32 bytes). */
void kc_audit_fmt_time(char *out, size_t len, uint64_t ns);

#endif
