/* journal_int.h: the journal's insides, shared by its files and by nothing else:
 * journal.c (open, close, append, the sync thread), journal_queue.c (take, ack, fail, dead
 * letters, stats), journal_index.c (key index, heaps, entries), journal_load.c (files, replay).
 */
#ifndef KC_JOURNAL_INT_H
#define KC_JOURNAL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/ratelimit.h"
#include "tiers/journal/journal.h"
#include "tiers/journal/journal_format.h"

/* Where an entry is. Durable entries are READY, RETRY or INFLIGHT; DEADQ and DEAD are dead
 * letters (DEADQ: its LETTER record is not written yet, so its segment still holds it). */
enum kc_jstate {
	KC_JS_INCOMING = 1, /* accepted, waiting for the sync thread's write and fsync */
	KC_JS_READY,	    /* in the ready heap (by id) */
	KC_JS_RETRY,	    /* in the retry heap (by due_ms) */
	KC_JS_INFLIGHT,	    /* handed to the flusher */
	KC_JS_DEADQ,
	KC_JS_DEAD,
};
#define KC_JF_COPY 1 /* its APPEND is being copied forward to the current segment */

struct kc_jseg {
	struct kc_jseg *next; /* segments oldest first */
	uint64_t num;	      /* the number in its name */
	uint64_t size;	      /* bytes of valid records */
	uint64_t live;	      /* entries whose latest APPEND is here and that are not resolved */
	uint64_t live_bytes;  /* their APPEND records' bytes */
	struct kc_jrec *live_head;
	bool copies; /* holds APPENDs copied forward from an older segment */
	int fd;	     /* the current segment only, else -1 */
};

/* One key's entries: at most one newest durable live entry, one in flight, one dead letter.
 * Every entry of the key holds a reference from its creation, so that making an entry durable
 * needs no allocation. */
struct kc_jkey {
	struct kc_jkey *hnext;
	uint64_t hash;
	uint64_t refs;
	uint64_t incoming; /* entries appended and not yet durable */
	struct kc_jrec *newest, *inflight, *dead;
	uint32_t nkey;
	char key[];
};

struct kc_jheap {
	struct kc_jrec **v;
	size_t n, cap;
	bool by_due; /* retry heap: ordered by due_ms then id; ready heap: by id */
};

/* A failure that repeats every round, logged once per period (journal.c's say_failure). */
struct kc_said {
	uint64_t failures;	/* in a row, since the last success */
	struct kc_ratelimit rl; /* when the next line may be logged, and how many were not */
};

struct kc_journal {
	struct kc_journal_opts o;
	char *dir;
	int dirfd, lockfd, deadfd;
	uint64_t dead_size; /* bytes of valid records in dead.log */

	pthread_mutex_t mu;
	pthread_cond_t work;	/* wakes the sync thread */
	pthread_cond_t changed; /* entries resolved, appends durable, sync rounds done */
	pthread_t thr;
	bool started, stop;
	void (*ready_fn)(void *ctx); /* kc_journal_on_ready */
	void *ready_ctx;

	uint64_t next_id;
	struct kc_jrec *in_head, **in_tail;   /* incoming appends, id order */
	struct kc_jrec *let_head, **let_tail; /* dead letters whose LETTER is to be written */
	struct kc_jrec *dead_head, *dead_tail;
	struct kc_buf marks; /* ACK/FAIL records for the current segment's next write */
	struct kc_buf drops; /* REPLAY records for dead.log's next write */
	uint64_t drops_since_rewrite;
	struct kc_jheap ready, retry;
	struct kc_jkey **kb;
	size_t nkb, nkeys;

	struct kc_jseg *segs, *cur; /* cur is the last one */
	size_t nsegs;
	bool seg_dirty;	   /* the current segment has writes not fsynced yet */
	bool seg_broken;   /* a write or fsync failed on it: rotate before writing again */
	bool dead_stale;   /* a dead.log write failed: rewrite it from memory */
	bool dead_failing; /* ... and LETTERs wait: retry on the tick */
	bool drops_lost;   /* ... and REPLAY records were in it: no compaction until rewritten */
	uint64_t last_fsync_ms;
	struct kc_said seg_said, dead_said; /* sync thread only */
	uint64_t sync_req, sync_done;	    /* kc_journal_sync() rounds asked and finished */
	int sync_err;

