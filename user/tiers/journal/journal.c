/* journal.c: the journal's life cycle (open, close), appends, and the sync thread, the only
 * writer of its files. Each round of the sync thread (group commit):
 *   A (locked)   grab the incoming appends, queued markers, dead letters to persist, drops;
 *   B (unlocked) dead.log first (LETTER/REPLAY records, fsync), then one write of markers,
 *                copies and appends to the current segment (rotating it when full) and one
 *                fsync;
 *   C (locked)   make the appends durable entries of the queue, settle dead letters and copies;
 *                then (unlocked) the appends' done callbacks;
 *   D            delete the oldest segments that hold nothing live any more.
 * The queue side (take, ack, fail, dead letters, stats) is journal_queue.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "tiers/journal/journal_int.h"
#include "core/log.h"

#define TICK_MS	      200  /* markers are written at least this often */
#define MARK_FSYNC_MS 1000 /* and fsynced at least this often */

/* One round's work. The buffers stay allocated across rounds; the fields before them do not. */
struct round {
	struct kc_jrec *ins, *lets;
	bool do_rewrite, want_fsync;
	bool drops; /* REPLAY records (or a rewrite for lost ones) are in this round */
	struct kc_jseg *copy_from, *wseg;
	uint64_t first_id, sync_req;
	int seg_err, dead_err;
	unsigned nfsync;
	size_t ndel;   /* oldest segments with nothing live when the round began */
	size_t nmarks; /* bytes of markers at the start of seg */
	bool cb_ok;    /* cbs has room for every append's callback */
	size_t ncb;
	struct kc_buf cbs;	 /* struct cb per append, called once they are in the queue */
	struct kc_buf seg;	 /* markers, copies, then appends: one write to the segment */
	struct kc_buf dead;	 /* LETTER and REPLAY records for dead.log */
	struct kc_buf deadmarks; /* DEAD markers, joining seg once their LETTERs are durable */
	struct kc_buf rewrite;	 /* all of dead.log, when it is rewritten */
};

#define SAY_MS 10000 /* a failure that repeats every round is logged at most this often */

/* Counts a failure; true when it is to be logged (the first, then one per SAY_MS), with
 * *quiet set to how many were not logged since the last line. */
static bool say_failure(struct kc_said *s, uint64_t *quiet)
{
	s->failures++;
	return kc_ratelimit(&s->rl, SAY_MS * 1000000ull, quiet);
}

static void buf_reset(struct kc_buf *b)
{
	b->len = b->off = 0;
	kc_buf_shrink(b, 1 << 20);
}

struct cb {
	kc_journal_done_fn fn;
	void *ctx;
};

