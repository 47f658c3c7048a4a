/* bench_udp.c: kcache-bench over UDP (see bench.h).
 *
 * Each thread drives cfg->conns connected UDP sockets. Requests go out in batches with
 * sendmmsg, each datagram carrying memcached's 8-byte frame header (request id, sequence 0 of 1);
 * replies come back in batches with recvmmsg and are matched to their request by the id. A
 * socket keeps at most cfg->depth requests in flight, and the ids in flight never span more than
 * half the 16-bit id space, so a reply can only match the request it answers (a very late reply
 * to a reused id is still caught: its VALUE names another key).
 *
 * Closed loop: every free slot of the window is filled at once; latency counts from the send.
 * Open loop (cfg->rate): each socket has a schedule of intended send times, and latency counts
 * from the intended time, so a server (or client) that falls behind cannot hide its queueing
 * (no coordinated omission). Requests due but never sent by the end are reported as unsent.
 *
 * Flood: datagrams as fast as the socket takes them (or at cfg->rate), replies counted when
 * they happen to be there, never waited for.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_HDR    8
#define RX_BUF	     2048      /* a memcached reply datagram is at most 1400 bytes, XDP's one MTU */
#define ID_SPAN_MAX  32768     /* ids in flight on one socket stay within half the id space */
#define MAX_PARTS    1024      /* a reply of more datagrams than this is an error */
#define SOCK_BUF     (4 << 20) /* socket buffers, so a batch never overflows them */
#define MAX_WAIT_NS  50000000ULL
#define UNSENT_SLACK 1000000ULL /* 1 ms */

struct pend {
	uint64_t t0;   /* latency origin: the intended send time (open loop) or the send */
	uint64_t sent; /* when it was sent, for the timeout */
	uint64_t key;
	uint8_t op;
	uint8_t live;
	uint8_t measured;
	uint16_t got, total;
	char *parts;	/* multi-datagram reply: total slots of RX_BUF bytes */
	uint16_t *plen; /* their lengths, 0 = not arrived */
};

struct usock {
	int fd;
	uint16_t next_id, oldest; /* oldest: first id that may still be in flight */
	unsigned inflight;
	uint64_t next_ns; /* open loop: intended time of the next request */
	struct pend *p;	  /* indexed by request id */
	char *req;	  /* batch * req_max bytes of rendered requests */
	uint8_t (*hdr)[FRAME_HDR];
	struct kb_raw raw; /* --pad-frames: frames go out through raw.fd */
	char *frames;	   /* --pad-frames: batch * KB_FRAME_MAX bytes */
};

struct uctx {
	struct kb_thread *t;
	const struct kb_cfg *cfg;
	struct kb_stats *st;
	unsigned n;
	struct usock *s;
	struct pollfd *pfd;
	struct mmsghdr *smsg, *rmsg;
	struct iovec *siov, *riov;
	char *rbuf;
	size_t req_max;
	uint64_t interval; /* open loop: between two requests of one socket */
	uint64_t mstart, end, last_done;
	unsigned long inflight;
};

