/* journal.h: kcache's write-behind journal, a durable and bounded queue of pending lower-tier
 * writes (Redis, the object store). A write-behind set is acknowledged to the client once the
 * memory tier has it and kc_journal_append()'s done callback reported it fsync'd; a flusher
 * thread (not here) takes entries, writes them to the lower tiers and acks or fails them. The
 * journal knows nothing of those tiers: keys and blobs are opaque bytes, ver is opaque too.
 *
 * One mutex guards the queue; one sync thread owns the files (group commit). On-disk format,
 * durability, compaction, replay and dead-letter rules: docs/journal.md.
 */
#ifndef KC_JOURNAL_H
#define KC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define KC_JKEY_MAX  1024	/* longest key the journal takes */
#define KC_JBLOB_MAX (1u << 30) /* largest blob (and never more than max_bytes) */

enum kc_jop { KC_JSET = 1, KC_JDEL = 2 };

/* done(ctx, status) of an append: 0 once durable, -errno when its write or fsync failed. */
typedef void (*kc_journal_done_fn)(void *ctx, int status);

struct kc_jseg;
struct kc_jkey;

/* One pending write, owned by the journal. The flusher reads the public fields of entries it
 * took, until it acks or fails them; it never writes any field. */
struct kc_jrec {
	uint64_t id;	   /* journal sequence, increasing */
	uint64_t ver;	   /* the write's version (opaque to the journal) */
	uint8_t op;	   /* enum kc_jop */
	uint32_t attempts; /* failed flush attempts so far */
	uint32_t nkey, nblob;
	char *key;  /* nkey bytes, NUL-terminated */
	char *blob; /* nblob bytes, NUL-terminated (may be 0 bytes for DEL) */

	/* Private to the journal (user/tiers/journal/journal*.c), guarded by its mutex. */
	uint8_t state, flags;
	uint32_t hidx;		       /* position in the ready or the retry heap */
	uint64_t due_ms;	       /* retry: due at this monotonic time */
	struct kc_jrec *lnext;	       /* incoming appends, or dead letters to write */
	struct kc_jrec *dnext, *dprev; /* dead letters */
	struct kc_jrec *snext, *sprev; /* live entries of its segment */
	struct kc_jseg *seg;	       /* segment holding its latest APPEND record */
	struct kc_jkey *kn;	       /* its key's node in the key index */
	kc_journal_done_fn done;
	void *done_ctx;
	int64_t when; /* dead letter: Unix time (seconds) it became one */
	char *why;    /* dead letter: the last failure's reason */
};

struct kc_journal_opts {
	const char *dir;	 /* created if missing (mode 0700) */
	uint64_t max_entries;	 /* bound on pending (not yet acked) entries; default 100000 */
	uint64_t max_bytes;	 /* bound on pending bytes (keys + blobs); default 256 MiB */
	uint32_t max_attempts;	 /* then dead letter; default 8 */
	uint32_t backoff_min_ms; /* retry delay: exponential, full jitter above it; 100 */
	uint32_t backoff_max_ms; /* ... and never above this; default 30000 */
	uint32_t segment_bytes;	 /* rotate segment files at this size; default 64 MiB */
};

struct kc_journal;
struct kc_buf;

/* Opens (creating o->dir if missing) and replays the journal: every entry appended and not acked
 * before, in any segment, becomes pending again, in id order, attempts preserved when a FAIL
 * record says so; dead letters are reloaded as dead letters; of several entries for one key only
 * the newest survives. Torn tail records are truncated away with a log line; a damaged
 * record followed by valid ones is skipped (kc_journal_resync finds the next valid record), its
 * bytes copied to DIR/damaged/<file>.<offset>, logged as an error and counted (stats.damaged),
 * and every valid record behind it replayed. Takes an exclusive lock on DIR/lock: one process per
 * journal. *replayed (may be NULL) gets the number of pending entries recovered. Returns NULL with
 * err filled on error. */
struct kc_journal *kc_journal_open(const struct kc_journal_opts *o, uint64_t *replayed, char *err,
				   size_t errlen);
/* Completes pending appends (their callbacks run), writes and fsyncs the queued markers, stops the
 * sync thread and frees everything. The flusher must be stopped first: entries it still holds in
 * flight are freed (they stay pending on disk and are replayed at the next open). */
void kc_journal_close(struct kc_journal *j);

/* Appends a write; key is 1..KC_JKEY_MAX bytes; done may be NULL. Returns 0 if accepted:
 * done(ctx, 0) is called once the record is durable (fsync'd) and the entry can be taken, or
 * done(ctx, -errno) if the write or fsync failed (then the entry is not pending). Group commit:
 * the sync thread writes every append that arrived while the previous fsync ran with one write
 * and one fsync. done runs on the sync thread, without the journal's lock held; it must not
 * block on the journal (kc_journal_sync, _dead_replay, _wait_drained, _close): the others are
 * fine. Acks and fails made before an append are written (not fsynced) by the time its done
 * runs.
 * Returns -1 with errno EAGAIN when the queue is full (max_entries or max_bytes; dead letters count
 * too): backpressure, nothing queued; EINVAL for a bad op or key length, EMSGSIZE for an entry
 * that could never fit, ENOMEM, ESHUTDOWN once close began. Thread-safe. */