/* Phase A: takes the round's work out of j (locked). */
static void grab(struct kc_journal *j, struct round *rd)
{
	struct kc_buf t;
	struct kc_jseg *first = j->segs;

	rd->ins = j->in_head;
	j->in_head = NULL;
	j->in_tail = &j->in_head;
	rd->first_id = rd->ins ? rd->ins->id : j->next_id;
	rd->lets = j->let_head;
	j->let_head = NULL;
	j->let_tail = &j->let_head;
	t = rd->seg;
	rd->seg = j->marks;
	j->marks = t;
	rd->nmarks = rd->seg.len;
	for (struct kc_jrec *r = rd->lets; r; r = r->lnext) {
		struct kc_jview v, m = {.type = KC_JR_DEAD, .id = r->id};

		kc_jrec_view(r, KC_JR_LETTER, &v);
		if (kc_journal_put_record(&rd->dead, &v) ||
		    kc_journal_put_record(&rd->deadmarks, &m))
			rd->dead_err = -ENOMEM;
	}
	/* Drops pile up in dead.log; once they outnumber the letters kept, rewrite it (also after
	 * a failed write: memory holds the truth then). */
	rd->drops = j->drops.len || j->drops_lost;
	if ((j->drops.len && j->drops_since_rewrite >= j->st.dead) || j->dead_stale) {
		rd->do_rewrite = true;
		for (struct kc_jrec *r = j->dead_head; r; r = r->dnext) {
			struct kc_jview v;

			kc_jrec_view(r, KC_JR_LETTER, &v);
			if (r->state == KC_JS_DEAD && kc_journal_put_record(&rd->rewrite, &v))
				rd->dead_err = -ENOMEM;
		}
		j->drops_since_rewrite = 0;
		j->dead_stale = false;
		buf_reset(&j->drops);
	} else if (j->drops.len) {
		if (kc_buf_append(&rd->dead, j->drops.data, j->drops.len))
			rd->dead_err = -ENOMEM;
		buf_reset(&j->drops);
	}
	/* Copy forward the few live entries that keep an old, mostly dead segment on disk. */
	if (first && first != j->cur && j->nsegs >= 3 && first->live &&
	    first->live_bytes * 2 <= first->size) {
		rd->copy_from = first;
		log_debug("journal %s: copying the %" PRIu64 " live entries of segment %" PRIu64
			  " forward",
			  j->dir, first->live, first->num);
		for (struct kc_jrec *r = first->live_head; r; r = r->snext) {
			struct kc_jview v;

			kc_jrec_view(r, KC_JR_APPEND, &v);
			if (r->state != KC_JS_DEADQ && !kc_journal_put_record(&rd->seg, &v))
				r->flags |= KC_JF_COPY;
		}
	}
	/* Segments done with by now may go this round: the markers that resolved their entries
	 * were all queued before this point, so they are in this round's write. */
	for (struct kc_jseg *g = j->segs; g && g != j->cur && !g->live; g = g->next)
		rd->ndel++;
	rd->sync_req = j->sync_req;
	rd->want_fsync = rd->ins || rd->lets || j->sync_req > j->sync_done || j->stop ||
			 (j->seg_dirty && kc_mono_ms() - j->last_fsync_ms >= MARK_FSYNC_MS);
}

/* Phase B, dead.log part: must be durable before the segment write that follows (a DEAD marker
 * without its LETTER would lose the entry; an ACK of a newer write without the drop of the older
 * dead letter would let that letter be replayed over it). */
static void write_dead(struct kc_journal *j, struct round *rd)
{
	uint64_t quiet;

	if (!rd->dead_err && rd->do_rewrite)
		rd->dead_err = kc_jdead_rewrite(j, &rd->rewrite);
	if (rd->dead_err || !rd->dead.len)
		goto out;
	rd->dead_err = kc_jwrite(j->deadfd, j->dead_size, rd->dead.data, rd->dead.len);
	if (!rd->dead_err) {
		j->dead_size += rd->dead.len;
		rd->nfsync++;
		if (fsync(j->deadfd))
			rd->dead_err = -errno;
	}
out:
	if (rd->dead_err && say_failure(&j->dead_said, &quiet))
		log_error("journal %s: writing dead.log: %s (%" PRIu64
			  " more such failures not logged)",
			  j->dir, strerror(-rd->dead_err), quiet);
	else if (!rd->dead_err && j->dead_said.failures && (rd->dead.len || rd->do_rewrite))
		j->dead_said = (struct kc_said){0};
}

