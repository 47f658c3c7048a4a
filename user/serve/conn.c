/* conn.c: TCP connections and UDP datagrams of one worker (see conn.h).
 *
 * A TCP connection is a small state machine (conn.h draws it) driven by conn_drive():
 *   read what the socket has -> parse and execute complete requests (proto_text) -> write the
 *   replies; if the socket cannot take them all, stop reading and wait for EV_WRITE
 *   (backpressure), then resume parsing what is already buffered.
 * Input never grows past one maximal request (a command line plus the largest value): longer
 * lines are refused by the parser and oversized values swallowed, so memory per connection is
 * bounded whatever a client sends. All connections together are bounded by the buffer budget
 * (struct kc_conn_budget): a connection it stops is "starved": its read event is off and a
 * timer (conn_on_budget) looks again, whatever its state; the deadlines of READING still hold.
 */
#include "serve/conn.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "serve/pend.h"

#define READ_CHUNK (16 << 10)
#define KEEP_BUF   (64 << 10) /* buffers above this are freed once empty */
/* Closing with unread input makes the kernel send a reset, which can destroy the error reply
 * the client has not read yet: after an error we shut down our side and discard input until
 * the client's EOF, for at most this long and this much. */
#define LINGER_SECS	2
#define LINGER_BYTES	(64u << 20)
#define BUDGET_RETRY_MS 50	  /* a connection the budget stopped looks again this often */
#define MIN_READ	(1 << 10) /* under the budget, reads shrink down to this */

struct kc_conn {
	int fd;
	struct kc_worker *w;
	struct event *rev, *wev;
	struct kc_buf in, out;
	struct kc_proto_conn pc;
	enum kc_conn_state state; /* written by kc_conn_set_state only */
	bool eof;		  /* the client's EOF was read (any state may have seen it) */
	size_t drained;		  /* LINGER: bytes discarded */
	uint64_t partial_since;	  /* kc_mono_ns when the incomplete request began; 0: none */
	uint64_t deadline;	  /* READING: kc_mono_ns at which the read timer closes; 0: none */
	size_t held;		  /* in.cap + out.cap as counted in w->budget */
	bool starved;		  /* the budget stopped it: tev retries, the read event is off */
	struct event *tev;	  /* budget retry timer */
	struct kc_conn *prev, *next;
};

#define BIT(s) (1u << (s))
/* The transition table (conn.h draws it): allowed[from] has bit `to` set. */
static const unsigned allowed[KC_CONN_NSTATES] = {
    [KC_CONN_NEW] = BIT(KC_CONN_READING),
    [KC_CONN_READING] = BIT(KC_CONN_RUNNING) | BIT(KC_CONN_CLOSED),
    [KC_CONN_RUNNING] = BIT(KC_CONN_READING) | BIT(KC_CONN_WRITING) | BIT(KC_CONN_WAIT_CALL) |
			BIT(KC_CONN_LINGER) | BIT(KC_CONN_CLOSED),
    [KC_CONN_WRITING] = BIT(KC_CONN_RUNNING) | BIT(KC_CONN_CLOSED),
    [KC_CONN_WAIT_CALL] = BIT(KC_CONN_WAIT_EARLY) | BIT(KC_CONN_WAITING),
    [KC_CONN_WAIT_EARLY] = BIT(KC_CONN_RUNNING),
    [KC_CONN_WAITING] = BIT(KC_CONN_RUNNING) | BIT(KC_CONN_CLOSED),
    [KC_CONN_LINGER] = BIT(KC_CONN_CLOSED),
    [KC_CONN_CLOSED] = 0,
};
#undef BIT

bool kc_conn_transition_ok(enum kc_conn_state from, enum kc_conn_state to)
{
	if ((unsigned)from >= KC_CONN_NSTATES || (unsigned)to >= KC_CONN_NSTATES)
		return false;
	return allowed[from] & (1u << to);
}

