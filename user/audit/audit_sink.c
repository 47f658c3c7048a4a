/* audit_sink.c: the sink threads (file with rotation, stdout, Redis stream). See audit_sink.h.
 *
 * Redis goes through the tiers' client (tiers/redis/redis.h), which is non-blocking on a
 * libevent base: the Redis sink's thread owns a base of its own, runs it while it waits for
 * records (so the client reconnects in the background) and while it waits for each XADD's
 * reply. One XADD at a time: the chain advances only over records Redis took.
 */
#include "audit/audit_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/audit_policy.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/fsafe.h"
#include "core/log.h"

/* A sink's queue entry: the record is shared with other sinks, the link is this sink's. */
struct qnode {
	struct qnode *next;
	struct kc_audit_rec *rec;
};

struct kc_audit_sink {
	struct kc_audit_sink_cfg cfg;
	char name[16];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct qnode *head, *tail;	      /* queue, under lock */
	uint64_t queued_bytes;		      /* under lock */
	uint64_t dropped[KC_HOOK__COUNT];     /* under lock: total */
	uint64_t gap_pending[KC_HOOK__COUNT]; /* under lock: not yet in a gap record */
	uint64_t gap_from;		      /* under lock: time of the first pending drop */
	int stop;			      /* under lock */
	_Atomic uint64_t written, rotations;
	_Atomic int connected;
	/* Sink thread only. */
	struct kc_audit_chain chain;
	int fd;
	uint64_t size;
	uint64_t since_ckpt;
	struct kc_buf out;
	char *ckpt_path;
	/* Redis: the base is driven by the sink thread only (created before it starts, freed
	 * after it ends); wake_fd is written by kc_audit_sink_push and stop. */
	struct event_base *base;
	struct event *wake, *tick;
	int wake_fd;
	struct kc_redis *redis;
	char *stream;
	char url_str[600]; /* password redacted */
	int xadd_done, xadd_rc, failing, came_up;
	char xadd_err[128];
};

struct kc_audit_rec *kc_audit_rec_new(const char *body, size_t len, unsigned hook)
{
	struct kc_audit_rec *r = malloc(sizeof(*r) + len + 1);

	if (!r)
		return NULL;
	atomic_init(&r->refs, 1);
	r->hook = hook < KC_HOOK__COUNT ? hook : KC_HOOK_NONE;
	r->len = (uint32_t)len;
	memcpy(r->body, body, len);
	r->body[len] = 0;
	return r;
}

void kc_audit_rec_put(struct kc_audit_rec *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1)
		free(r);
}