static int sock_open(const struct kb_cfg *cfg, char *err, size_t errlen)
{
	int fd = socket(cfg->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int sz = SOCK_BUF;

	if (fd < 0) {
		snprintf(err, errlen, "udp socket: %s", strerror(errno));
		return -errno;
	}
	/* FORCE needs CAP_NET_ADMIN; the plain one is capped by net.core.[rw]mem_max. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen)) {
		int e = errno;

		snprintf(err, errlen, "udp connect %s: %s", cfg->target, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

static void ctx_free(struct uctx *c)
{
	for (unsigned i = 0; c->s && i < c->n; i++) {
		struct usock *s = &c->s[i];

		if (s->fd >= 0)
			close(s->fd);
		kb_raw_close(&s->raw);
		free(s->frames);
		for (unsigned id = 0; s->p && id < 65536; id++) {
			free(s->p[id].parts);
			free(s->p[id].plen);
		}
		free(s->p);
		free(s->req);
		free(s->hdr);
	}
	free(c->s);
	free(c->pfd);
	free(c->smsg);
	free(c->rmsg);
	free(c->siov);
	free(c->riov);
	free(c->rbuf);
}

static int ctx_init(struct uctx *c, struct kb_thread *t)
{
	const struct kb_cfg *cfg = t->cfg;
	unsigned b = cfg->batch;

	memset(c, 0, sizeof(*c));
	c->t = t;
	c->cfg = cfg;
	c->st = &t->st;
	c->n = cfg->conns;
	c->req_max = kb_req_max(&cfg->ks);
	c->s = calloc(c->n, sizeof(*c->s));
	c->pfd = calloc(c->n, sizeof(*c->pfd));
	c->smsg = calloc(b, sizeof(*c->smsg));
	c->rmsg = calloc(b, sizeof(*c->rmsg));
	c->siov = calloc(2 * (size_t)b, sizeof(*c->siov));
	c->riov = calloc(b, sizeof(*c->riov));
	c->rbuf = malloc((size_t)b * RX_BUF);
	if (!c->s || !c->pfd || !c->smsg || !c->rmsg || !c->siov || !c->riov || !c->rbuf)
		goto nomem;
	for (unsigned i = 0; i < c->n; i++)
		c->s[i].fd = c->s[i].raw.fd = -1;
	for (unsigned i = 0; i < c->n; i++) {
		struct usock *s = &c->s[i];
		int fd = sock_open(cfg, t->err, sizeof(t->err));

		if (fd < 0) {
			ctx_free(c);
			return fd;
		}
		s->fd = fd;
		c->pfd[i] = (struct pollfd){.fd = fd, .events = POLLIN};
		/* ids start apart per socket and thread: easier to read in a capture */
		s->next_id = s->oldest = (uint16_t)((t->id * c->n + i) * 4099);
		s->p = calloc(65536, sizeof(*s->p));
		s->req = malloc((size_t)b * c->req_max);
		s->hdr = calloc(b, sizeof(*s->hdr));
		if (!s->p || !s->req || !s->hdr)
			goto nomem;
		if (cfg->pad_frames) {
			int rc = kb_raw_open(&s->raw, fd, cfg, t->err, sizeof(t->err));

			if (rc) {
				ctx_free(c);
				return rc;
			}
			s->frames = calloc(b, KB_FRAME_MAX);
			if (!s->frames)
				goto nomem;
		}
	}
	for (unsigned j = 0; j < b; j++) {
		c->riov[j] = (struct iovec){c->rbuf + (size_t)j * RX_BUF, RX_BUF};
		c->rmsg[j].msg_hdr.msg_iov = &c->riov[j];
		c->rmsg[j].msg_hdr.msg_iovlen = 1;
		c->smsg[j].msg_hdr.msg_iov = &c->siov[2 * j];
		c->smsg[j].msg_hdr.msg_iovlen = 2;
	}
	return 0;
nomem:
	snprintf(t->err, sizeof(t->err), "out of memory for %u UDP sockets", c->n);
	ctx_free(c);
	return -ENOMEM;
}

static void pend_release(struct pend *p)
{
	free(p->parts);
	free(p->plen);
	p->parts = NULL;
	p->plen = NULL;
	p->live = 0;
}

static void complete(struct uctx *c, struct usock *s, struct pend *p, enum kb_outcome o,
		     uint64_t now)
{
	if (p->measured) {
		kb_count(c->st, (enum kb_op)p->op, o);
		kb_hist_add(&c->st->hist, now > p->t0 ? now - p->t0 : 0);
		c->last_done = now;
	}
	pend_release(p);
	s->inflight--;
	c->inflight--;
}

/* One reply, reassembled: exactly one memcached reply, nothing after it. */
static enum kb_outcome judge(struct uctx *c, const struct pend *p, const char *data, size_t len)
{
	enum kb_outcome o;
	ssize_t r =
	    kb_reply_parse(&c->cfg->ks, (enum kb_op)p->op, p->key, c->cfg->verify, data, len, &o);

	if (r <= 0 || (size_t)r != len)
		return KB_ERROR;
	return o;
}

/* Stores one part of a multi-datagram reply; returns true when the reply is whole (and then
 * leaves it contiguous at p->parts, its length in *len). */
static bool reassemble(struct pend *p, unsigned seq, unsigned total, const char *data, size_t n,
		       size_t *len)
{
	size_t off = 0;

	if (!p->parts) {
		p->parts = malloc((size_t)total * RX_BUF);
		p->plen = calloc(total, sizeof(*p->plen));
		if (!p->parts || !p->plen)
			return false;
		p->total = (uint16_t)total;
	}
	if (total != p->total || p->plen[seq])
		return false; /* inconsistent or duplicate: wait, it will time out */
	memcpy(p->parts + (size_t)seq * RX_BUF, data, n);
	p->plen[seq] = (uint16_t)(n ? n : 1);
	if (n == 0)
		p->plen[seq] = 0xffff; /* an empty part: arrived, zero bytes */
	if (++p->got < total)
		return false;
	for (unsigned k = 0; k < total; k++) {
		size_t pl = p->plen[k] == 0xffff ? 0 : p->plen[k];

		memmove(p->parts + off, p->parts + (size_t)k * RX_BUF, pl);
		off += pl;
	}
	*len = off;
	return true;
}