const char *kc_conn_state_name(enum kc_conn_state s)
{
	static const char *const names[KC_CONN_NSTATES] = {
	    [KC_CONN_NEW] = "NEW",
	    [KC_CONN_READING] = "READING",
	    [KC_CONN_RUNNING] = "RUNNING",
	    [KC_CONN_WRITING] = "WRITING",
	    [KC_CONN_WAIT_CALL] = "WAIT_CALL",
	    [KC_CONN_WAIT_EARLY] = "WAIT_EARLY",
	    [KC_CONN_WAITING] = "WAITING",
	    [KC_CONN_LINGER] = "LINGER",
	    [KC_CONN_CLOSED] = "CLOSED",
	};

	return (unsigned)s < KC_CONN_NSTATES ? names[s] : "?";
}

enum kc_conn_state kc_conn_get_state(const struct kc_conn *c)
{
	return c->state;
}

void kc_conn_set_state(struct kc_conn *c, enum kc_conn_state to)
{
	if (!kc_conn_transition_ok(c->state, to))
		log_error("conn %d: no transition %s -> %s", c->fd, kc_conn_state_name(c->state),
			  kc_conn_state_name(to));
	assert(kc_conn_transition_ok(c->state, to));
	c->state = to;
}

enum kc_conn_state kc_conn_after_write(bool close, bool eof, bool progress)
{
	if (close && !eof)
		return KC_CONN_LINGER;
	if (close || (eof && !progress))
		return KC_CONN_CLOSED;
	return progress ? KC_CONN_RUNNING : KC_CONN_READING;
}

/* Counts c's buffers into the budget again, after they may have grown or shrunk. */
static void conn_account(struct kc_conn *c)
{
	size_t h = c->in.cap + c->out.cap;
	struct kc_conn_budget *b = c->w->budget;

	if (b && h > c->held)
		atomic_fetch_add_explicit(&b->used, h - c->held, memory_order_relaxed);
	else if (b && h < c->held)
		atomic_fetch_sub_explicit(&b->used, c->held - h, memory_order_relaxed);
	c->held = h;
}

/* Bytes c's buffers may still grow by (conn.h's struct kc_conn_budget): what is left of the
 * free half, or of c's fair share of the other half, whichever is more. SIZE_MAX: no budget. */
static size_t conn_allowance(const struct kc_conn *c)
{
	const struct kc_conn_budget *b = c->w->budget;
	uint64_t used, half, n, share, freeh, fair;

	if (!b || !b->limit)
		return SIZE_MAX;
	used = atomic_load_explicit(&b->used, memory_order_relaxed);
	half = b->limit / 2;
	n = c->w->env->curr_conns ? atomic_load(c->w->env->curr_conns) : 1;
	share = half / (n ? n : 1);
	freeh = used < half ? half - used : 0;
	fair = c->held < share ? share - c->held : 0;
	return freeh > fair ? freeh : fair;
}

/* How much reserving n more bytes would grow b by (kc_buf_reserve doubles). */
static size_t buf_growth(const struct kc_buf *b, size_t n)
{
	size_t need = b->len + n, cap = b->cap ? b->cap : 256;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	return cap - b->cap;
}

/* Buffers emptied under budget pressure are freed, not kept for the next request. */
static size_t conn_keep(const struct kc_conn *c)
{
	return conn_allowance(c) < 4 * (size_t)KEEP_BUF ? 0 : KEEP_BUF;
}

static void conn_close(struct kc_conn *c)
{
	struct kc_worker *w = c->w;

	kc_conn_set_state(c, KC_CONN_CLOSED);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->tev);
	close(c->fd);
	kc_pend_free(c->pc.pend);
	kc_buf_free(&c->in);
	kc_buf_free(&c->out);
	conn_account(c);
	atomic_fetch_sub(w->env->curr_conns, 1);
	atomic_fetch_add_explicit(&w->stats->conns_closed, 1, memory_order_relaxed);
	free(c);
}

static void udp_drop_all(struct kc_worker *w);

