/* journal_load.c: the journal's files: reading segments and dead.log back at open (replay, torn
 * tails, corruption), creating segments, writing records, rewriting dead.log atomically.
 * Rules in docs/journal.md. Loading runs before the sync thread starts; the other helpers run
 * on the sync thread without the journal's lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tiers/journal/journal_int.h"
#include "core/log.h"
#include "core/num.h"

void kc_jseg_name(char *out, size_t outlen, uint64_t num)
{
	snprintf(out, outlen, "journal-%020" PRIu64 ".log", num);
}

static bool parse_seg_name(const char *name, uint64_t *num)
{
	if (strlen(name) != 32 || strncmp(name, "journal-", 8) || strcmp(name + 28, ".log"))
		return false;
	return kc_parse_u64n(name + 8, 20, UINT64_MAX, num) == 0;
}

int kc_jmkdir(const char *dir)
{
	char *p = strdup(dir), *s;
	int e = 0;

	if (!p)
		return -ENOMEM;
	for (s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;

		*s = 0;
		if (mkdir(p, 0700) && errno != EEXIST) {
			e = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return e;
}

int kc_jwrite(int fd, uint64_t size, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;

			/* No half record may stay: the next write would land behind it. */
			if (ftruncate(fd, (off_t)size))
				log_error("journal: cutting a failed write back: %s",
					  strerror(errno));
			return -e;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

struct kc_jseg *kc_jseg_create(struct kc_journal *j, uint64_t num)
{
	char name[64];
	struct kc_jseg *s = calloc(1, sizeof(*s));
	int e;

	if (!s)
		return NULL;
	kc_jseg_name(name, sizeof(name), num);
	s->num = num;
	s->fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (s->fd < 0 || fsync(j->dirfd)) {
		e = errno;
		if (s->fd >= 0) {
			close(s->fd);
			unlinkat(j->dirfd, name, 0);
		}
		free(s);
		errno = e;
		return NULL;
	}
	return s;
}

void kc_jseg_add(struct kc_journal *j, struct kc_jseg *s)
{
	struct kc_jseg **pp = &j->segs;

	while (*pp)
		pp = &(*pp)->next;
	*pp = s;
	j->cur = s;
	j->nsegs++;
}