/* Phase B, segment part. */
static void write_segment(struct kc_journal *j, struct round *rd)
{
	uint64_t quiet;
	struct kc_jseg *cur = j->cur, *s;

	if (!rd->dead_err && kc_buf_append(&rd->seg, rd->deadmarks.data, rd->deadmarks.len))
		rd->seg_err = -ENOMEM;
	for (struct kc_jrec *r = rd->ins; r && !rd->seg_err; r = r->lnext) {
		struct kc_jview v;

		kc_jrec_view(r, KC_JR_APPEND, &v);
		rd->seg_err = kc_journal_put_record(&rd->seg, &v);
	}
	if (rd->seg_err)
		goto out;
	if (j->seg_broken && !cur->size) {
		/* Nothing valid in it: start it over rather than add a file per failed round (a
		 * full disk used to leave thousands of empty segments). Whatever a failed write or
		 * fsync left in it goes with the truncation. */
		if (ftruncate(cur->fd, 0) == 0)
			j->seg_broken = j->seg_dirty = false;
	}
	if (j->seg_broken ||
	    (rd->seg.len && cur->size && cur->size + rd->seg.len > j->o.segment_bytes)) {
		uint64_t num = rd->first_id > cur->num ? rd->first_id : cur->num + 1;

		s = kc_jseg_create(j, num);
		if (!s && j->seg_broken) {
			rd->seg_err = -errno;
			goto out;
		}
		if (s) {
			if (j->seg_dirty && !j->seg_broken && fsync(cur->fd) == 0)
				rd->nfsync++;
			close(cur->fd);
			cur->fd = -1;
			pthread_mutex_lock(&j->mu);
			kc_jseg_add(j, s);
			pthread_mutex_unlock(&j->mu);
			cur = s;
			j->seg_broken = j->seg_dirty = false;
		} else {
			log_warn("journal %s: rotating: %s; writing on to the current segment",
				 j->dir, strerror(errno));
		}
	}
	rd->wseg = cur;
	if (rd->seg.len) {
		rd->seg_err = kc_jwrite(cur->fd, cur->size, rd->seg.data, rd->seg.len);
		if (rd->seg_err)
			goto out;
		cur->size += rd->seg.len;
		j->seg_dirty = true;
	}
	if (rd->want_fsync && j->seg_dirty) {
		rd->nfsync++;
		if (fdatasync(cur->fd)) {
			rd->seg_err = -errno;
			goto out;
		}
		j->seg_dirty = false;
		j->last_fsync_ms = kc_mono_ms();
	}
out:
	if (rd->seg_err) {
		/* What reached the file is unknown now: never write behind it again. */
		j->seg_broken = true;
		if (say_failure(&j->seg_said, &quiet))
			log_error("journal %s: writing segment %" PRIu64 ": %s (%" PRIu64
				  " more such failures not logged)",
				  j->dir, cur->num, strerror(-rd->seg_err), quiet);
	} else if (j->seg_said.failures && (rd->seg.len || rd->want_fsync)) {
		log_info("journal %s: writing segments again after %" PRIu64 " failed rounds",
			 j->dir, j->seg_said.failures);
		j->seg_said = (struct kc_said){0};
	}
}

/* Phase C (locked). */
static void settle(struct kc_journal *j, struct round *rd)
{
	struct kc_jrec *r, *next;

	j->st.fsyncs += rd->nfsync;
	if (rd->seg_err && rd->nmarks) { /* the markers go again, ahead of newer ones */
		struct kc_buf t = {0};

		if (kc_buf_append(&t, rd->seg.data, rd->nmarks) ||
		    kc_buf_append(&t, j->marks.data, j->marks.len)) {
			log_warn("journal %s: no memory to keep markers: entries may replay",
				 j->dir);
			kc_buf_free(&t);
		} else {
			kc_buf_free(&j->marks);
			j->marks = t;
		}
	}
	/* Drops were lost with a failed write: rewrite dead.log from memory next round. */
	j->dead_stale = rd->dead_err && (rd->dead.len || rd->do_rewrite);
	/* A REPLAY record lost: until dead.log is rewritten, a segment's deletion could leave a
	 * superseded dead letter looking current. */
	j->drops_lost = rd->dead_err && rd->drops;
	j->dead_failing = rd->dead_err != 0;
	for (r = rd->lets; r; r = next) {
		next = r->lnext;
		r->lnext = NULL;
		if (rd->dead_err) { /* try again next round */
			*j->let_tail = r;
			j->let_tail = &r->lnext;
			continue;
		}
		r->state = KC_JS_DEAD;
		if (r->seg) /* its LETTER is durable: the segment need not keep it */
			kc_jseg_unlink(r);
	}
	if (rd->copy_from) {
		for (r = rd->copy_from->live_head; r; r = next) {
			next = r->snext;
			if (!(r->flags & KC_JF_COPY))
				continue;
			r->flags &= ~KC_JF_COPY;
			if (!rd->seg_err) {
				kc_jseg_unlink(r);
				kc_jseg_link(rd->wseg, r);
				rd->wseg->copies = true;
			}
		}
	}
	for (r = rd->ins; r; r = next) {
		struct cb *cb = (struct cb *)rd->cbs.data;

		next = r->lnext;
		r->lnext = NULL;
		r->kn->incoming--;
		if (rd->cb_ok && r->done)
			cb[rd->ncb++] = (struct cb){r->done, r->done_ctx};
		if (rd->seg_err) {
			/* Its APPEND may have reached the disk all the same (a failed fsync): an
			 * ACK keeps a later open from bringing back what the caller was told
			 * failed. */
			kc_jmark(j, KC_JR_ACK, r->id, 0);
			j->pending--;
			j->pending_bytes -= kc_jrec_bytes(r);
			kc_jrec_free(j, r);
			continue;
		}
		j->st.appended++;
		kc_jseg_link(rd->wseg, r);
		kc_jmake_durable(j, r);
	}
	if (rd->want_fsync && rd->sync_req > j->sync_done)
		j->sync_err = rd->seg_err ? rd->seg_err : rd->dead_err;
	pthread_cond_broadcast(&j->changed);
}