void kc_conn_close_all(struct kc_worker *w)
{
	for (struct kc_conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	udp_drop_all(w);
}

static bool conn_drive(struct kc_conn *c);

/* True while c holds part of a request: a command line or value not fully arrived, or the
 * bytes of a refused value still to discard. */
static bool conn_partial(const struct kc_conn *c)
{
	return kc_buf_avail(&c->in) || c->pc.swallow;
}

/* READING: arms the read event with the deadline that applies: request-timeout from when the
 * incomplete request began, or idle-timeout from now; none when that one is 0. */
static void conn_arm_read(struct kc_conn *c)
{
	uint64_t now = kc_mono_ns(), secs;
	struct timeval retry = {0, BUDGET_RETRY_MS * 1000};

	if (conn_partial(c)) {
		if (!c->partial_since)
			c->partial_since = now;
		secs = c->w->request_timeout;
		c->deadline = secs ? c->partial_since + secs * 1000000000ull : 0;
	} else {
		c->partial_since = 0;
		secs = c->w->idle_timeout;
		c->deadline = secs ? now + secs * 1000000000ull : 0;
	}
	if (c->starved) {
		event_del(c->rev); /* conn_on_budget looks at the deadline too */
		evtimer_add(c->tev, &retry);
	} else if (!c->deadline) {
		event_add(c->rev, NULL);
	} else {
		uint64_t left = c->deadline > now ? c->deadline - now : 0;
		struct timeval tv = {(time_t)(left / 1000000000u),
				     (suseconds_t)(left % 1000000000u / 1000u) + 1};

		event_add(c->rev, &tv);
	}
}

/* The lower tiers answered: go on where the protocol stopped. */
static void conn_resume(void *arg)
{
	struct kc_conn *c = arg;

	c->pc.wait = KC_WAIT_NONE;
	if (c->state == KC_CONN_WAIT_CALL) {
		/* kc_pend_run finished at once: conn_drive goes on when it returns */
		kc_conn_set_state(c, KC_CONN_WAIT_EARLY);
		return;
	}
	conn_drive(c); /* WAITING -> RUNNING */
}

/* Before a wait: sends what the socket takes now of the replies that are final (those before
 * the waiting command's), so that pipelined requests that each wait do not hold their replies
 * back (issue 13: the first reply came after 17 s). Never resets out, even when it sent all of
 * it: the wait's reply_mark is an offset into out. A write error is left for the drive loop's
 * write to see again. */
static void conn_send_final(struct kc_conn *c)
{
	size_t end = c->pc.wait == KC_WAIT_WRITE ? c->pc.reply_mark : c->out.len;

	while (c->out.off < end) {
		ssize_t n = write(c->fd, c->out.data + c->out.off, end - c->out.off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		c->out.off += (size_t)n;
		atomic_fetch_add_explicit(&c->w->stats->bytes_written, (uint64_t)n,
					  memory_order_relaxed);
	}
}

/* Starts the wait the protocol asked for; true if it is still under way. */
static bool conn_wait(struct kc_conn *c)
{
	conn_send_final(c);
	kc_conn_set_state(c, KC_CONN_WAIT_CALL);
	kc_pend_run(c->pc.pend, c->pc.wait, &c->out, c->pc.reply_mark, conn_resume, c);
	if (c->state == KC_CONN_WAIT_EARLY) {
		kc_conn_set_state(c, KC_CONN_RUNNING);
		return false;
	}
	/* Nothing more is parsed until it is done. The read event stays: a client that sends
	 * nothing meanwhile (one request in flight) costs no epoll_ctl per wait; conn_on_read
	 * buffers what does come and stops reading at the input limit or EOF. */
	kc_conn_set_state(c, KC_CONN_WAITING);
	event_del(c->wev);
	return true;
}

/* RUNNING: parses buffered input and writes replies until nothing more can be done now, then
 * leaves for READING, WRITING, WAITING (through WAIT_CALL), LINGER or CLOSED. Entered from
 * READING (input came), WRITING (the socket drained) or WAITING (the wait ended).
 * Returns false if the connection was closed. */
static bool conn_drive(struct kc_conn *c)
{
	kc_conn_set_state(c, KC_CONN_RUNNING);
	for (;;) {
		bool progress = false, wrote = false;
		enum kc_conn_state next;

		/* The output limit counts bytes still unsent: out keeps the bytes already written
		 * until it is empty (kc_buf_consume): kc_proto_process's limit is past them. */
		if (!c->pc.close && kc_buf_avail(&c->in) && kc_buf_avail(&c->out) >= KC_OUT_SOFT) {
			progress = true; /* held back by the output: parse again once it drained */
		} else if (!c->pc.close && kc_buf_avail(&c->in)) {
			size_t used, allow = conn_allowance(c);

			if (c->out.off > c->out.cap / 2)
				kc_buf_compact(&c->out); /* no wait is under way: no reply_mark */
			uint64_t swallow = c->pc.swallow;

			/* half the allowance: out's capacity doubles past its length */
			c->pc.out_max = allow == SIZE_MAX ? 0 : c->out.len + allow / 2 + 1;
			c->pc.out_full = false;
			used = kc_proto_process(&c->pc, kc_buf_head(&c->in), kc_buf_avail(&c->in),
						&c->out, c->out.off + KC_OUT_SOFT);
			conn_account(c);
			if (used > swallow) /* a request completed: the next one's clock starts */
				c->partial_since = 0;
			kc_buf_consume(&c->in, used);
			progress = used > 0;
			if (c->pc.wait) {
				if (conn_wait(c))
					return true;
				progress = true;
			}
		}
		while (kc_buf_avail(&c->out)) {
			ssize_t n = write(c->fd, kc_buf_head(&c->out), kc_buf_avail(&c->out));

			if (n > 0) {
				kc_buf_consume(&c->out, (size_t)n);
				atomic_fetch_add_explicit(&c->w->stats->bytes_written, (uint64_t)n,
							  memory_order_relaxed);
				wrote = true;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				kc_conn_set_state(c, KC_CONN_WRITING);
				event_del(c->rev); /* backpressure: no reading until drained */
				event_add(c->wev, NULL);
				return true;
			}
			conn_close(c);
			return false;
		}
		kc_buf_shrink(&c->out, conn_keep(c));
		conn_account(c);
		if (c->pc.out_full && !c->pc.close) {
			/* a read did not fit the budget: again now if this round freed some, else
			 * once conn_on_budget finds room */
			c->pc.out_full = false;
			if (wrote)
				progress = true;
			else
				c->starved = true;
		}
		/* All output is written. A round that held its input back for the output limit
		 * counts as progress: RUNNING goes on and parses it now (issue 13: it went
		 * READING with complete requests buffered and waited for input the client would
		 * never send). */
		next = kc_conn_after_write(c->pc.close, c->eof, progress);
		if (next == KC_CONN_CLOSED && c->starved && !c->pc.close)
			next = KC_CONN_READING; /* requests after EOF wait for the budget too */
		if (next == KC_CONN_LINGER) {
			struct timeval tv = {LINGER_SECS, 0};

			kc_conn_set_state(c, KC_CONN_LINGER);
			shutdown(c->fd, SHUT_WR);
			kc_buf_free(&c->in);
			conn_account(c);
			c->starved = false;
			evtimer_del(c->tev);
			event_del(c->wev);
			event_add(c->rev, &tv);
			return true;
		}
		if (next == KC_CONN_CLOSED) {
			conn_close(c);
			return false;
		}
		if (next == KC_CONN_READING)
			break;
	}
	kc_conn_set_state(c, KC_CONN_READING);
	kc_buf_shrink(&c->in, conn_keep(c));
	conn_account(c);
	event_del(c->wev);
	conn_arm_read(c);
	return true;
}

/* Discards input after an error until EOF, the time limit or the byte limit. */
static void conn_drain(struct kc_conn *c, short what)
{
	char sink[16384];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		conn_close(c);
		return;
	}
	while ((n = read(c->fd, sink, sizeof(sink))) > 0) {
		c->drained += (size_t)n;
		if (c->drained > LINGER_BYTES) {
			conn_close(c);
			return;
		}
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		conn_close(c);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct kc_conn *c = arg;
	size_t limit = KC_LINE_MAX + c->w->env->item_max + 4;

	if (c->state == KC_CONN_LINGER) {
		conn_drain(c, what);
		return;
	}
	if (what == EV_TIMEOUT) {
		/* READING's deadline (a timer left from READING in another state is stale) */
		if (c->state != KC_CONN_READING || !c->deadline)
			return;
		if (kc_mono_ns() < c->deadline) {
			conn_arm_read(c);
			return;
		}
		log_debug("conn %d: closed: %s", fd,
			  conn_partial(c) ? "request-timeout: request incomplete" : "idle-timeout");
		conn_close(c);
		return;
	}
	if (c->state == KC_CONN_WAITING && (c->eof || kc_buf_avail(&c->in) >= limit)) {
		event_del(c->rev); /* conn_drive adds it back once the wait is over */
		return;
	}
	for (int rounds = 0; rounds < 4; rounds++) {
		if (c->in.off > c->in.cap / 2)
			kc_buf_compact(&c->in);
		if (kc_buf_avail(&c->in) >= limit)
			break; /* the parser will decide (cannot happen with a valid parser) */
		if (c->in.cap - c->in.len < MIN_READ || buf_growth(&c->in, READ_CHUNK)) {
			size_t want = READ_CHUNK, allow = conn_allowance(c);

			while (want > MIN_READ && buf_growth(&c->in, want) > allow)
				want /= 2;
			if (buf_growth(&c->in, want) > allow && c->in.cap - c->in.len < MIN_READ) {
				c->starved = true; /* the budget: stop reading (conn_on_budget) */
				break;
			}
			if (buf_growth(&c->in, want) <= allow && kc_buf_reserve(&c->in, want)) {
				log_warn("conn %d: out of memory for input", fd);
				conn_close(c);
				return;
			}
			conn_account(c);
		}
		ssize_t n = read(fd, c->in.data + c->in.len, c->in.cap - c->in.len);

		if (n > 0) {
			c->in.len += (size_t)n;
			atomic_fetch_add_explicit(&c->w->stats->bytes_read, (uint64_t)n,
						  memory_order_relaxed);
			if (c->in.len < c->in.cap)
				break; /* a short read: the socket is drained */
			continue;
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_close(c);
			return;
		}
		break;
	}
	if (c->state == KC_CONN_WAITING) {
		if (c->starved) {
			struct timeval retry = {0, BUDGET_RETRY_MS * 1000};

			evtimer_add(c->tev, &retry);
		}
		if (c->eof || c->starved || kc_buf_avail(&c->in) >= limit)
			event_del(c->rev);
		return;
	}
	conn_drive(c); /* READING -> RUNNING */
}

/* The budget retry timer of a connection the budget stopped: looks again (reads, parses). */
static void conn_on_budget(evutil_socket_t unused, short what, void *arg)
{
	struct kc_conn *c = arg;
	int fd = c->fd; /* a timer's own fd is -1 */

	(void)unused;
	(void)what;
	c->starved = false;
	if (c->state == KC_CONN_WAITING) {
		event_add(c->rev, NULL);
		conn_on_read(fd, EV_READ, c);
		return;
	}
	if (c->state != KC_CONN_READING)
		return; /* WRITING: the drain drives it */
	if (c->deadline && kc_mono_ns() >= c->deadline) {
		log_debug("conn %d: closed: %s", fd,
			  conn_partial(c) ? "request-timeout: request incomplete" : "idle-timeout");
		conn_close(c);
		return;
	}
	conn_arm_read(c);
	conn_on_read(fd, EV_READ, c);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_drive(arg);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct kc_worker *w = arg;

	(void)fd, (void)what;
	event_add(w->tcp_ev, NULL);
}

/* Out of descriptors (or memory): the pending connection stays in the backlog and the listener
 * stays readable, so accepting again at once would spin (and, logging each time, fill the
 * disk). Stop watching the listener for a while, and say so once per period for all workers. */
static void accept_pause(struct kc_worker *w, int err)
{
	static struct kc_ratelimit rl;
	const struct timeval tv = {0, KC_ACCEPT_PAUSE_MS * 1000};
	uint64_t left_out;

	if (kc_ratelimit(&rl, KC_ACCEPT_LOG_PERIOD_S * KC_NS_PER_S, &left_out))
		log_warn("memcached accept: %s: pausing accepts for %d ms (%llu more in the last "
			 "%d s)",
			 strerror(err), KC_ACCEPT_PAUSE_MS, (unsigned long long)left_out,
			 KC_ACCEPT_LOG_PERIOD_S);
	event_del(w->tcp_ev);
	if (event_base_once(w->base, -1, EV_TIMEOUT, accept_resume, w, &tv))
		event_add(w->tcp_ev, NULL); /* no timer: better a busy loop than a dead port */
}

void kc_conn_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct kc_worker *w = arg;

	(void)what;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct kc_conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				accept_pause(w, errno);
			return;
		}
		if (atomic_load(w->env->curr_conns) >= w->max_conns) {
			static const char msg[] = "SERVER_ERROR too many open connections\r\n";
			ssize_t n = write(fd, msg, sizeof(msg) - 1);

			(void)n;
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->w = w;
		c->pc.env = w->env;
		c->pc.stats = w->stats;
		c->pc.proto = KC_PROTO_TCP;
		if (w->tiers && !(c->pc.pend = kc_pend_new(w->tiers, w->id))) {
			close(fd);
			free(c);
			continue;
		}
		c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
		c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
		c->tev = evtimer_new(w->base, conn_on_budget, c);
		if (!c->rev || !c->wev || !c->tev) {
			event_free(c->rev);
			event_free(c->wev);
			if (c->tev)
				event_free(c->tev);
			kc_pend_free(c->pc.pend);
			close(fd);
			free(c);
			continue;
		}
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		atomic_fetch_add(w->env->curr_conns, 1);
		atomic_fetch_add(w->env->total_conns, 1);
		atomic_fetch_add_explicit(&w->stats->conns_opened, 1, memory_order_relaxed);
		kc_conn_set_state(c, KC_CONN_READING);
		conn_arm_read(c);
	}
}