	uint64_t pending, pending_bytes, dead_bytes;
	struct kc_journal_stats st;
	uint64_t rng;
};

/* journal_index.c; all with j->mu held (or before the sync thread started). */
/* A new entry (one allocation with its key and blob, copied), not yet in the key index (kn
 * NULL); needs no lock. Returns NULL when out of memory. */
struct kc_jrec *kc_jrec_alloc(uint8_t op, uint64_t ver, const char *key, size_t nkey,
			      const void *blob, size_t nblob);
/* Frees r and drops its reference on its key's node, if it has one. */
void kc_jrec_free(struct kc_journal *j, struct kc_jrec *r);
/* Fills v with r's record of this type: an APPEND (a copy carries its attempts) or its LETTER. */
void kc_jrec_view(const struct kc_jrec *r, uint8_t type, struct kc_jview *v);
static inline uint64_t kc_jrec_bytes(const struct kc_jrec *r)
{
	return (uint64_t)r->nkey + r->nblob;
}
/* Takes a reference on key's node, creating it. Returns NULL when out of memory. */
struct kc_jkey *kc_jkey_get(struct kc_journal *j, const char *key, uint32_t nkey);
/* Drops a reference; frees the node with the last one. */
void kc_jkey_put(struct kc_journal *j, struct kc_jkey *kn);
void kc_jkey_free_all(struct kc_journal *j);
/* Makes room for n entries, so that pushes cannot fail. Returns 0 or -ENOMEM. */
int kc_jheap_reserve(struct kc_jheap *h, size_t n);
void kc_jheap_push(struct kc_jheap *h, struct kc_jrec *r);
struct kc_jrec *kc_jheap_pop(struct kc_jheap *h);
void kc_jheap_remove(struct kc_jheap *h, struct kc_jrec *r);
static inline struct kc_jrec *kc_jheap_top(const struct kc_jheap *h)
{
	return h->n ? h->v[0] : NULL;
}
void kc_jseg_link(struct kc_jseg *s, struct kc_jrec *r);
void kc_jseg_unlink(struct kc_jrec *r);
void kc_jdead_link(struct kc_journal *j, struct kc_jrec *r);
void kc_jdead_unlink(struct kc_journal *j, struct kc_jrec *r);
/* Queues a marker record (ACK, FAIL, DEAD) for the current segment, or a REPLAY for dead.log.
 * A marker that cannot be queued (no memory) is logged and lost: markers are hints for replay. */
void kc_jmark(struct kc_journal *j, uint8_t type, uint64_t id, uint32_t attempts);
/* Resolves an entry that is done with (acked, superseded, or a dead letter dropped): writes its
 * ACK (or REPLAY) record, updates the counts and the key index, frees it. */
void kc_jresolve(struct kc_journal *j, struct kc_jrec *r, bool superseded);
/* Makes a durable entry the newest of its key: an older live entry not in flight is superseded,
 * an older dead letter dropped. Then queues it ready. */
void kc_jmake_durable(struct kc_journal *j, struct kc_jrec *r);

/* journal_load.c */
/* Loads dead.log and every segment of j->dir into j (no thread running yet); *replayed gets the
 * pending entries recovered. Returns 0 or -errno with err filled. */
int kc_jload(struct kc_journal *j, uint64_t *replayed, char *err, size_t errlen);
/* Creates segment DIR/journal-<num>.log (and fsyncs DIR). Returns it, or NULL with errno set;
 * the caller links it in as the current one. */
struct kc_jseg *kc_jseg_create(struct kc_journal *j, uint64_t num);
/* Links s in as the last, current segment. */
void kc_jseg_add(struct kc_journal *j, struct kc_jseg *s);
/* Writes all of p[0..n) at the end of fd. On failure cuts the file back to size and returns
 * -errno. */
int kc_jwrite(int fd, uint64_t size, const void *p, size_t n);
/* Rewrites dead.log atomically from the dead letters in b. Returns 0 or -errno. */
int kc_jdead_rewrite(struct kc_journal *j, const struct kc_buf *b);
void kc_jseg_name(char *out, size_t outlen, uint64_t num);
/* mkdir -p with mode 0700. Returns 0 or -errno. */
int kc_jmkdir(const char *dir);

#endif