/* Phase D: deletes the oldest segments that had nothing live when the round began, oldest
 * first only. A marker always lies in the segment of the APPEND it resolves or a later one, so no
 * marker goes while the APPEND it resolves stays; and the markers that resolved the deleted
 * entries are in this round's write, fsynced before any unlink. Together these keep a crash from
 * bringing back a write older than one already flushed and deleted (docs/journal.md). */
static void compact(struct kc_journal *j, struct round *rd)
{
	struct kc_jseg *gone = NULL, **tail = &gone, *s;
	char name[64];
	size_t n = 0;

	/* Not even when this round's markers failed (a full disk): deleting frees the space the
	 * next write needs. The segments that go have nothing live, so no entry of theirs can
	 * replay once the unlinks are durable (the directory fsync below); the markers matter
	 * only should the unlinks be lost, and a lost unlink is what that fsync rules out.
	 * Two exceptions wait for a good round: a kept segment holding copies (an older write
	 * copied forward, whose lost marker would let it replay over a newer write whose segment
	 * went), and a lost REPLAY record in dead.log. */
	if (j->drops_lost)
		return;
	if (j->seg_broken)
		for (s = j->segs; s; s = s->next)
			if (s->copies)
				return;
	pthread_mutex_lock(&j->mu);
	for (; rd->ndel && j->segs != j->cur && !j->segs->live; rd->ndel--, n++) {
		s = j->segs;
		j->segs = s->next;
		s->next = NULL;
		*tail = s;
		tail = &s->next;
	}
	j->nsegs -= n;
	pthread_mutex_unlock(&j->mu);
	if (!gone)
		return;
	/* The markers that resolved those entries must not be lost should the unlinks be. */
	if (j->seg_dirty && !j->seg_broken) {
		if (fdatasync(j->cur->fd)) {
			log_error("journal %s: fsync before deleting segments: %s", j->dir,
				  strerror(errno));
			j->seg_broken = true;
			pthread_mutex_lock(&j->mu); /* put them back: another time */
			*tail = j->segs;
			j->segs = gone;
			j->nsegs += n;
			pthread_mutex_unlock(&j->mu);
			return;
		}
		j->seg_dirty = false;
		pthread_mutex_lock(&j->mu);
		j->st.fsyncs++;
		pthread_mutex_unlock(&j->mu);
	}
	while ((s = gone)) {
		gone = s->next;
		kc_jseg_name(name, sizeof(name), s->num);
		if (unlinkat(j->dirfd, name, 0) && errno != ENOENT)
			log_warn("journal %s: deleting %s: %s", j->dir, name, strerror(errno));
		else
			log_debug("journal %s: deleted %s, all its entries are done", j->dir, name);
		free(s);
	}
	if (fsync(j->dirfd))
		log_error("journal %s: fsync of the directory after deleting segments: %s", j->dir,
			  strerror(errno));
}