/* --- UDP --------------------------------------------------------------------------------- */

size_t kc_udp_out_max(uint64_t max_reply)
{
	uint64_t full = max_reply / KC_UDP_PAYLOAD, rest = max_reply % KC_UDP_PAYLOAD;

	return (size_t)(full * (KC_UDP_PAYLOAD - KC_UDP_HDR) +
			(rest > KC_UDP_HDR ? rest - KC_UDP_HDR : 0));
}

/* Sends out as sequenced datagrams (memcached's frame: id, seq, total, 0). A reply over the
 * cap (which the protocol should have refused already) goes as the size error instead. */
static void udp_reply(struct kc_worker *w, int fd, const uint8_t *req_hdr,
		      const struct sockaddr_storage *peer, socklen_t plen, const struct kc_buf *out)
{
	size_t chunk = KC_UDP_PAYLOAD - KC_UDP_HDR, len = out->len;
	const uint8_t *data = (const uint8_t *)out->data;
	size_t total;

	if (w->env->udp_out_max && len > w->env->udp_out_max) {
		data = (const uint8_t *)KC_UDP_TOO_LARGE;
		len = sizeof(KC_UDP_TOO_LARGE) - 1;
		atomic_fetch_add_explicit(&w->stats->udp_refused[KC_UDP_REFUSED_SIZE], 1,
					  memory_order_relaxed);
	}
	total = len ? (len + chunk - 1) / chunk : 1;

	if (total > 65535) {
		atomic_fetch_add_explicit(&w->stats->udp_bad_frames, 1, memory_order_relaxed);
		return;
	}
	for (size_t seq = 0; seq < total; seq++) {
		uint8_t hdr[KC_UDP_HDR] = {req_hdr[0],
					   req_hdr[1],
					   (uint8_t)(seq >> 8),
					   (uint8_t)seq,
					   (uint8_t)(total >> 8),
					   (uint8_t)total,
					   0,
					   0};
		size_t off = seq * chunk, n = len - off < chunk ? len - off : chunk;
		struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)(data + off), n}};
		struct msghdr msg = {
		    .msg_name = (void *)peer, .msg_namelen = plen, .msg_iov = iov, .msg_iovlen = 2};

		if (sendmsg(fd, &msg, MSG_DONTWAIT) > 0)
			atomic_fetch_add_explicit(&w->stats->bytes_written, KC_UDP_HDR + n,
						  memory_order_relaxed);
	}
}