static void on_datagram(struct uctx *c, struct usock *s, const char *d, size_t n, int flags,
			uint64_t now)
{
	unsigned id, seq, total;
	struct pend *p;
	size_t len;

	if ((flags & MSG_TRUNC) || n < FRAME_HDR) {
		c->st->errors++;
		return;
	}
	id = (unsigned)((uint8_t)d[0] << 8 | (uint8_t)d[1]);
	seq = (unsigned)((uint8_t)d[2] << 8 | (uint8_t)d[3]);
	total = (unsigned)((uint8_t)d[4] << 8 | (uint8_t)d[5]);
	p = &s->p[id];
	if (!p->live) {
		c->st->late++;
		return;
	}
	if (total == 0 || seq >= total || total > MAX_PARTS) {
		complete(c, s, p, KB_ERROR, now);
		return;
	}
	if (total == 1) {
		complete(c, s, p, judge(c, p, d + FRAME_HDR, n - FRAME_HDR), now);
		return;
	}
	if (reassemble(p, seq, total, d + FRAME_HDR, n - FRAME_HDR, &len))
		complete(c, s, p, judge(c, p, p->parts, len), now);
}

/* Receives what is there (one batch). Returns datagrams received, or -errno. */
static int udp_recv(struct uctx *c, struct usock *s)
{
	int r = recvmmsg(s->fd, c->rmsg, c->cfg->batch, MSG_DONTWAIT, NULL);
	uint64_t now;

	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno == ECONNREFUSED) { /* ICMP port unreachable: nobody listens */
			c->st->errors++;
			return 0;
		}
		snprintf(c->t->err, sizeof(c->t->err), "recvmmsg: %s", strerror(errno));
		return -errno;
	}
	now = kc_mono_ns();
	for (int j = 0; j < r; j++)
		on_datagram(c, s, c->riov[j].iov_base, c->rmsg[j].msg_len,
			    c->rmsg[j].msg_hdr.msg_flags, now);
	return r;
}

/* Sends what is due and fits the window (one batch). Returns datagrams sent, or -errno. */
static int udp_send(struct uctx *c, struct usock *s)
{
	const struct kb_cfg *cfg = c->cfg;
	uint64_t now = kc_mono_ns();
	unsigned n = 0;
	int r;

	while (n < cfg->batch && s->inflight + n < cfg->depth &&
	       (uint16_t)(s->next_id + n - s->oldest) < ID_SPAN_MAX) {
		uint16_t id = (uint16_t)(s->next_id + n);
		struct pend *p = &s->p[id];
		uint64_t t0 = cfg->rate > 0 ? s->next_ns + (uint64_t)n * c->interval : now;
		char *req = s->req + (size_t)n * c->req_max;
		bool measured = t0 >= c->mstart;
		enum kb_op op;

		if (t0 > now || t0 >= c->end)
			break;
		if (measured && !kb_claim(c->t))
			break;
		op = kb_pick(c->t, &p->key);
		p->op = (uint8_t)op;
		p->t0 = t0;
		p->measured = measured;
		s->hdr[n][0] = (uint8_t)(id >> 8);
		s->hdr[n][1] = (uint8_t)id;
		memcpy(&s->hdr[n][2], "\0\0\0\1\0\0", 6);
		c->siov[2 * n] = (struct iovec){s->hdr[n], FRAME_HDR};
		c->siov[2 * n + 1] = (struct iovec){req, kb_req_render(&cfg->ks, op, p->key, req)};
		if (cfg->pad_frames) {
			char *f = s->frames + (size_t)n * KB_FRAME_MAX;

			c->siov[2 * n].iov_len = kb_raw_frame(&s->raw, s->hdr[n], FRAME_HDR, req,
							      c->siov[2 * n + 1].iov_len, f);
			c->siov[2 * n].iov_base = f;
			c->siov[2 * n + 1].iov_len = 0;
		}
		n++;
	}
	if (!n)
		return 0;
	r = sendmmsg(cfg->pad_frames ? s->raw.fd : s->fd, c->smsg, n, MSG_DONTWAIT);
	if (r < 0) {
		if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
			return 0;
		if (errno == ECONNREFUSED) {
			c->st->errors++;
			return 0;
		}
		snprintf(c->t->err, sizeof(c->t->err), "sendmmsg: %s", strerror(errno));
		return -errno;
	}
	for (int j = 0; j < r; j++) {
		struct pend *p = &s->p[(uint16_t)(s->next_id + j)];

		p->live = 1;
		p->sent = now;
		p->got = 0;
		if (p->measured)
			c->st->sent++;
	}
	s->next_id = (uint16_t)(s->next_id + r);
	s->inflight += (unsigned)r;
	c->inflight += (unsigned)r;
	if (cfg->rate > 0)
		s->next_ns += (uint64_t)r * c->interval;
	return r;
}