int kc_jdead_rewrite(struct kc_journal *j, const struct kc_buf *b)
{
	int fd = openat(j->dirfd, "dead.log.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int e = 0;

	if (fd < 0)
		return -errno;
	if (b->len)
		e = kc_jwrite(fd, 0, b->data, b->len);
	if (!e && fsync(fd))
		e = -errno;
	if (!e && renameat(j->dirfd, "dead.log.tmp", j->dirfd, "dead.log"))
		e = -errno;
	if (!e && fsync(j->dirfd))
		e = -errno;
	if (e) {
		close(fd);
		unlinkat(j->dirfd, "dead.log.tmp", 0);
		return e;
	}
	/* fd is dead.log now: append from here on. */
	close(fd);
	fd = openat(j->dirfd, "dead.log", O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(j->deadfd);
	j->deadfd = fd;
	j->dead_size = b->len;
	return 0;
}

/* ---- reading a file back ------------------------------------------------------------------- */

/* Entries by id while loading: a chained hash through lnext. */
struct idmap {
	struct kc_jrec **b;
	size_t nb, n;
};

static struct kc_jrec **idmap_find(struct idmap *m, uint64_t id)
{
	struct kc_jrec **pp;

	if (!m->nb)
		return NULL;
	for (pp = &m->b[id & (m->nb - 1)]; *pp; pp = &(*pp)->lnext)
		if ((*pp)->id == id)
			return pp;
	return NULL;
}

static int idmap_add(struct idmap *m, struct kc_jrec *r)
{
	if (m->n >= m->nb) {
		size_t nb = m->nb ? m->nb * 2 : 4096;
		struct kc_jrec **b = calloc(nb, sizeof(*b));

		if (!b)
			return -ENOMEM;
		for (size_t i = 0; i < m->nb; i++)
			for (struct kc_jrec *e = m->b[i], *next; e; e = next) {
				next = e->lnext;
				e->lnext = b[e->id & (nb - 1)];
				b[e->id & (nb - 1)] = e;
			}
		free(m->b);
		m->b = b;
		m->nb = nb;
	}
	r->lnext = m->b[r->id & (m->nb - 1)];
	m->b[r->id & (m->nb - 1)] = r;
	m->n++;
	return 0;
}

static struct kc_jrec *idmap_take(struct idmap *m, uint64_t id)
{
	struct kc_jrec **pp = idmap_find(m, id), *r;

	if (!pp)
		return NULL;
	r = *pp;
	*pp = r->lnext;
	r->lnext = NULL;
	m->n--;
	return r;
}

struct loader {
	struct kc_journal *j;
	struct idmap live, dead;
	struct kc_jseg *seg;
	uint64_t max_id;
	const char *file;
	bool damaged;	     /* the file being read had damage skipped */
	uint64_t before_max; /* the highest id of the segments before the one being read */
	uint64_t seg_max;    /* the highest id of the segments read so far */
};

typedef int (*rec_fn)(struct loader *l, const struct kc_jview *v);

/* Copies the damaged bytes p[0..n) found at offset off of file name to DIR/damaged/name.off
 * (once: a later open finds them again and leaves the copy alone). Logged, never fatal. */
static void keep_damaged(struct loader *l, const char *name, size_t off, const char *p, size_t n)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "damaged/%s.%zu", name, off);
	if (mkdirat(l->j->dirfd, "damaged", 0700) && errno != EEXIST)
		goto fail;
	fd = openat(l->j->dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return;
	if (fd < 0)
		goto fail;
	if (kc_jwrite(fd, 0, p, n) || fsync(fd)) {
		close(fd);
		goto fail;
	}
	close(fd);
	return;
fail:
	log_error("journal: %s/%s: keeping the damaged bytes: %s", l->j->dir, path,
		  strerror(errno));
}

/* Reads DIR/name and calls fn for each valid record. A bad record followed by valid ones is
 * damage: its bytes up to the next valid record (kc_journal_resync) are kept aside, logged and
 * counted, and reading goes on there. A bad or torn record with nothing valid behind it is a
 * torn tail: the file is cut there with a warning. *valid gets the bytes kept in the file. */
static int scan_file(struct loader *l, int fd, const char *name, rec_fn fn, uint64_t *valid)
{
	struct stat st;
	char why[160] = "", *buf = NULL;
	size_t size, off = 0, got = 0, next;
	ssize_t r = 0;
	struct kc_jview v;
	int e = 0;

	if (fstat(fd, &st))
		return -errno;
	size = (size_t)st.st_size;
	if (size && !(buf = malloc(size)))
		return -ENOMEM;
	while (got < size) {
		r = pread(fd, buf + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			e = r < 0 ? -errno : -EIO;
			goto out;
		}
		got += (size_t)r;
	}
	l->file = name;
	while (off < size) {
		r = kc_journal_parse_record(buf + off, size - off, &v, why, sizeof(why));
		if (r > 0) {
			if ((e = fn(l, &v)))
				goto out;
			off += (size_t)r;
			continue;
		}
		if (r == 0)
			snprintf(why, sizeof(why), "record cut short");
		next = kc_journal_resync(buf, size, off);
		if (next >= size) {
			log_warn("journal: %s/%s: torn record at offset %zu (%s): truncating the "
				 "last %zu bytes",
				 l->j->dir, name, off, why, size - off);
			if (ftruncate(fd, (off_t)off) || fsync(fd)) {
				e = -errno;
				goto out;
			}
			size = off;
			break;
		}
		log_error("journal: %s/%s: damaged record at offset %zu (%s), valid records again "
			  "from offset %zu: skipping %zu bytes, kept in %s/damaged/%s.%zu",
			  l->j->dir, name, off, why, next, next - off, l->j->dir, name, off);
		keep_damaged(l, name, off, buf + off, next - off);
		l->j->st.damaged++;
		l->j->st.damaged_bytes += next - off;
		l->damaged = true;
		off = next;
	}
	*valid = size;
out:
	free(buf);
	return e;
}

static int dead_rec(struct loader *l, const struct kc_jview *v)
{
	struct kc_journal *j = l->j;
	struct kc_jrec *r =
	    v->type == KC_JR_LETTER || v->type == KC_JR_REPLAY ? idmap_take(&l->dead, v->id) : NULL;

	if (v->id > l->max_id)
		l->max_id = v->id;
	if (r) { /* replayed or superseded, or written again by a rewrite */
		kc_jdead_unlink(j, r);
		j->st.dead--;
		j->dead_bytes -= kc_jrec_bytes(r);
		kc_jrec_free(j, r);
	}
	if (v->type != KC_JR_LETTER) {
		if (v->type != KC_JR_REPLAY)
			log_warn("journal: dead.log: record of type %u ignored", v->type);
		return 0;
	}
	r = kc_jrec_alloc(v->op, v->ver, v->key, v->nkey, v->blob, v->nblob);
	if (r)
		r->id = v->id;
	if (!r || !(r->kn = kc_jkey_get(j, v->key, v->nkey)) ||
	    !(r->why = strndup(v->why, v->nwhy)) || idmap_add(&l->dead, r)) {
		if (r)
			kc_jrec_free(j, r);
		return -ENOMEM;
	}
	r->attempts = v->attempts;
	r->when = v->when;
	r->state = KC_JS_DEAD;
	kc_jdead_link(j, r);
	j->st.dead++;
	j->dead_bytes += kc_jrec_bytes(r);
	return 0;
}

static int seg_rec(struct loader *l, const struct kc_jview *v)
{
	struct kc_journal *j = l->j;
	struct kc_jrec **pp = idmap_find(&l->live, v->id), *r = pp ? *pp : NULL;

	if (v->id > l->max_id)
		l->max_id = v->id;
	if (v->id > l->seg_max)
		l->seg_max = v->id;
	switch (v->type) {
	case KC_JR_APPEND:
		/* An APPEND older than one of an earlier segment was copied forward. */
		if (v->id <= l->before_max)
			l->seg->copies = true;
		if (idmap_find(&l->dead, v->id))
			return 0; /* its LETTER was written, its DEAD marker was not */
		if (r) {	  /* copied forward: the later copy is where it lives now */
			kc_jseg_unlink(r);
			kc_jseg_link(l->seg, r);
			if (v->attempts > r->attempts)
				r->attempts = v->attempts;
			return 0;
		}
		r = kc_jrec_alloc(v->op, v->ver, v->key, v->nkey, v->blob, v->nblob);
		if (r)
			r->id = v->id;
		if (!r || !(r->kn = kc_jkey_get(j, v->key, v->nkey)) || idmap_add(&l->live, r)) {
			if (r)
				kc_jrec_free(j, r);
			return -ENOMEM;
		}
		r->attempts = v->attempts;
		r->state = KC_JS_INCOMING;
		kc_jseg_link(l->seg, r);
		return 0;
	case KC_JR_FAIL:
		if (r && v->attempts > r->attempts)
			r->attempts = v->attempts;
		return 0;
	case KC_JR_ACK:
	case KC_JR_DEAD:
		if (r) {
			idmap_take(&l->live, v->id);
			kc_jseg_unlink(r);
			kc_jrec_free(j, r);
		}
		return 0;
	default:
		log_warn("journal: %s: record of type %u ignored", l->file, v->type);
		return 0;
	}
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = (*(struct kc_jrec *const *)a)->id, y = (*(struct kc_jrec *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Lists the segment numbers in DIR, sorted. */
static int list_segments(struct kc_journal *j, uint64_t **nums, size_t *n)
{
	DIR *d = opendir(j->dir);
	struct dirent *de;
	size_t cap = 0;
	uint64_t num;

	*nums = NULL;
	*n = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!parse_seg_name(de->d_name, &num))
			continue;
		if (*n == cap) {
			uint64_t *nn = realloc(*nums, (cap = cap ? cap * 2 : 64) * sizeof(*nn));

			if (!nn) {
				closedir(d);
				return -ENOMEM;
			}
			*nums = nn;
		}
		(*nums)[(*n)++] = num;
	}
	closedir(d);
	if (*n)
		qsort(*nums, *n, sizeof(**nums), cmp_u64);
	return 0;
}

/* Of all live entries and dead letters of one key only the newest counts: older ones are
 * resolved as superseded (an older write must never be flushed after a newer one). */
static int settle(struct loader *l)
{
	struct kc_journal *j = l->j;
	struct kc_jrec **v = NULL, *r, *next;
	size_t n = 0;

	if (!(v = malloc((l->live.n + 1) * sizeof(*v))))
		return -ENOMEM;
	for (size_t i = 0; i < l->live.nb; i++)
		for (r = l->live.b[i]; r; r = r->lnext)
			v[n++] = r;
	/* From here on the entries belong to j: its segment lists free them on failure. */
	free(l->live.b);
	memset(&l->live, 0, sizeof(l->live));
	if (n)
		qsort(v, n, sizeof(*v), cmp_id);
	if (kc_jheap_reserve(&j->ready, n + 1) || kc_jheap_reserve(&j->retry, n + 1)) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		v[i]->lnext = NULL;
		j->pending++;
		j->pending_bytes += kc_jrec_bytes(v[i]);
		kc_jmake_durable(j, v[i]);
	}
	free(v);
	for (r = j->dead_head; r; r = next) {
		struct kc_jkey *kn = r->kn;

		next = r->dnext;
		r->lnext = NULL;
		if ((kn->newest && kn->newest->id > r->id) || (kn->dead && kn->dead->id > r->id)) {
			kc_jresolve(j, r, true);
			continue;
		}
		if (kn->newest)
			kc_jresolve(j, kn->newest, true);
		if (kn->dead)
			kc_jresolve(j, kn->dead, true);
		kn->dead = r;
	}
	return 0;
}

int kc_jload(struct kc_journal *j, uint64_t *replayed, char *err, size_t errlen)
{
	struct loader l = {.j = j};
	uint64_t *nums = NULL, next_num;
	size_t nnums = 0;
	struct kc_jseg *s;
	int e, fd;

	j->deadfd = openat(j->dirfd, "dead.log", O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (j->deadfd < 0) {
		e = -errno;
		kc_errf(err, errlen, "journal %s/dead.log: %s", j->dir, strerror(-e));
		return e;
	}
	e = scan_file(&l, j->deadfd, "dead.log", dead_rec, &j->dead_size);
	if (e) {
		kc_errf(err, errlen, "journal %s/dead.log: %s", j->dir, strerror(-e));
		goto out;
	}
	/* dead.log is appended to: the first round rewrites it from memory, without the damage. */
	j->dead_stale = l.damaged;
	if ((e = list_segments(j, &nums, &nnums))) {
		kc_errf(err, errlen, "journal %s: listing segments: %s", j->dir, strerror(-e));
		goto out;
	}
	for (size_t i = 0; i < nnums; i++) {
		char name[64];

		kc_jseg_name(name, sizeof(name), nums[i]);
		if (!(s = calloc(1, sizeof(*s)))) {
			e = -ENOMEM;
			kc_errf(err, errlen, "journal %s: out of memory", j->dir);
			goto out;
		}
		s->num = nums[i];
		s->fd = -1;
		kc_jseg_add(j, s);
		l.seg = s;
		l.before_max = l.seg_max;
		fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
		e = fd < 0 ? -errno : scan_file(&l, fd, name, seg_rec, &s->size);
		if (fd >= 0)
			close(fd);
		if (e) {
			kc_errf(err, errlen, "journal %s/%s: %s", j->dir, name, strerror(-e));
			goto out;
		}
	}
	if ((e = settle(&l))) {
		kc_errf(err, errlen, "journal %s: out of memory", j->dir);
		goto out;
	}
	/* Ids keep increasing across restarts: segment names keep the high-water mark. */
	j->next_id = l.max_id + 1;
	if (nnums && j->next_id < nums[nnums - 1])
		j->next_id = nums[nnums - 1];
	next_num = nnums && nums[nnums - 1] >= j->next_id ? nums[nnums - 1] + 1 : j->next_id;
	if (!(s = kc_jseg_create(j, next_num))) {
		e = -errno;
		kc_errf(err, errlen, "journal %s: creating a segment: %s", j->dir, strerror(-e));
		goto out;
	}
	kc_jseg_add(j, s);
	j->st.replayed = j->pending;
	if (replayed)
		*replayed = j->pending;
	log_info("journal %s: %" PRIu64 " pending entries replayed from %zu segments, %" PRIu64
		 " dead letters, %" PRIu64 " superseded",
		 j->dir, j->pending, nnums, j->st.dead, j->st.superseded);
out:
	/* On failure the caller frees what was loaded through the segment and dead lists. */
	if (e) {
		for (size_t i = 0; i < l.live.nb; i++)
			for (struct kc_jrec *r = l.live.b[i], *next; r; r = next) {
				next = r->lnext;
				kc_jseg_unlink(r);
				kc_jrec_free(j, r);
			}
	}
	free(l.live.b);
	free(l.dead.b);
	free(nums);
	return e;
}