/* A datagram whose requests wait on the lower tiers: its input from the waiting command on,
 * and the replies so far, until every request is answered. */
struct kc_udp_wait {
	struct kc_worker *w;
	int fd;
	uint8_t hdr[KC_UDP_HDR];
	struct sockaddr_storage peer;
	socklen_t plen;
	struct kc_proto_conn pc;
	struct kc_buf in, out;
	size_t req_len; /* the datagram's size: a malformed one gets no larger reply */
	bool in_run, resumed;
	struct kc_udp_wait *prev, *next;
};

#define UDP_WAIT_MAX 4096 /* datagrams waiting at once, per worker */

static const char udp_partial[] = "CLIENT_ERROR incomplete request in datagram\r\n";

/* An error about the datagram itself (its frame, an incomplete request) is sent only when it
 * is no larger than the datagram: a forged source gets nothing amplified. */
static bool udp_error_fits(size_t req_len, size_t msg_len)
{
	return KC_UDP_HDR + msg_len <= req_len;
}

static void udp_wait_release(struct kc_udp_wait *u)
{
	kc_pend_free(u->pc.pend);
	kc_buf_free(&u->in);
	kc_buf_free(&u->out);
	free(u);
}

static void udp_wait_free(struct kc_udp_wait *u)
{
	struct kc_worker *w = u->w;

	if (u->prev)
		u->prev->next = u->next;
	else
		w->udp_waits = u->next;
	if (u->next)
		u->next->prev = u->prev;
	w->udp_waiting--;
	udp_wait_release(u);
}

