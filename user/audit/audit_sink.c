/* audit_sink.c: the sink threads (file with rotation, stdout, Redis stream). See audit_sink.h.
 *
 * Redis is spoken directly (RESP over a blocking socket with timeouts, in the sink's own
 * thread): the sink needs XADD and nothing else, and this keeps the daemon's link line as it is.
 */
#include "audit/audit_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_policy.h"
#include "core/buf.h"
#include "core/clock.h"
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

static int file_open(struct kc_audit_sink *s)
{
	struct stat st;

	s->fd = open(s->cfg.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (s->fd < 0)
		return -errno;
	if (fchmod(s->fd, 0600) || fstat(s->fd, &st)) {
		int rc = -errno;

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

/* --- Redis (RESP) ----------------------------------------------------------------------- */

static void redis_close(struct kc_audit_sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	atomic_store(&s->connected, 0);
}

static int redis_connect(struct kc_audit_sink *s)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	struct timeval tv = {.tv_sec = 2};
	char port[8];
	int fd;

	snprintf(port, sizeof(port), "%u", s->cfg.redis_port);
	if (getaddrinfo(s->cfg.redis_host, port, &hints, &ai))
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		int rc = -errno;

		close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	s->fd = fd;
	atomic_store(&s->connected, 1);
	return 0;
}

/* Reads one RESP reply line ("+OK", "$17", "-ERR ..."); bulk bodies are skipped. Returns 0
 * for a non-error reply, -EPROTO for an error reply, -errno on I/O. */
static int redis_reply(int fd)
{
	char line[512], c;
	size_t n = 0;
	long bulk;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r <= 0)
			return r == 0 ? -ECONNRESET : -errno;
		if (c == '\n')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	line[n] = 0;
	if (line[0] == '-')
		return -EPROTO;
	if (line[0] == '$' && (bulk = strtol(line + 1, NULL, 10)) >= 0) {
		char skip[256];
		long left = bulk + 2;

		while (left > 0) {
			ssize_t r =
			    read(fd, skip, left > (long)sizeof(skip) ? sizeof(skip) : (size_t)left);

			if (r <= 0)
				return -EIO;
			left -= r;
		}
	}
	return 0;
}

/* Appends XADD stream MAXLEN ~ N * record <line> as a RESP array to b. */
static int redis_xadd(struct kc_buf *b, const struct kc_audit_sink_cfg *cfg, const char *line,
		      size_t len)
{
	char max[24];
	const char *argv[] = {"XADD", cfg->stream, "MAXLEN", "~", max, "*", "record"};

	snprintf(max, sizeof(max), "%llu", (unsigned long long)cfg->stream_max);
	if (kc_buf_printf(b, "*8\r\n"))
		return -ENOMEM;
	for (size_t i = 0; i < 7; i++)
		if (kc_buf_printf(b, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]))
			return -ENOMEM;
	if (kc_buf_printf(b, "$%zu\r\n", len) || kc_buf_append(b, line, len) ||
	    kc_buf_append(b, "\r\n", 2))
		return -ENOMEM;
	return 0;
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
	char body[256], t[40], tmp[4200];
	int fd;

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
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->ckpt_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write_all(fd, s->out.data, s->out.len) == 0 && fsync(fd) == 0)
		rename(tmp, s->ckpt_path);
	close(fd);
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
	case KC_SINK_REDIS: {
		struct kc_buf cmd = {0};

		if (s->fd < 0 && (rc = redis_connect(s)))
			return rc;
		rc = redis_xadd(&cmd, &s->cfg, s->out.data, s->out.len - 1);
		if (!rc)
			rc = write_all(s->fd, cmd.data, cmd.len);
		if (!rc)
			rc = redis_reply(s->fd);
		kc_buf_free(&cmd);
		if (rc) {
			redis_close(s);
			return rc;
		}
		break;
	}
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

	while (!stopping) {
		struct qnode *batch, *q;
		struct timespec until;

		pthread_mutex_lock(&s->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (!s->head && !s->stop)
			if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
				break;
		batch = s->head;
		s->head = s->tail = NULL;
		s->queued_bytes = 0;
		stopping = s->stop;
		pthread_mutex_unlock(&s->lock);

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
		if (s->cfg.kind == KC_SINK_REDIS && s->fd < 0 && !stopping) {
			/* Down: drops are counted; try again in a second. */
			sleep(1);
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
		if (redis_connect(s))
			log_warn("audit sink redis %s:%u: not reachable yet; records are counted "
				 "as lost until it is",
				 cfg->redis_host, cfg->redis_port);
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
	free(s->ckpt_path);
	free(s);
	return NULL;
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
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	if (s->fd >= 0) {
		if (s->cfg.kind == KC_SINK_FILE)
			fsync(s->fd);
		close(s->fd);
	}
	kc_buf_free(&s->out);
	free(s->ckpt_path);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