/* Counts requests older than the timeout as lost, and moves oldest past finished ids. */
static void udp_expire(struct uctx *c, struct usock *s, uint64_t now, bool all)
{
	while (s->oldest != s->next_id) {
		struct pend *p = &s->p[s->oldest];

		if (p->live) {
			if (!all && (now <= p->sent || now - p->sent < c->cfg->timeout_ns))
				break;
			if (p->measured)
				c->st->lost++;
			pend_release(p);
			s->inflight--;
			c->inflight--;
		}
		s->oldest++;
	}
}

/* Sleeps until a reply, the next intended send, the oldest request's timeout or the end. */
static void udp_wait(struct uctx *c, uint64_t now, uint64_t until, bool sending)
{
	uint64_t wake = until;
	struct timespec ts;

	for (unsigned i = 0; i < c->n; i++) {
		struct usock *s = &c->s[i];

		if (sending && c->cfg->rate > 0 && s->inflight < c->cfg->depth && s->next_ns < wake)
			wake = s->next_ns;
		if (s->oldest != s->next_id && s->p[s->oldest].live &&
		    s->p[s->oldest].sent + c->cfg->timeout_ns < wake)
			wake = s->p[s->oldest].sent + c->cfg->timeout_ns;
	}
	if (wake <= now)
		return;
	if (wake - now > MAX_WAIT_NS)
		wake = now + MAX_WAIT_NS;
	ts.tv_sec = (time_t)((wake - now) / 1000000000ULL);
	ts.tv_nsec = (long)((wake - now) % 1000000000ULL);
	ppoll(c->pfd, c->n, &ts, NULL);
}

int kb_udp_run(struct kb_thread *t)
{
	const struct kb_cfg *cfg = t->cfg;
	unsigned long nsocks = (unsigned long)cfg->threads * cfg->conns;
	uint64_t now, stop_at;
	struct uctx c;
	int rc = ctx_init(&c, t);

	if (rc)
		return rc;
	c.mstart = t->start_ns + cfg->warmup_ns;
	c.end = c.mstart + cfg->duration_ns;
	if (cfg->rate > 0) {
		c.interval = (uint64_t)(1e9 * (double)nsocks / cfg->rate);
		if (!c.interval)
			c.interval = 1;
		/* stagger the sockets' schedules over one interval */
		for (unsigned i = 0; i < c.n; i++)
			c.s[i].next_ns = t->start_ns + c.interval * (t->id * c.n + i) / nsocks;
	}
	t->st.start_ns = c.mstart;
	for (;;) {
		int progress = 0;

		now = kc_mono_ns();
		if (now >= c.end || atomic_load_explicit(cfg->stop, memory_order_relaxed))
			break;
		for (unsigned i = 0; i < c.n; i++) {
			int r = udp_recv(&c, &c.s[i]);

			if (r >= 0)
				progress += r;
			if (r >= 0)
				r = udp_send(&c, &c.s[i]);
			if (r < 0) {
				rc = r;
				goto out;
			}
			progress += r;
			udp_expire(&c, &c.s[i], now, false);
		}
		if (!progress)
			udp_wait(&c, now, c.end, true);
	}
	/* Drain: replies to requests in flight, for at most the timeout. */
	stop_at = now;
	while (c.inflight) {
		int progress = 0;

		now = kc_mono_ns();
		if (now >= stop_at + cfg->timeout_ns)
			break;
		for (unsigned i = 0; i < c.n; i++) {
			int r = udp_recv(&c, &c.s[i]);

			if (r < 0) {
				rc = r;
				goto out;
			}
			progress += r;
			udp_expire(&c, &c.s[i], now, false);
		}
		if (!progress)
			udp_wait(&c, now, stop_at + cfg->timeout_ns, false);
	}
	/* every answer counted arrived in [start, end] */
	t->st.end_ns = c.last_done > stop_at ? c.last_done : stop_at;
	for (unsigned i = 0; i < c.n; i++) {
		struct usock *s = &c.s[i];
		uint64_t from = s->next_ns > c.mstart ? s->next_ns : c.mstart;

		udp_expire(&c, s, now, true);
		/* Requests that were due more than UNSENT_SLACK before the end but never went out
		 * (the window was full): the client or the server fell behind the rate. A stop by
		 * signal or by --requests is not falling behind. */
		if (cfg->rate > 0 && !atomic_load(cfg->stop) && from + UNSENT_SLACK < c.end)
			t->st.unsent += (c.end - UNSENT_SLACK - from) / c.interval + 1;
	}
out:
	ctx_free(&c);
	return rc;
}