static void udp_drop_all(struct kc_worker *w)
{
	struct kc_udp_wait *u = w->udp_waits, *next;

	w->udp_waits = NULL;
	w->udp_waiting = 0;
	for (; u; u = next) {
		next = u->next;
		udp_wait_release(u);
	}
	kc_pend_free(w->udp_pend);
	w->udp_pend = NULL;
}

static void udp_wait_resume(void *arg);

/* Runs the waits and the rest of the datagram until it waits again or is answered. */
static void udp_wait_step(struct kc_udp_wait *u)
{
	for (;;) {
		if (u->pc.wait) {
			u->in_run = true;
			u->resumed = false;
			kc_pend_run(u->pc.pend, u->pc.wait, &u->out, u->pc.reply_mark,
				    udp_wait_resume, u);
			u->in_run = false;
			if (!u->resumed)
				return; /* its callback goes on */
		}
		size_t used = kc_proto_process(&u->pc, kc_buf_head(&u->in), kc_buf_avail(&u->in),
					       &u->out, SIZE_MAX);

		kc_buf_consume(&u->in, used);
		if (u->pc.wait)
			continue;
		if (kc_buf_avail(&u->in) && !u->pc.close && !u->pc.swallow &&
		    udp_error_fits(u->req_len, sizeof(udp_partial) - 1))
			kc_buf_append(&u->out, udp_partial, sizeof(udp_partial) - 1);
		if (u->out.len)
			udp_reply(u->w, u->fd, u->hdr, &u->peer, u->plen, &u->out);
		udp_wait_free(u);
		return;
	}
}