static void run_round(struct kc_journal *j, struct round *rd)
{
	void (*ready_fn)(void *ctx);
	void *ready_ctx;
	size_t n = 0;

	grab(j, rd);
	pthread_mutex_unlock(&j->mu);
	write_dead(j, rd);
	write_segment(j, rd);
	/* The callbacks run once the entries can be taken, but settle() holds the lock and after
	 * it the entries may be gone: it copies the callbacks out. */
	for (struct kc_jrec *r = rd->ins; r; r = r->lnext)
		n++;
	if (kc_buf_reserve(&rd->cbs, n * sizeof(struct cb)) == 0) {
		rd->cb_ok = true;
	} else {
		for (struct kc_jrec *r = rd->ins; r; r = r->lnext) /* no memory: before then */
			if (r->done)
				r->done(r->done_ctx, rd->seg_err);
	}
	pthread_mutex_lock(&j->mu);
	settle(j, rd);
	ready_fn = j->ready_fn;
	ready_ctx = j->ready_ctx;
	pthread_mutex_unlock(&j->mu);
	for (size_t i = 0; i < rd->ncb; i++) {
		struct cb *cb = (struct cb *)rd->cbs.data + i;

		cb->fn(cb->ctx, rd->seg_err);
	}
	if (n && !rd->seg_err && ready_fn)
		ready_fn(ready_ctx);
	compact(j, rd);
	pthread_mutex_lock(&j->mu);
	if (rd->want_fsync && rd->sync_req > j->sync_done) {
		j->sync_done = rd->sync_req;
		pthread_cond_broadcast(&j->changed);
	}
}

static void *sync_main(void *arg)
{
	struct kc_journal *j = arg;
	struct round rd;
	bool last = false;

	memset(&rd, 0, sizeof(rd));
	pthread_mutex_lock(&j->mu);
	while (!last) {
		/* Dead letters that failed to persist are retried on the tick, not in a loop. */
		if (!j->in_head && !(j->let_head && !j->dead_failing) &&
		    j->sync_req == j->sync_done && !j->stop) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += TICK_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&j->work, &j->mu, &ts);
		}
		last = j->stop; /* appends are refused from now on: this round takes the last */
		run_round(j, &rd);
		buf_reset(&rd.seg);
		buf_reset(&rd.dead);
		buf_reset(&rd.deadmarks);
		buf_reset(&rd.rewrite);
		memset(&rd, 0, offsetof(struct round, cbs));
	}
	pthread_mutex_unlock(&j->mu);
	kc_buf_free(&rd.seg);
	kc_buf_free(&rd.dead);
	kc_buf_free(&rd.deadmarks);
	kc_buf_free(&rd.rewrite);
	kc_buf_free(&rd.cbs);
	return NULL;
}

int kc_journal_append(struct kc_journal *j, enum kc_jop op, uint64_t ver, const char *key,
		      size_t nkey, const void *blob, size_t nblob, kc_journal_done_fn done,
		      void *ctx)
{
	struct kc_jrec *r;
	int e = 0;

	if (!j || (op != KC_JSET && op != KC_JDEL) || !key || nkey == 0 || nkey > KC_JKEY_MAX ||
	    (nblob && !blob)) {
		errno = EINVAL;
		return -1;
	}
	if (nblob > KC_JBLOB_MAX || nkey + nblob > j->o.max_bytes) {
		errno = EMSGSIZE;
		return -1;
	}
	r = kc_jrec_alloc((uint8_t)op, ver, key, nkey, blob, nblob);
	if (!r) {
		errno = ENOMEM;
		return -1;
	}
	r->done = done;
	r->done_ctx = ctx;
	r->state = KC_JS_INCOMING;
	pthread_mutex_lock(&j->mu);
	if (j->stop) {
		e = ESHUTDOWN;
	} else if (j->pending + j->st.dead >= j->o.max_entries ||
		   j->pending_bytes + j->dead_bytes + nkey + nblob > j->o.max_bytes) {
		j->st.full_rejects++;
		e = EAGAIN;
	} else if (kc_jheap_reserve(&j->ready, j->pending + 1) ||
		   kc_jheap_reserve(&j->retry, j->pending + 1) ||
		   !(r->kn = kc_jkey_get(j, key, (uint32_t)nkey))) {
		e = ENOMEM;
	}
	if (e) {
		kc_jrec_free(j, r);
		pthread_mutex_unlock(&j->mu);
		errno = e;
		return -1;
	}
	r->id = j->next_id++;
	r->kn->incoming++;
	*j->in_tail = r;
	j->in_tail = &r->lnext;
	j->pending++;
	j->pending_bytes += nkey + nblob;
	pthread_cond_signal(&j->work);
	pthread_mutex_unlock(&j->mu);
	return 0;
}