/* --- flood --------------------------------------------------------------------------------- */

#define FLOOD_POOL 1024 /* requests rendered up front and cycled through */

int kb_udp_flood(struct kb_thread *t)
{
	const struct kb_cfg *cfg = t->cfg;
	unsigned b = cfg->batch, next = 0;
	uint64_t mstart = t->start_ns + cfg->warmup_ns, end = mstart + cfg->duration_ns;
	uint64_t interval = 0, sched = t->start_ns, cpu0 = 0, now;
	struct {
		uint16_t len;
		char *p;
	} * pool;
	char *mem;
	uint16_t id = (uint16_t)(t->id * 7919);
	struct uctx c;
	int rc = ctx_init(&c, t);

	if (rc)
		return rc;
	pool = calloc(FLOOD_POOL, sizeof(*pool));
	mem = malloc((size_t)FLOOD_POOL * (FRAME_HDR + 4 + KB_KEY_MAX + 2));
	if (!pool || !mem) {
		snprintf(t->err, sizeof(t->err), "out of memory for the flood's requests");
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned k = 0; k < FLOOD_POOL; k++) {
		uint64_t key = kb_zipf_next(&cfg->zipf, &t->rng);

		pool[k].p = mem + (size_t)k * (FRAME_HDR + 4 + KB_KEY_MAX + 2);
		memcpy(pool[k].p, "\0\0\0\0\0\1\0\0", FRAME_HDR);
		pool[k].len = (uint16_t)(FRAME_HDR + kb_req_render(&cfg->ks, KB_GET, key,
								   pool[k].p + FRAME_HDR));
	}
	/* one schedule per thread, spread over its sockets */
	if (cfg->rate > 0)
		interval = (uint64_t)(1e9 * (double)cfg->threads / cfg->rate) + 1;
	t->st.start_ns = mstart;
	while (!atomic_load_explicit(cfg->stop, memory_order_relaxed)) {
		now = kc_mono_ns();
		if (now >= end)
			break;
		if (!cpu0 && now >= mstart)
			cpu0 = kb_thread_cpu_ns();
		for (unsigned i = 0; i < c.n; i++) {
			struct usock *s = &c.s[i];
			unsigned n = b;
			int r;

			if (interval) {
				uint64_t due = now > sched ? (now - sched) / interval : 0;

				if (due < n)
					n = (unsigned)due;
				if (!n)
					continue;
			}
			for (unsigned j = 0; j < n; j++, next = (next + 1) % FLOOD_POOL, id++) {
				pool[next].p[0] = (char)(id >> 8);
				pool[next].p[1] = (char)id;
				c.siov[2 * j] = (struct iovec){pool[next].p, pool[next].len};
				c.siov[2 * j + 1] = (struct iovec){pool[next].p, 0};
			}
			r = sendmmsg(s->fd, c.smsg, n, MSG_DONTWAIT);
			if (r < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR &&
			    errno != ECONNREFUSED) {
				snprintf(t->err, sizeof(t->err), "sendmmsg: %s", strerror(errno));
				rc = -errno;
				goto out;
			}
			if (r < 0)
				r = 0;
			if (now >= mstart)
				t->st.sent += (unsigned)r;
			if (interval)
				sched += (uint64_t)r * interval;
			/* replies only when they are there: never wait for them */
			r = recvmmsg(s->fd, c.rmsg, b, MSG_DONTWAIT, NULL);
			if (r > 0 && now >= mstart)
				t->st.replies += (unsigned)r;
		}
		if (interval && sched > now + 1000) {
			struct timespec ts = {
			    0, (long)(sched - now < MAX_WAIT_NS ? sched - now : MAX_WAIT_NS)};

			ppoll(NULL, 0, &ts, NULL);
		}
	}
	t->st.end_ns = kc_mono_ns();
	if (t->st.end_ns > end)
		t->st.end_ns = end;
	if (cpu0)
		t->st.cpu_ns = kb_thread_cpu_ns() - cpu0;
out:
	free(pool);
	free(mem);
	ctx_free(&c);
	return rc;
}