static void udp_wait_resume(void *arg)
{
	struct kc_udp_wait *u = arg;

	u->pc.wait = KC_WAIT_NONE;
	if (u->in_run) {
		u->resumed = true;
		return;
	}
	udp_wait_step(u);
}

/* The protocol stopped for the lower tiers: keeps the datagram and waits. False if it cannot
 * (too many waiting, no memory): the caller answers with an error. */
static bool udp_wait_start(struct kc_worker *w, int fd, const uint8_t *pkt, size_t n, size_t used,
			   const struct sockaddr_storage *peer, socklen_t plen,
			   struct kc_proto_conn *pc)
{
	struct kc_udp_wait *u;

	if (w->udp_waiting >= UDP_WAIT_MAX || !(u = calloc(1, sizeof(*u))))
		return false;
	if (kc_buf_append(&u->in, pkt + KC_UDP_HDR + used, n - KC_UDP_HDR - used) ||
	    kc_buf_append(&u->out, w->udp_out.data, w->udp_out.len)) {
		kc_buf_free(&u->in);
		kc_buf_free(&u->out);
		free(u);
		return false;
	}
	u->w = w;
	u->fd = fd;
	u->req_len = n;
	memcpy(u->hdr, pkt, KC_UDP_HDR);
	u->peer = *peer;
	u->plen = plen;
	u->pc = *pc;
	w->udp_pend = NULL; /* the datagram owns it now */
	u->next = w->udp_waits;
	if (w->udp_waits)
		w->udp_waits->prev = u;
	w->udp_waits = u;
	w->udp_waiting++;
	udp_wait_step(u);
	return true;
}

