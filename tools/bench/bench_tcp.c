/* bench_tcp.c: kcache-bench over TCP, and the prefill (see bench.h).
 *
 * Each thread drives cfg->conns non-blocking connections. A connection pipelines up to
 * cfg->depth requests; memcached answers a connection's requests in order, so replies are
 * matched to a FIFO of what was sent. Closed and open loop work as over UDP (see bench_udp.c):
 * in open loop a connection has a schedule of intended send times and latency counts from them.
 *
 * A reply that cannot be parsed means the stream is out of step: the connection is counted as
 * one error, its requests in flight as lost, and it is reopened. So is a connection whose oldest
 * request waited longer than the timeout.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define IN_MIN	     (64 << 10)
#define MAX_WAIT_NS  50000000ULL
#define UNSENT_SLACK 1000000ULL /* see bench_udp.c */
#define CONNECT_SECS 5

struct tpend {
	uint64_t t0, sent, key;
	uint8_t op, measured;
};

struct tconn {
	int fd;
	char *in, *out;
	size_t in_len, in_cap, out_off, out_len, out_cap;
	struct tpend *q; /* ring of cfg->depth */
	unsigned qhead, qlen;
	uint64_t next_ns;
};

struct tctx {
	struct kb_thread *t;
	const struct kb_cfg *cfg;
	struct kb_stats *st;
	unsigned n;
	struct tconn *c;
	struct pollfd *pfd;
	size_t req_max;
	uint64_t interval, mstart, end, last_done;
	bool prefill;
	uint64_t pf_next; /* prefill: next key to set */
	unsigned long inflight;
};

static int conn_open(struct tctx *x, struct tconn *c)
{
	const struct kb_cfg *cfg = x->cfg;
	struct timeval tv = {CONNECT_SECS, 0};
	int one = 1, fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() */
	if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen)) {
		int e = errno;

		close(fd);
		errno = e;
		goto fail;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->fd = fd;
	c->in_len = c->out_off = c->out_len = 0;
	c->qhead = c->qlen = 0;
	return 0;
fail:
	snprintf(x->t->err, sizeof(x->t->err), "tcp connect %s: %s", cfg->target, strerror(errno));
	return -errno;
}

static void ctx_free(struct tctx *x)
{
	for (unsigned i = 0; x->c && i < x->n; i++) {
		if (x->c[i].fd >= 0)
			close(x->c[i].fd);
		free(x->c[i].in);
		free(x->c[i].out);
		free(x->c[i].q);
	}
	free(x->c);
	free(x->pfd);
}

static int ctx_init(struct tctx *x, struct kb_thread *t, bool prefill)
{
	const struct kb_cfg *cfg = t->cfg;

	memset(x, 0, sizeof(*x));
	x->t = t;
	x->cfg = cfg;
	x->st = &t->st;
	x->n = cfg->conns;
	x->prefill = prefill;
	x->req_max = kb_req_max(&cfg->ks);
	x->c = calloc(x->n, sizeof(*x->c));
	x->pfd = calloc(x->n, sizeof(*x->pfd));
	if (!x->c || !x->pfd)
		goto nomem;
	for (unsigned i = 0; i < x->n; i++)
		x->c[i].fd = -1;
	for (unsigned i = 0; i < x->n; i++) {
		struct tconn *c = &x->c[i];
		int rc;

		c->in_cap = IN_MIN > x->req_max + 512 ? IN_MIN : 2 * (x->req_max + 512);
		c->out_cap = (size_t)cfg->depth * x->req_max;
		c->in = malloc(c->in_cap);
		c->out = malloc(c->out_cap);
		c->q = calloc(cfg->depth, sizeof(*c->q));
		if (!c->in || !c->out || !c->q)
			goto nomem;
		rc = conn_open(x, c);
		if (rc) {
			ctx_free(x);
			return rc;
		}
	}
	return 0;
nomem:
	snprintf(t->err, sizeof(t->err), "out of memory for %u TCP connections", x->n);
	ctx_free(x);
	return -ENOMEM;
}

/* Drops a connection that is out of step: its requests in flight are lost. Reopens it. */
static int conn_reset(struct tctx *x, struct tconn *c)
{
	for (unsigned k = 0; k < c->qlen; k++)
		if (c->q[(c->qhead + k) % x->cfg->depth].measured)
			x->st->lost++;
	x->inflight -= c->qlen;
	close(c->fd);
	c->fd = -1;
	return conn_open(x, c);
}

