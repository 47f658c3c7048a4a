/* bench_xdp.c: kcache-bench's in-kernel flood (--flood-xdp, see bench.h).
 *
 * Why: bench/policy-drop.sh needs a source that sends faster than the droppers it compares can
 * drop, from inside a network namespace, on a 2-core host. A UDP socket costs the sender the
 * whole output path (about a microsecond a datagram here), more than most droppers; and
 * xdp-trafficgen (xdp-tools 1.3.1) does not start on Linux 6.18: it probes a tracepoint,
 * xdp_redirect_map_err, that the kernel no longer has.
 *
 * So the frames are made the way xdp-trafficgen makes them: BPF_PROG_TEST_RUN in live-frames
 * mode (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18) runs bench/bpf/bench_txgen.bpf.c over copies of
 * one frame, and the program redirects each out of the interface that holds the thread's local
 * address. On a veth the frame lands in the peer's receive ring as an xdp_frame, without an
 * skb; per batch (cfg->batch frames) the kernel flushes them, and the peer's NAPI poll runs in
 * softirq on the sending CPU as soon as the batch ends. Sender and receiver thus share the
 * sending CPU in turns, and a slow receiver slows the sender instead of overflowing the ring.
 *
 * A call can sleep for tens of milliseconds of its own: BPF_PROG_TEST_RUN adds the program to
 * the kernel's XDP dispatcher for the call, and when no one else holds it there, adding and
 * removing it each wait for an RCU grace period. So every thread runs the same program (loaded
 * once, the only state shared between threads here, under gen_lock), calls are sized to take
 * about 100 ms of CPU, and two threads on one CPU keep their calls overlapping: the program
 * stays in the dispatcher and that CPU stays busy.
 *
 * The frame is a memcached get built by bench_raw.c from a UDP socket connected to the target:
 * the same addresses, ports and checksums a datagram from that socket would carry, so only the
 * on-link target that kcache-bench's safety check accepted is ever addressed. IPv4 only; root.
 *
 * A kernel may refuse live-frames mode (one build answers BPF_PROG_TEST_RUN with the flag with
 * EPERM). So the first thread probes it once, with a program that drops its frame
 * (kb_txgen_probe: nothing goes out), and if the kernel says EPERM, EINVAL or EOPNOTSUPP, or
 * the program does not load, every thread sends the same frame with sendmmsg on the AF_PACKET
 * socket bench_raw.c bound to the same interface (after kb_raw_check). --xdp-gen forces either
 * generator, KCACHE_BENCH_NO_LIVE_FRAMES=1 the packet one; a line on stderr says which runs.
 * On a veth a packet-socket frame is an skb through veth_xmit: the peer takes it (the sender's
 * tx_packets) or drops it (tx_dropped, and sendmmsg fails that frame with ENOBUFS), and with
 * the peer's backlog served in softirq on the sending CPU, sender and receiver again take turns.
 * A refused frame counts as sent, as a live frame the ring refused does (xdp_xmit_errors).
 */
#include "bench.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_txgen.skel.h"

#define FRAME_HDR   8
#define BATCH_MAX   256		 /* the kernel's most frames per live-frames batch */
#define REPEAT_MAX  (1u << 23)	 /* frames per BPF_PROG_TEST_RUN call, at most */
#define CALL_CPU_NS 100000000ULL /* CPU time a call is sized to take */
#define MAX_WAIT_NS 50000000ULL
#ifndef ENOTSUPP
#define ENOTSUPP 524 /* the kernel's own "not supported", which bpf() can return */
#endif

/* Builds the thread's frame into out, with *raw open on the interface it leaves by (the
 * caller closes it). Returns its length or a negative errno with a message in t->err. */