void kc_audit_fmt_time(char *out, size_t len, uint64_t ns)
{
	time_t sec = (time_t)(ns / 1000000000ULL);
	struct tm tm;
	char date[24];

	gmtime_r(&sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%09lluZ", date, (unsigned long long)(ns % 1000000000ULL));
}

const char *kc_audit_sink_name(const struct kc_audit_sink *s)
{
	return s->name;
}

/* --- outputs ------------------------------------------------------------------------------ */

/* Never through a symlink, only a regular file of ours, in a folder only we can change. */
static int file_open(struct kc_audit_sink *s)
{
	struct stat st;
	char err[300];
	int rc;

	if ((rc = kc_fs_check_parent(s->cfg.path, err, sizeof(err))) ||
	    (rc = s->fd = kc_fs_open_append(s->cfg.path, 0600, err, sizeof(err))) < 0) {
		s->fd = -1;
		log_error("audit log: %s", err);
		return rc;
	}
	if (fchmod(s->fd, 0600) || fstat(s->fd, &st)) {
		rc = -errno;
		close(s->fd);
		s->fd = -1;
		return rc;
	}
	s->size = (uint64_t)st.st_size;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* --- Redis (the tiers' client, on this sink's own event base) ---------------------------- */

#define REDIS_FIRST_WAIT_MS 2000 /* at start, for the first connection */
#define REDIS_DOWN_WAIT_MS  1000 /* a batch, for a client that just went down */
#define REDIS_RETRY_WAIT_MS 250	 /* a batch, while writes keep failing (> the backoff cap) */
#define REDIS_BACKOFF_MS    200	 /* the client's reconnect backoff cap */

static void redis_on_state(void *ctx, bool up)
{
	struct kc_audit_sink *s = ctx;

	atomic_store(&s->connected, up ? 1 : 0);
	if (up)
		s->came_up = 1; /* ends the wait: the gap record goes out now */
}

static void redis_on_wake(evutil_socket_t fd, short what, void *ctx)
{
	uint64_t n;

	(void)what, (void)ctx;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_debug("audit sink redis: wake fd: %s", strerror(errno));
}

static void redis_on_tick(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd, (void)what, (void)ctx; /* only ends one event_base_loop turn */
}

/* Runs the base for one turn of events, at most until deadline_ms (kc_mono_ms). */
static void redis_turn(struct kc_audit_sink *s, uint64_t deadline_ms)
{
	uint64_t now = kc_mono_ms(), ms = deadline_ms > now ? deadline_ms - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
			     .tv_usec = (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(s->tick, &tv);
	if (event_base_loop(s->base, EVLOOP_ONCE) < 0) {
		struct timespec pause = {.tv_nsec = 10000000};

		nanosleep(&pause, NULL); /* never spin on a broken base */
	}
	evtimer_del(s->tick);
}

static int stopping_now(struct kc_audit_sink *s)
{
	int stop;

	pthread_mutex_lock(&s->lock);
	stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/* Runs the base until the client is up, for at most ms (not at all once the sink is
 * stopping); true when it is. */
static bool redis_wait_up(struct kc_audit_sink *s, uint64_t ms)
{
	uint64_t deadline = kc_mono_ms() + ms;

	while (!kc_redis_up(s->redis) && kc_mono_ms() < deadline && !stopping_now(s))
		redis_turn(s, deadline);
	return kc_redis_up(s->redis);
}

static void redis_on_reply(void *ctx, const redisReply *reply, const char *err)
{
	struct kc_audit_sink *s = ctx;

	s->xadd_done = 1;
	if (!reply) {
		s->xadd_rc = -EIO;
		snprintf(s->xadd_err, sizeof(s->xadd_err), "%s", err ? err : "failed");
	} else if (reply->type == REDIS_REPLY_ERROR) {
		s->xadd_rc = -EPROTO;
		snprintf(s->xadd_err, sizeof(s->xadd_err), "%.*s", (int)reply->len, reply->str);
	} else {
		s->xadd_rc = 0;
	}
}

/* XADD stream MAXLEN ~ N * record <line>, and waits for its reply (the client fails it within
 * its timeout). Returns 0 or -errno; the first failure after a success is logged. */
static int redis_xadd(struct kc_audit_sink *s, const char *line, size_t len)
{
	char max[24];
	const char *argv[] = {"XADD", s->stream, "MAXLEN", "~", max, "*", "record", line};
	size_t argvlen[8];

	snprintf(max, sizeof(max), "%llu", (unsigned long long)s->cfg.stream_max);
	for (int i = 0; i < 7; i++)
		argvlen[i] = strlen(argv[i]);
	argvlen[7] = len;
	s->xadd_done = 0;
	kc_redis_cmd(s->redis, redis_on_reply, s, 8, argv, argvlen);
	while (!s->xadd_done)
		redis_turn(s, kc_mono_ms() + 1000);
	if (s->xadd_rc && !s->failing)
		log_warn(
		    "audit sink redis: XADD %s on %s: %s; records are counted as lost until it "
		    "works again",
		    s->stream, s->url_str, s->xadd_err);
	else if (!s->xadd_rc && s->failing)
		log_info("audit sink redis: XADD %s on %s works again", s->stream, s->url_str);
	s->failing = s->xadd_rc != 0;
	return s->xadd_rc;
}

static int redis_open(struct kc_audit_sink *s, char *err, size_t errlen)
{
	struct kc_redis_opts o = {.url = s->cfg.redis_url,
				  .timeout_ms = 2000,
				  .backoff_max_ms = REDIS_BACKOFF_MS,
				  .name = "kcached-audit",
				  .on_state = redis_on_state,
				  .state_ctx = s};
	char why[256] = "";

	kc_redis_url_print(s->cfg.redis_url, s->url_str, sizeof(s->url_str));
	s->stream = strdup(s->cfg.stream ? s->cfg.stream : "");
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->base = event_base_new();
	if (!s->stream || s->wake_fd < 0 || !s->base) {
		snprintf(err, errlen, "audit sink redis: %s", strerror(errno ? errno : ENOMEM));
		return -ENOMEM;
	}
	s->wake = event_new(s->base, s->wake_fd, EV_READ | EV_PERSIST, redis_on_wake, s);
	s->tick = evtimer_new(s->base, redis_on_tick, s);
	if (!s->wake || !s->tick || event_add(s->wake, NULL)) {
		snprintf(err, errlen, "audit sink redis: out of memory for events");
		return -ENOMEM;
	}
	/* Created here for its errors; only the sink thread drives the base after this. */
	s->redis = kc_redis_new(s->base, &o, why, sizeof(why));
	if (!s->redis) {
		snprintf(err, errlen, "audit-redis-stream %s: %s", s->url_str, why);
		return -EINVAL;
	}
	return 0;
}

static void redis_close(struct kc_audit_sink *s)
{
	kc_redis_free(s->redis);
	s->redis = NULL;
	if (s->wake)
		event_free(s->wake);
	if (s->tick)
		event_free(s->tick);
	if (s->base)
		event_base_free(s->base);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->wake_fd = -1;
	free(s->stream);
	s->stream = NULL;
}

/* --- writing records -------------------------------------------------------------------- */

static void count_drop_locked(struct kc_audit_sink *s, unsigned hook, uint64_t n)
{
	if (!s->gap_from)
		s->gap_from = kc_wall_ns();
	s->dropped[hook] += n;
	s->gap_pending[hook] += n;
}

static void count_drop(struct kc_audit_sink *s, unsigned hook, uint64_t n)
{
	pthread_mutex_lock(&s->lock);
	count_drop_locked(s, hook, n);
	pthread_mutex_unlock(&s->lock);
}

static int rotate(struct kc_audit_sink *s);
static int write_members(struct kc_audit_sink *s, const char *members, size_t len, unsigned hook,
			 int allow_rotate);

static void checkpoint(struct kc_audit_sink *s, int to_sidecar)
{
	char body[256], t[40], err[300];

	kc_audit_fmt_time(t, sizeof(t), kc_wall_ns());
	snprintf(body, sizeof(body),
		 "\"time\":\"%s\",\"node\":\"%s\",\"type\":\"checkpoint\",\"last_seq\":%llu", t,
		 s->cfg.node, (unsigned long long)s->chain.seq);
	if (write_members(s, body, strlen(body), KC_HOOK_NONE, 0))
		return;
	s->since_ckpt = 0;
	if (!to_sidecar || !s->ckpt_path)
		return;
	/* The line just written (still in s->out), kept beside the log, replaced atomically: a
	 * log cut short after it can be told. */
	if (kc_fs_replace(s->ckpt_path, s->out.data, s->out.len, 0600, err, sizeof(err)))
		log_warn("audit sink %s: checkpoint: %s", s->name, err);
}

/* Seals and writes one record now. Returns 0, or -errno (the record is then not in the chain,
 * and the caller counts it as dropped). s->out keeps the last line written. */
static int write_members(struct kc_audit_sink *s, const char *members, size_t len, unsigned hook,
			 int allow_rotate)
{
	unsigned char mac[KC_AUDIT_MAC_LEN];
	int rc;

	s->out.len = s->out.off = 0;
	if (kc_audit_chain_seal(&s->chain, members, len, &s->out, mac))
		return -ENOMEM;
	switch (s->cfg.kind) {
	case KC_SINK_FILE:
		if (allow_rotate && s->cfg.max_size && s->size &&
		    s->size + s->out.len > s->cfg.max_size) {
			rc = rotate(s);
			if (rc)
				return rc;
			s->out.len = s->out.off = 0;
			if (kc_audit_chain_seal(&s->chain, members, len, &s->out, mac))
				return -ENOMEM;
		}
		if (s->fd < 0 && (rc = file_open(s)))
			return rc;
		rc = write_all(s->fd, s->out.data, s->out.len);
		if (rc) {
			/* Never leave a torn line: cut the file back to its last record. */
			if (ftruncate(s->fd, (off_t)s->size))
				log_warn("audit sink %s: cannot cut a torn record: %s", s->name,
					 strerror(errno));
			return rc;
		}
		s->size += s->out.len;
		break;
	case KC_SINK_STDOUT:
		rc = write_all(1, s->out.data, s->out.len);
		if (rc)
			return rc;
		break;
	case KC_SINK_REDIS:
		rc = redis_xadd(s, s->out.data, s->out.len - 1); /* without the newline */
		if (rc)
			return rc;
		break;
	}
	(void)hook;
	kc_audit_chain_commit(&s->chain, mac);
	atomic_fetch_add(&s->written, 1);
	s->since_ckpt++;
	return 0;
}

/* log -> log.1 -> ... -> log.(max_files-1); the oldest goes. The chain goes on in the new
 * file; a checkpoint closes the old one. */
static int rotate(struct kc_audit_sink *s)
{
	size_t n = strlen(s->cfg.path) + 16;
	char *from = malloc(n), *to = malloc(n);

	if (!from || !to) {
		free(from);
		free(to);
		return -ENOMEM;
	}
	checkpoint(s, 1);
	for (unsigned i = s->cfg.max_files > 1 ? s->cfg.max_files - 1 : 1; i >= 1; i--) {
		snprintf(to, n, "%s.%u", s->cfg.path, i);
		if (i == 1)
			snprintf(from, n, "%s", s->cfg.path);
		else
			snprintf(from, n, "%s.%u", s->cfg.path, i - 1);
		if (i == s->cfg.max_files - 1 || s->cfg.max_files <= 1)
			unlink(to);
		rename(from, to);
	}
	free(from);
	free(to);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	atomic_fetch_add(&s->rotations, 1);
	return file_open(s);
}

/* Writes gap records for the drops counted since the last one. */
static void write_gaps(struct kc_audit_sink *s)
{
	uint64_t pending[KC_HOOK__COUNT], from;
	char body[400], t0[40], t1[40];
	int any = 0;

	pthread_mutex_lock(&s->lock);
	memcpy(pending, s->gap_pending, sizeof(pending));
	for (unsigned h = 0; h < KC_HOOK__COUNT; h++)
		any |= pending[h] != 0;
	from = s->gap_from;
	memset(s->gap_pending, 0, sizeof(s->gap_pending));
	s->gap_from = 0;
	pthread_mutex_unlock(&s->lock);
	if (!any)
		return;
	kc_audit_fmt_time(t0, sizeof(t0), from);
	kc_audit_fmt_time(t1, sizeof(t1), kc_wall_ns());
	for (unsigned h = 0; h < KC_HOOK__COUNT; h++) {
		if (!pending[h])
			continue;
		snprintf(body, sizeof(body),
			 "\"time\":\"%s\",\"node\":\"%s\",\"type\":\"gap\",\"hook\":\"%s\","
			 "\"reason\":\"sink_%s\",\"count\":%llu,\"from\":\"%s\",\"to\":\"%s\"",
			 t1, s->cfg.node, kc_audit_hook_name(h), s->name,
			 (unsigned long long)pending[h], t0, t1);
		if (write_members(s, body, strlen(body), h, 1)) {
			/* Still failing: put the count back for the next try. */
			pthread_mutex_lock(&s->lock);
			s->gap_pending[h] += pending[h];
			if (!s->gap_from)
				s->gap_from = from;
			pthread_mutex_unlock(&s->lock);
		}
	}
}

static void *sink_main(void *arg)
{
	struct kc_audit_sink *s = arg;
	uint64_t last_ckpt = kc_mono_ns() / 1000000000ULL, now;
	int stopping = 0;

	if (s->redis && !redis_wait_up(s, REDIS_FIRST_WAIT_MS) && !stopping_now(s))
		log_warn("audit sink redis %s: not reachable yet; records are counted as lost "
			 "until it is",
			 s->url_str);
	while (!stopping) {
		struct qnode *batch, *q;
		struct timespec until;
		bool work;

		pthread_mutex_lock(&s->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (s->redis) {
			/* The base runs while waiting: the client reconnects in the background;
			 * kc_audit_sink_push wakes it through wake_fd. */
			uint64_t deadline = kc_mono_ms() + 1000;

			while (!s->head && !s->stop && !s->came_up && kc_mono_ms() < deadline) {
				pthread_mutex_unlock(&s->lock);
				redis_turn(s, deadline);
				pthread_mutex_lock(&s->lock);
			}
		}
		while (!s->redis && !s->head && !s->stop)
			if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
				break;
		batch = s->head;
		s->head = s->tail = NULL;
		s->queued_bytes = 0;
		stopping = s->stop;
		work = batch || s->gap_from;
		pthread_mutex_unlock(&s->lock);

		/* Down: the first batch gives a blip a second to heal; while writes keep failing,
		 * each batch waits only for one reconnect attempt, then its records are counted
		 * (a gap record goes out once it is back). */
		s->came_up = 0;
		if (s->redis && work && !kc_redis_up(s->redis))
			redis_wait_up(s, s->failing ? REDIS_RETRY_WAIT_MS : REDIS_DOWN_WAIT_MS);
		write_gaps(s);
		while ((q = batch)) {
			struct kc_audit_rec *r = q->rec;

			batch = q->next;
			free(q);
			if (write_members(s, r->body, r->len, r->hook, 1))
				count_drop(s, r->hook, 1);
			kc_audit_rec_put(r);
		}
		now = kc_mono_ns() / 1000000000ULL; /* whole seconds, as the checkpoint period */
		if (s->since_ckpt && now - last_ckpt >= (uint64_t)s->cfg.checkpoint_s) {
			checkpoint(s, 1);
			last_ckpt = now;
		}
	}
	write_gaps(s);
	checkpoint(s, 1);
	return NULL;
}

struct kc_audit_sink *kc_audit_sink_start(const struct kc_audit_sink_cfg *cfg, char *err,
					  size_t errlen)
{
	struct kc_audit_sink *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		snprintf(err, errlen, "audit sink: out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	s->fd = -1;
	s->wake_fd = -1;
	s->chain.key = cfg->key;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	switch (cfg->kind) {
	case KC_SINK_FILE:
		snprintf(s->name, sizeof(s->name), "file");
		rc = kc_audit_chain_resume(&s->chain, cfg->path);
		if (!rc && s->chain.seq == 0) {
			/* Just rotated before a restart: the chain goes on from log.1. */
			char prev[4200];

			snprintf(prev, sizeof(prev), "%s.1", cfg->path);
			rc = kc_audit_chain_resume(&s->chain, prev);
		}
		if (rc) {
			snprintf(err, errlen,
				 "audit log %s: its last line is not a chain record (%s); move it "
				 "away to start a new chain",
				 cfg->path, strerror(-rc));
			goto fail;
		}
		rc = file_open(s);
		if (rc) {
			snprintf(err, errlen, "audit log %s: %s", cfg->path, strerror(-rc));
			goto fail;
		}
		if (asprintf(&s->ckpt_path, "%s.checkpoint", cfg->path) < 0)
			s->ckpt_path = NULL;
		break;
	case KC_SINK_STDOUT:
		snprintf(s->name, sizeof(s->name), "stdout");
		break;
	case KC_SINK_REDIS:
		snprintf(s->name, sizeof(s->name), "redis");
		if (redis_open(s, err, errlen))
			goto fail;
		log_info("audit sink redis: stream %s on %s", s->stream, s->url_str);
		break;
	}
	rc = pthread_create(&s->thread, NULL, sink_main, s);
	if (rc) {
		snprintf(err, errlen, "audit sink %s: %s", s->name, strerror(rc));
		goto fail;
	}
	return s;
fail:
	if (s->fd >= 0)
		close(s->fd);
	if (cfg->kind == KC_SINK_REDIS)
		redis_close(s);
	free(s->ckpt_path);
	free(s);
	return NULL;
}

static void wake(struct kc_audit_sink *s)
{
	uint64_t one = 1;

	if (write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("audit sink redis: wake: %s", strerror(errno));
}

void kc_audit_sink_push(struct kc_audit_sink *s, struct kc_audit_rec *r)
{
	struct qnode *q = malloc(sizeof(*q));

	pthread_mutex_lock(&s->lock);
	if (!q || s->stop || s->queued_bytes + r->len > s->cfg.queue_bytes) {
		count_drop_locked(s, r->hook, 1);
		pthread_mutex_unlock(&s->lock);
		free(q);
		return;
	}
	atomic_fetch_add(&r->refs, 1);
	q->rec = r;
	q->next = NULL;
	if (s->tail)
		s->tail->next = q;
	else
		s->head = q;
	s->tail = q;
	s->queued_bytes += r->len;
	pthread_cond_signal(&s->cond);
	if (s->wake_fd >= 0 && s->head == q)
		wake(s); /* the queue was empty: the thread may be asleep in its base */
	pthread_mutex_unlock(&s->lock);
}

void kc_audit_sink_stats(struct kc_audit_sink *s, struct kc_audit_sink_stats *out)
{
	pthread_mutex_lock(&s->lock);
	memcpy(out->dropped, s->dropped, sizeof(out->dropped));
	out->queued_bytes = s->queued_bytes;
	pthread_mutex_unlock(&s->lock);
	out->written = atomic_load(&s->written);
	out->rotations = atomic_load(&s->rotations);
	out->connected = s->cfg.kind == KC_SINK_REDIS ? atomic_load(&s->connected) : 1;
}

void kc_audit_sink_stop(struct kc_audit_sink *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_signal(&s->cond);
	if (s->wake_fd >= 0)
		wake(s);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	if (s->fd >= 0) {
		if (s->cfg.kind == KC_SINK_FILE)
			fsync(s->fd);
		close(s->fd);
	}
	if (s->cfg.kind == KC_SINK_REDIS)
		redis_close(s); /* the thread is gone: nobody else drives the base */
	kc_buf_free(&s->out);
	free(s->ckpt_path);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