/* The next request to send, or false if there is none now. */
static bool next_req(struct tctx *x, struct tconn *c, uint64_t now, struct tpend *p)
{
	const struct kb_cfg *cfg = x->cfg;

	if (x->prefill) {
		if (x->pf_next >= x->t->pf_end)
			return false;
		*p = (struct tpend){.t0 = now, .key = x->pf_next++, .op = KB_SET, .measured = 1};
		return true;
	}
	p->t0 = cfg->rate > 0 ? c->next_ns : now;
	if (p->t0 > now || p->t0 >= x->end)
		return false;
	p->measured = p->t0 >= x->mstart;
	if (p->measured && !kb_claim(x->t))
		return false;
	p->op = (uint8_t)kb_pick(x->t, &p->key);
	if (cfg->rate > 0)
		c->next_ns += x->interval;
	return true;
}

/* Queues what is due, then writes. Returns requests queued, or -errno (connection broken). */
static int conn_send(struct tctx *x, struct tconn *c)
{
	const struct kb_cfg *cfg = x->cfg;
	uint64_t now = kc_mono_ns();
	struct tpend p;
	int queued = 0;

	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	while (c->qlen < cfg->depth && c->out_len + x->req_max <= c->out_cap &&
	       next_req(x, c, now, &p)) {
		p.sent = now;
		c->out_len += kb_req_render(&cfg->ks, (enum kb_op)p.op, p.key, c->out + c->out_len);
		c->q[(c->qhead + c->qlen) % cfg->depth] = p;
		c->qlen++;
		x->inflight++;
		if (p.measured)
			x->st->sent++;
		queued++;
	}
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		return n < 0 ? -errno : -EPIPE;
	}
	return queued;
}