static int frame_build(struct kb_thread *t, struct kb_raw *raw, char *out)
{
	const struct kb_cfg *cfg = t->cfg;
	char hdr[FRAME_HDR] = {0, 0, 0, 0, 0, 1, 0, 0}; /* id, sequence 0 of 1 datagram */
	char req[4 + KB_KEY_MAX + 2];
	uint64_t key = kb_zipf_next(&cfg->zipf, &t->rng);
	size_t n;
	int fd, rc;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen)) {
		rc = -errno;
		snprintf(t->err, sizeof(t->err), "--flood-xdp: udp socket to %s: %s", cfg->target,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = kb_raw_open(raw, fd, cfg, t->err, sizeof(t->err));
	close(fd);
	if (rc)
		return rc;
	hdr[0] = (char)(t->id >> 8);
	hdr[1] = (char)t->id;
	n = kb_req_render(&cfg->ks, KB_GET, key, req);
	n = kb_raw_frame(raw, hdr, FRAME_HDR, req, n, out);
	return (int)n;
}

/* How many frames this call may send under max_requests; 0 when the limit is reached. */
static uint32_t claim(const struct kb_cfg *cfg, uint32_t want)
{
	uint64_t before;

	if (!cfg->max_requests)
		return want;
	before = atomic_fetch_add_explicit(cfg->issued, want, memory_order_relaxed);
	if (before >= cfg->max_requests) {
		atomic_store(cfg->stop, true);
		return 0;
	}
	return before + want > cfg->max_requests ? (uint32_t)(cfg->max_requests - before) : want;
}

/* The generator and the program all threads share (see the file comment); gen_lock guards
 * these four. gen_mode is chosen by the first thread and stays for the process. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static enum kb_xdp_gen gen_mode = KB_XDP_GEN_AUTO; /* AUTO: not chosen yet */
static struct bench_txgen_bpf *gen_skel;
static unsigned gen_users;
static int gen_ifindex;

/* True for the answers that mean "this kernel does not do live frames". */
static bool live_refused(int rc)
{
	return rc == -EPERM || rc == -EINVAL || rc == -EOPNOTSUPP || rc == -ENOTSUPP;
}

static const char *errname(int rc)
{
	const char *n = strerrorname_np(-rc);

	return n ? n : "?";
}

/* Loads the program (redirecting to ifindex) into gen_skel. Returns 0 or a negative errno with
 * the reason in why. gen_lock held. */
static int live_load(int ifindex, char *why, size_t whylen)
{
	int rc;

	gen_skel = bench_txgen_bpf__open();
	if (!gen_skel) {
		rc = -errno;
		snprintf(why, whylen, "the live-frames program does not open (%s)", errname(rc));
		return rc;
	}
	gen_skel->rodata->kb_ifindex = (__u32)ifindex;
	rc = bench_txgen_bpf__load(gen_skel);
	if (rc) {
		snprintf(why, whylen, "the live-frames program does not load (%s)", errname(rc));
		bench_txgen_bpf__destroy(gen_skel);
		gen_skel = NULL;
	}
	return rc;
}

/* Loads the program and probes live-frames mode with one call of kb_txgen_probe over frame.
 * Returns 0 with gen_skel loaded; -EPERM (a load failure: a kernel without BPF for us, where
 * the packet socket may still work) or a refusal (live_refused()) with the reason in why; or
 * another negative errno with a message in err. gen_lock held. */
static int live_open(int ifindex, const char *frame, int len, char *why, size_t whylen, char *err,
		     size_t errlen)
{
	struct bpf_test_run_opts o = {.sz = sizeof(o),
				      .data_in = frame,
				      .data_size_in = (__u32)len,
				      .repeat = 1,
				      .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
				      .batch_size = 1};
	int rc;

	if (live_load(ifindex, why, whylen))
		return -EPERM;
	rc = bpf_prog_test_run_opts(bpf_program__fd(gen_skel->progs.kb_txgen_probe), &o);
	if (!rc)
		return 0;
	if (live_refused(rc))
		snprintf(why, whylen, "XDP live frames refused by the kernel (%s)", errname(rc));
	else
		snprintf(err, errlen, "--flood-xdp: BPF_PROG_TEST_RUN (probe): %s", strerror(-rc));
	bench_txgen_bpf__destroy(gen_skel);
	gen_skel = NULL;
	return rc;
}

/* Chooses the generator on the first call (printing the notice) and joins it. Sets *live;
 * for live frames, returns the program's fd (a reference, dropped by gen_put()); for the packet
 * socket, 0. On error, a negative errno with a message in err. */
static int gen_get(const struct kb_cfg *cfg, int ifindex, const char *frame, int len, bool *live,
		   char *err, size_t errlen)
{
	char why[128] = "", ifname[IF_NAMESIZE] = "?";
	int rc = 0;

	pthread_mutex_lock(&gen_lock);
	*live = false;
	if (gen_mode == KB_XDP_GEN_AUTO) {
		if_indextoname((unsigned)ifindex, ifname);
		if (cfg->xdp_gen == KB_XDP_GEN_PACKET) {
			gen_mode = KB_XDP_GEN_PACKET;
			fprintf(stderr, "kcache-bench: %s: sending with AF_PACKET on %s\n",
				cfg->xdp_gen_why, ifname);
		} else {
			rc = live_open(ifindex, frame, len, why, sizeof(why), err, errlen);
			if (!rc) {
				gen_mode = KB_XDP_GEN_LIVE;
				gen_ifindex = ifindex;
				fprintf(stderr,
					"kcache-bench: %s: sending with XDP live frames "
					"(BPF_PROG_TEST_RUN) on %s\n",
					cfg->xdp_gen_why ? cfg->xdp_gen_why : "--flood-xdp",
					ifname);
			} else if (live_refused(rc) && cfg->xdp_gen == KB_XDP_GEN_AUTO) {
				gen_mode = KB_XDP_GEN_PACKET;
				rc = 0;
				fprintf(stderr, "kcache-bench: %s; sending with AF_PACKET on %s\n",
					why, ifname);
			} else if (live_refused(rc)) {
				snprintf(err, errlen, "--flood-xdp: %s (%s)", why,
					 cfg->xdp_gen_why);
			}
			if (rc)
				goto out;
		}
	}
	if (gen_mode == KB_XDP_GEN_PACKET)
		goto out;
	if (ifindex != gen_ifindex) {
		snprintf(err, errlen, "--flood-xdp: threads would leave by different interfaces");
		rc = -EINVAL;
		goto out;
	}
	/* the threads before this one have all finished and unloaded it */
	if (!gen_skel && live_load(ifindex, why, sizeof(why))) {
		snprintf(err, errlen, "--flood-xdp: %s", why);
		rc = -EPERM;
		goto out;
	}
	gen_users++;
	*live = true;
	rc = bpf_program__fd(gen_skel->progs.kb_txgen);
out:
	pthread_mutex_unlock(&gen_lock);
	return rc;
}

/* Drops a live-frames thread's reference to the program. */
static void gen_put(void)
{
	pthread_mutex_lock(&gen_lock);
	if (gen_users && !--gen_users) {
		bench_txgen_bpf__destroy(gen_skel);
		gen_skel = NULL;
	}
	pthread_mutex_unlock(&gen_lock);
}

/* Frames for the next call: as many as take CALL_CPU_NS of CPU at the last call's pace, at
 * most 64 times as many as the last call, within [batch, REPEAT_MAX]. */
static uint32_t next_repeat(uint32_t repeat, uint64_t cpu_ns, uint32_t batch)
{
	double r =
	    (double)repeat * (double)CALL_CPU_NS / (double)(cpu_ns > 100000 ? cpu_ns : 100000);

	if (r > 64.0 * repeat)
		r = 64.0 * repeat;
	if (r > REPEAT_MAX)
		r = REPEAT_MAX;
	return r < batch ? batch : (uint32_t)r;
}

/* The packet generator: n copies of the frame in m[0..] (at most cfg->batch) out of fd. A
 * frame the interface refuses (ENOBUFS: the veth peer's queue was full) counts as sent, as a
 * live frame refused by the ring does; a blocking packet socket returns a short count only
 * when the frame after the last one counted failed, so that frame is counted too, and an error
 * other than ENOBUFS shows again on the next call. Returns 0 or a negative errno. */
static int packet_send(int fd, struct mmsghdr *m, uint32_t n)
{
	while (n) {
		int r = sendmmsg(fd, m, n, 0);

		if (r < 0) {
			if (errno != ENOBUFS)
				return -errno;
			r = 1;
		} else if ((uint32_t)r < n) {
			r++;
		}
		n -= (uint32_t)r;
	}
	return 0;
}

/* Sleeps until at, or MAX_WAIT_NS at most. */
static void wait_until(uint64_t at, uint64_t now)
{
	struct timespec ts = {0, (long)(at - now < MAX_WAIT_NS ? at - now : MAX_WAIT_NS)};

	nanosleep(&ts, NULL);
}

int kb_xdp_flood(struct kb_thread *t)
{
	const struct kb_cfg *cfg = t->cfg;
	uint64_t mstart = t->start_ns + cfg->warmup_ns, end = mstart + cfg->duration_ns;
	uint64_t interval = 0, sched = t->start_ns, cpu0 = 0, now;
	uint32_t batch = cfg->batch, repeat;
	char frame[KB_FRAME_MAX];
	struct kb_raw raw = {.fd = -1};
	struct mmsghdr *m = NULL;
	struct iovec iov;
	bool measuring = false, live;
	int len, fd, rc = 0;
	LIBBPF_OPTS(bpf_test_run_opts, o);

	if (batch > BATCH_MAX) {
		snprintf(t->err, sizeof(t->err), "--flood-xdp: --batch is at most %d", BATCH_MAX);
		return -EINVAL;
	}
	len = frame_build(t, &raw, frame);
	if (len < 0) {
		kb_raw_close(&raw);
		return len;
	}
	fd = gen_get(cfg, raw.ifindex, frame, len, &live, t->err, sizeof(t->err));
	if (fd < 0) {
		kb_raw_close(&raw);
		return fd;
	}
	if (live) {
		/* the kernel sends: the packet socket only found the interface */
		kb_raw_close(&raw);
		o.data_in = frame;
		o.data_size_in = (__u32)len;
		o.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
		o.batch_size = batch;
	} else {
		int one = 1;

		rc = kb_raw_check(&raw, cfg, frame, (size_t)len, t->err, sizeof(t->err));
		if (rc)
			goto out;
		/* veth has no qdisc: bypassing it only skips the lookup */
		(void)setsockopt(raw.fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
		m = calloc(batch, sizeof(*m));
		if (!m) {
			snprintf(t->err, sizeof(t->err), "--flood-xdp: out of memory");
			rc = -ENOMEM;
			goto out;
		}
		iov = (struct iovec){frame, (size_t)len};
		for (uint32_t i = 0; i < batch; i++)
			m[i].msg_hdr = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1};
	}
	repeat = batch; /* live: the first call is one batch, then sized by its CPU time */
	/* one schedule per thread, as kb_udp_flood */
	if (cfg->rate > 0)
		interval = (uint64_t)(1e9 * (double)cfg->threads / cfg->rate) + 1;
	while (!atomic_load_explicit(cfg->stop, memory_order_relaxed)) {
		uint32_t n = repeat;
		uint64_t c0;

		now = kc_mono_ns();
		if (now >= end)
			break;
		if (now < t->start_ns) { /* the other threads are starting */
			wait_until(t->start_ns, now);
			continue;
		}
		if (!measuring && now >= mstart) {
			measuring = true;
			t->st.start_ns = now;
			cpu0 = kb_thread_cpu_ns();
		}
		if (interval) {
			uint64_t due = now > sched ? (now - sched) / interval : 0;

			if (due < n)
				n = (uint32_t)due;
			if (!n) {
				wait_until(sched, now);
				continue;
			}
		}
		if (measuring) /* --requests counts measured frames only */
			n = claim(cfg, n);
		if (!n)
			break;
		c0 = kb_thread_cpu_ns();
		if (live) {
			o.repeat = n;
			rc = bpf_prog_test_run_opts(fd, &o);
		} else {
			rc = packet_send(raw.fd, m, n);
		}
		if (rc == -EINTR) { /* a signal: how much of this call went out is unknown */
			rc = 0;
			break;
		}
		if (rc) {
			snprintf(t->err, sizeof(t->err), "--flood-xdp: %s: %s",
				 live ? "BPF_PROG_TEST_RUN" : "sendmmsg on the packet socket",
				 strerror(-rc));
			goto out;
		}
		if (measuring)
			t->st.sent += n;
		if (interval)
			sched += (uint64_t)n * interval;
		if (live && n == repeat)
			repeat = next_repeat(repeat, kb_thread_cpu_ns() - c0, batch);
	}
	/* not capped at end: the last call's frames count, and it ends when they are out */
	if (measuring) {
		t->st.end_ns = kc_mono_ns();
		t->st.cpu_ns = kb_thread_cpu_ns() - cpu0;
	}
out:
	if (live)
		gen_put();
	kb_raw_close(&raw);
	free(m);
	return rc;
}