static void free_all(struct kc_journal *j)
{
	struct kc_jseg *s, *next;
	struct kc_jrec *r;

	while ((r = j->dead_head)) {
		kc_jdead_unlink(j, r);
		if (r->seg)
			kc_jseg_unlink(r);
		kc_jrec_free(j, r);
	}
	for (s = j->segs; s; s = next) {
		next = s->next;
		while ((r = s->live_head)) {
			kc_jseg_unlink(r);
			kc_jrec_free(j, r);
		}
		if (s->fd >= 0)
			close(s->fd);
		free(s);
	}
	kc_jkey_free_all(j);
	kc_buf_free(&j->marks);
	kc_buf_free(&j->drops);
	free(j->ready.v);
	free(j->retry.v);
	if (j->deadfd >= 0)
		close(j->deadfd);
	if (j->lockfd >= 0)
		close(j->lockfd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->work);
	pthread_cond_destroy(&j->changed);
	free(j->dir);
	free(j);
}

struct kc_journal *kc_journal_open(const struct kc_journal_opts *o, uint64_t *replayed, char *err,
				   size_t errlen)
{
	struct kc_journal *j;
	pthread_condattr_t ca;
	int e;

	if (!o || !o->dir || !*o->dir) {
		kc_errf(err, errlen, "journal: no directory given");
		errno = EINVAL;
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (!j || !(j->dir = strdup(o->dir))) {
		free(j);
		kc_errf(err, errlen, "journal: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	j->o = *o;
	j->o.dir = j->dir;
	j->o.max_entries = o->max_entries ? o->max_entries : 100000;
	j->o.max_bytes = o->max_bytes ? o->max_bytes : 256ull << 20;
	j->o.max_attempts = o->max_attempts ? o->max_attempts : 8;
	j->o.backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : 100;
	j->o.backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 30000;
	j->o.segment_bytes = o->segment_bytes ? o->segment_bytes : 64u << 20;
	if (j->o.backoff_max_ms < j->o.backoff_min_ms)
		j->o.backoff_max_ms = j->o.backoff_min_ms;
	j->dirfd = j->lockfd = j->deadfd = -1;
	j->in_tail = &j->in_head;
	j->let_tail = &j->let_head;
	j->retry.by_due = true;
	j->rng = ((uint64_t)time(NULL) << 32) ^ (uint64_t)getpid() ^ (uintptr_t)j;
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->work, &ca);
	pthread_cond_init(&j->changed, &ca);
	pthread_condattr_destroy(&ca);
	if ((e = kc_jmkdir(j->dir)) ||
	    (j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		e = e ? e : -errno;
		kc_errf(err, errlen, "journal %s: %s", j->dir, strerror(-e));
		goto fail;
	}
	j->lockfd = openat(j->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lockfd < 0 || flock(j->lockfd, LOCK_EX | LOCK_NB)) {
		e = -errno;
		kc_errf(err, errlen, "journal %s: %s", j->dir,
			e == -EWOULDBLOCK ? "in use by another process" : strerror(-e));
		goto fail;
	}
	if ((e = kc_jload(j, replayed, err, errlen)))
		goto fail;
	if ((e = -pthread_create(&j->thr, NULL, sync_main, j))) {
		kc_errf(err, errlen, "journal %s: starting its thread: %s", j->dir, strerror(-e));
		goto fail;
	}
	j->started = true;
	return j;
fail:
	free_all(j);
	errno = -e;
	return NULL;
}

void kc_journal_close(struct kc_journal *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->mu);
	j->stop = true;
	pthread_cond_signal(&j->work);
	pthread_mutex_unlock(&j->mu);
	if (j->started)
		pthread_join(j->thr, NULL);
	free_all(j);
}