/* Reads and matches replies. Returns replies matched, or -errno / -EPROTO. */
static int conn_recv(struct tctx *x, struct tconn *c)
{
	const struct kb_cfg *cfg = x->cfg;
	int matched = 0;
	size_t off = 0;

	for (;;) {
		ssize_t n;

		if (c->in_len == c->in_cap) {
			char *bigger = realloc(c->in, c->in_cap * 2);

			if (!bigger)
				return -ENOMEM;
			c->in = bigger;
			c->in_cap *= 2;
		}
		n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			if (c->in_len < c->in_cap)
				break;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		return -errno;
	}
	if (!c->in_len)
		return 0;
	{
		uint64_t now = kc_mono_ns();

		while (off < c->in_len) {
			struct tpend *p = &c->q[c->qhead];
			enum kb_outcome o;
			ssize_t r;

			if (!c->qlen)
				return -EPROTO; /* a reply nobody asked for */
			r = kb_reply_parse(&cfg->ks, (enum kb_op)p->op, p->key, cfg->verify,
					   c->in + off, c->in_len - off, &o);
			if (r < 0)
				return -EPROTO;
			if (r == 0)
				break;
			off += (size_t)r;
			if (p->measured) {
				kb_count(x->st, (enum kb_op)p->op, o);
				kb_hist_add(&x->st->hist, now > p->t0 ? now - p->t0 : 0);
				x->last_done = now;
			}
			c->qhead = (c->qhead + 1) % cfg->depth;
			c->qlen--;
			x->inflight--;
			matched++;
		}
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return matched;
}

static void tcp_wait(struct tctx *x, uint64_t now, uint64_t until, bool sending)
{
	uint64_t wake = until;
	struct timespec ts;

	for (unsigned i = 0; i < x->n; i++) {
		struct tconn *c = &x->c[i];

		x->pfd[i] = (struct pollfd){.fd = c->fd, .events = POLLIN};
		if (c->out_off < c->out_len)
			x->pfd[i].events |= POLLOUT;
		if (sending && x->cfg->rate > 0 && !x->prefill && c->qlen < x->cfg->depth &&
		    c->next_ns < wake)
			wake = c->next_ns;
		if (c->qlen && c->q[c->qhead].sent + x->cfg->timeout_ns < wake)
			wake = c->q[c->qhead].sent + x->cfg->timeout_ns;
	}
	if (wake <= now)
		return;
	if (wake - now > MAX_WAIT_NS)
		wake = now + MAX_WAIT_NS;
	ts.tv_sec = (time_t)((wake - now) / 1000000000ULL);
	ts.tv_nsec = (long)((wake - now) % 1000000000ULL);
	ppoll(x->pfd, x->n, &ts, NULL);
}

/* One pass over the connections. Returns progress (requests queued + replies), or -errno
 * when a connection could not be reopened. */
static int tcp_pass(struct tctx *x, bool sending, uint64_t now)
{
	int progress = 0;

	for (unsigned i = 0; i < x->n; i++) {
		struct tconn *c = &x->c[i];
		int r = conn_recv(x, c);

		if (r >= 0) {
			progress += r;
			r = sending ? conn_send(x, c) : 0;
		}
		if (r >= 0 && c->qlen && now > c->q[c->qhead].sent &&
		    now - c->q[c->qhead].sent >= x->cfg->timeout_ns)
			r = -ETIMEDOUT;
		if (r >= 0) {
			progress += r;
			continue;
		}
		x->st->errors++;
		if (conn_reset(x, c))
			return -ECONNRESET;
		progress++;
	}
	return progress;
}

int kb_tcp_run(struct kb_thread *t)
{
	const struct kb_cfg *cfg = t->cfg;
	unsigned long nconns = (unsigned long)cfg->threads * cfg->conns;
	uint64_t now, stop_at;
	struct tctx x;
	int rc = ctx_init(&x, t, false);

	if (rc)
		return rc;
	x.mstart = t->start_ns + cfg->warmup_ns;
	x.end = x.mstart + cfg->duration_ns;
	if (cfg->rate > 0) {
		x.interval = (uint64_t)(1e9 * (double)nconns / cfg->rate);
		if (!x.interval)
			x.interval = 1;
		for (unsigned i = 0; i < x.n; i++)
			x.c[i].next_ns = t->start_ns + x.interval * (t->id * x.n + i) / nconns;
	}
	t->st.start_ns = x.mstart;
	for (;;) {
		int r;

		now = kc_mono_ns();
		if (now >= x.end || atomic_load_explicit(cfg->stop, memory_order_relaxed))
			break;
		r = tcp_pass(&x, true, now);
		if (r < 0)
			goto fail;
		if (!r)
			tcp_wait(&x, now, x.end, true);
	}
	stop_at = now;
	while (x.inflight) {
		int r;

		now = kc_mono_ns();
		if (now >= stop_at + cfg->timeout_ns)
			break;
		r = tcp_pass(&x, false, now);
		if (r < 0)
			goto fail;
		if (!r)
			tcp_wait(&x, now, stop_at + cfg->timeout_ns, false);
	}
	t->st.end_ns = x.last_done > stop_at ? x.last_done : stop_at;
	for (unsigned i = 0; i < x.n; i++) {
		struct tconn *c = &x.c[i];
		uint64_t from = c->next_ns > x.mstart ? c->next_ns : x.mstart;

		for (unsigned k = 0; k < c->qlen; k++)
			if (c->q[(c->qhead + k) % cfg->depth].measured)
				t->st.lost++;
		if (cfg->rate > 0 && !atomic_load(cfg->stop) && from + UNSENT_SLACK < x.end)
			t->st.unsent += (x.end - UNSENT_SLACK - from) / x.interval + 1;
	}
	ctx_free(&x);
	return 0;
fail:
	ctx_free(&x);
	return -ECONNRESET;
}

int kb_tcp_prefill(struct kb_thread *t, uint64_t deadline_ns)
{
	const struct kb_cfg *cfg = t->cfg;
	struct tctx x;
	uint64_t now;
	int rc = ctx_init(&x, t, true);

	if (rc)
		return rc;
	x.pf_next = t->pf_first;
	t->st.start_ns = kc_mono_ns();
	while (x.pf_next < t->pf_end || x.inflight) {
		int r;

		now = kc_mono_ns();
		if (atomic_load_explicit(cfg->stop, memory_order_relaxed))
			break;
		if (now >= deadline_ns) {
			snprintf(t->err, sizeof(t->err),
				 "prefill did not finish in time: %llu of %llu keys set",
				 (unsigned long long)t->st.stored,
				 (unsigned long long)(t->pf_end - t->pf_first));
			rc = -ETIMEDOUT;
			break;
		}
		r = tcp_pass(&x, true, now);
		if (r < 0) {
			rc = r;
			break;
		}
		if (!r)
			tcp_wait(&x, now, deadline_ns, true);
	}
	t->st.end_ns = kc_mono_ns();
	ctx_free(&x);
	return rc;
}