static void udp_bad_frame(struct kc_worker *w)
{
	atomic_fetch_add_explicit(&w->stats->udp_bad_frames, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->stats->udp_refused[KC_UDP_REFUSED_FRAME], 1,
				  memory_order_relaxed);
}

void kc_udp_on_read(evutil_socket_t fd, short what, void *arg)
{
	static const char multi[] = "SERVER_ERROR multi-packet request not supported\r\n";
	static const char busy[] = "SERVER_ERROR too many requests waiting on lower tiers\r\n";
	struct kc_worker *w = arg;
	uint8_t pkt[65536];

	(void)what;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&peer, &plen);

		if (n < 0)
			return; /* EAGAIN, or an error the next datagram will show again */
		atomic_fetch_add_explicit(&w->stats->bytes_read, (uint64_t)n, memory_order_relaxed);
		if (n < KC_UDP_HDR) {
			udp_bad_frame(w);
			continue; /* no header to answer to */
		}
		w->udp_out.len = w->udp_out.off = 0;
		if (pkt[2] != 0 || pkt[3] != 0 || pkt[4] != 0 || pkt[5] != 1) {
			udp_bad_frame(w);
			if (udp_error_fits((size_t)n, sizeof(multi) - 1))
				kc_buf_append(&w->udp_out, multi, sizeof(multi) - 1);
		} else {
			struct kc_proto_conn pc = {
			    .env = w->env, .stats = w->stats, .proto = KC_PROTO_UDP};
			size_t body = (size_t)n - KC_UDP_HDR;

			if (w->tiers && !w->udp_pend)
				w->udp_pend = kc_pend_new(w->tiers, w->id);
			pc.pend = w->udp_pend;
			size_t used = kc_proto_process(&pc, (char *)pkt + KC_UDP_HDR, body,
						       &w->udp_out, SIZE_MAX);

			if (pc.wait) {
				if (udp_wait_start(w, fd, pkt, (size_t)n, used, &peer, plen, &pc))
					continue;
				kc_pend_free(w->udp_pend); /* with what it recorded */
				w->udp_pend = NULL;
				w->udp_out.len = 0;
				kc_buf_append(&w->udp_out, busy, sizeof(busy) - 1);
			} else if (used < body && !pc.close && !pc.swallow &&
				   udp_error_fits((size_t)n, sizeof(udp_partial) - 1)) {
				kc_buf_append(&w->udp_out, udp_partial, sizeof(udp_partial) - 1);
			}
		}
		if (w->udp_out.len)
			udp_reply(w, fd, pkt, &peer, plen, &w->udp_out);
		kc_buf_shrink(&w->udp_out, KEEP_BUF);
	}
}