int kc_journal_append(struct kc_journal *j, enum kc_jop op, uint64_t ver, const char *key,
		      size_t nkey, const void *blob, size_t nblob, kc_journal_done_fn done,
		      void *ctx);

/* Flusher side. Thread-safe; meant for one flusher thread. */

/* Sets fn(ctx) to be called on the sync thread, without the lock, after a round made new entries
 * takeable (replayed dead letters included), so that a flusher can sleep until then or until
 * take's next_due_ms; fn must not block. NULL clears it. Set it before appends start. */
void kc_journal_on_ready(struct kc_journal *j, void (*fn)(void *ctx), void *ctx);

/* Takes up to max durable pending entries whose retry time has come (now_ms: a monotonic clock in
 * ms), oldest (lowest id) first. An entry superseded by a newer durable entry for the same key is
 * acked automatically (counted in superseded) and never handed out; an entry whose key has an
 * older entry in flight waits until that one is acked or failed, so an older write is never
 * flushed after a newer one. Taken entries are in flight until kc_journal_ack/fail; returns how
 * many. *next_due_ms (may be NULL) gets when the next backing-off entry becomes due, now_ms when
 * more are ready than max, 0 when none waits on time. */
size_t kc_journal_take(struct kc_journal *j, uint64_t now_ms, struct kc_jrec **out, size_t max,
		       uint64_t *next_due_ms);
/* Flushed: no longer pending; r is freed. The ACK record is written with the next batch or tick
 * (about every 200 ms), not fsynced on its own: after a crash an acked entry may flush again. */
void kc_journal_ack(struct kc_journal *j, struct kc_jrec *r);
/* Failed (why: a short reason, kept for a dead letter): attempts++; when attempts reaches
 * max_attempts r becomes a dead letter (persisted in DIR/dead.log), else it is due again after
 * a delay drawn uniformly from [backoff_min, min(backoff_max, backoff_min << attempts)] ms. When a
 * newer entry for r's key arrived meanwhile, r is dropped as superseded instead. */
void kc_journal_fail(struct kc_journal *j, struct kc_jrec *r, uint64_t now_ms, const char *why);

/* Dead letters. A dead letter whose key gets a newer durable write is dropped (superseded):
 * replaying it would write an older value over a newer one. */
struct kc_jdead {
	uint64_t id;
	uint8_t op;
	uint32_t attempts;
	char key[KC_JKEY_MAX + 1]; /* NUL-terminated copy */
	uint32_t nkey;
	uint32_t nblob;
	char why[128]; /* the last failure's reason, truncated */
	int64_t when;  /* Unix time (seconds) it became a dead letter */
};
/* Fills up to max dead letters, in the order they became dead; returns how many there are. */
size_t kc_journal_dead_list(struct kc_journal *j, struct kc_jdead *out, size_t max);
/* Puts dead letters back into the pending queue as new entries (new ids, attempts 0): the one with
 * this id, or all of them when id is 0. Blocks until the new entries are durable. *count (may be
 * NULL) gets how many were replayed. A letter whose key has a newer write on its way (or a replay
 * of it already) is left alone: that write drops it once durable. Returns 0, -ENOENT for an id
 * that is no dead letter, -ESTALE for one left alone, or the -errno of a failed write. Dead
 * letters count against the bounds already: no EAGAIN here. */
int kc_journal_dead_replay(struct kc_journal *j, uint64_t id, uint64_t *count);

struct kc_journal_stats {
	uint64_t pending; /* accepted, not yet acked, superseded or dead (in flight included) */
	uint64_t pending_bytes; /* their keys and blobs */
	uint64_t in_flight;
	uint64_t appended; /* appends made durable (done(ctx, 0)), dead-letter replays included */
	uint64_t acked;	   /* kc_journal_ack calls */
	uint64_t retries;  /* failures that were scheduled again */
	uint64_t dead;	   /* dead letters now */
	uint64_t fsyncs;
	uint64_t full_rejects; /* appends refused with EAGAIN */
	uint64_t replayed;     /* pending entries recovered by kc_journal_open */
	uint64_t superseded;   /* entries and dead letters dropped for a newer write of their key */
	uint64_t damaged;      /* damaged spots skipped by kc_journal_open (kept in DIR/damaged/) */
	uint64_t damaged_bytes; /* ... and their bytes */
};
void kc_journal_get_stats(struct kc_journal *j, struct kc_journal_stats *out);

/* Blocks until every pending entry is acked, superseded or dead, or timeout_ms passes. Returns 0
 * when drained, -ETIMEDOUT otherwise. For shutdown and tests. */
int kc_journal_wait_drained(struct kc_journal *j, uint32_t timeout_ms);

/* Writes and fsyncs every queued ACK/FAIL/DEAD marker and removes the segments that are no longer
 * needed; blocks until done. Returns 0 or the -errno of a failed write or fsync. For shutdown,
 * admin commands and tests; the sync thread does the same on its own every second. */
int kc_journal_sync(struct kc_journal *j);

/* The newest write of key the journal holds (pending, in flight, or a dead letter): appends
 * its blob to blob and returns 1; 0 if the journal holds none; -1 when out of memory. For the
 * read path: a write not flushed yet is newer than anything Redis or the store has. */
int kc_journal_lookup(struct kc_journal *j, const char *key, size_t nkey, struct kc_buf *blob);

#endif
