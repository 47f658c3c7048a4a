/* bench_xdp.c: kcache-bench's in-kernel flood (--flood-xdp, see bench.h).
 *
 * Why: bench/policy-drop.sh needs a source that sends faster than the droppers it compares can
 * drop, from inside a network namespace, on a 2-core host. A UDP socket costs the sender the
 * whole output path (about a microsecond a datagram here), more than most droppers; and
 * xdp-trafficgen (xdp-tools 1.3.1) does not start on Linux 6.18: it probes a tracepoint,
 * xdp_redirect_map_err, that the kernel no longer has.
 *
 * So the frames are made the way xdp-trafficgen makes them: BPF_PROG_TEST_RUN in live-frames
 * mode (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18) runs bpf/bench_txgen.bpf.c over copies of one
 * frame, and the program redirects each out of the interface that holds the thread's local
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
 */
#include "bench.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_txgen.skel.h"

#define FRAME_HDR   8
#define BATCH_MAX   256		 /* the kernel's most frames per live-frames batch */
#define REPEAT_MAX  (1u << 23)	 /* frames per BPF_PROG_TEST_RUN call, at most */
#define CALL_CPU_NS 100000000ULL /* CPU time a call is sized to take */
#define MAX_WAIT_NS 50000000ULL

/* Builds the thread's frame into out; sets *ifindex. Returns its length or a negative errno. */
static int frame_build(struct kb_thread *t, int *ifindex, char *out)
{
	const struct kb_cfg *cfg = t->cfg;
	char hdr[FRAME_HDR] = {0, 0, 0, 0, 0, 1, 0, 0}; /* id, sequence 0 of 1 datagram */
	char req[4 + KB_KEY_MAX + 2];
	struct kb_raw raw = {.fd = -1};
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
	rc = kb_raw_open(&raw, fd, cfg, t->err, sizeof(t->err));
	close(fd);
	if (rc)
		return rc;
	hdr[0] = (char)(t->id >> 8);
	hdr[1] = (char)t->id;
	n = kb_req_render(&cfg->ks, KB_GET, key, req);
	n = kb_raw_frame(&raw, hdr, FRAME_HDR, req, n, out);
	*ifindex = raw.ifindex;
	kb_raw_close(&raw);
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

/* The program all threads share (see the file comment); gen_lock guards these three. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bench_txgen_bpf *gen_skel;
static unsigned gen_users;

/* Loads the shared program (redirecting to ifindex) or takes another reference to it. Returns
 * its fd, or a negative errno with a message in err. */
static int gen_get(int ifindex, char *err, size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&gen_lock);
	if (!gen_skel) {
		gen_skel = bench_txgen_bpf__open();
		if (!gen_skel) {
			rc = -errno;
			snprintf(err, errlen, "--flood-xdp: open bench_txgen: %s", strerror(-rc));
			goto out;
		}
		gen_skel->rodata->kb_ifindex = (__u32)ifindex;
		rc = bench_txgen_bpf__load(gen_skel);
		if (rc) {
			snprintf(err, errlen, "--flood-xdp: load bench_txgen: %s (root?)",
				 strerror(-rc));
			bench_txgen_bpf__destroy(gen_skel);
			gen_skel = NULL;
			goto out;
		}
	} else if (gen_skel->rodata->kb_ifindex != (__u32)ifindex) {
		snprintf(err, errlen, "--flood-xdp: threads would leave by different interfaces");
		rc = -EINVAL;
		goto out;
	}
	gen_users++;
	rc = bpf_program__fd(gen_skel->progs.kb_txgen);
out:
	pthread_mutex_unlock(&gen_lock);
	return rc;
}

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

int kb_xdp_flood(struct kb_thread *t)
{
	const struct kb_cfg *cfg = t->cfg;
	uint64_t mstart = t->start_ns + cfg->warmup_ns, end = mstart + cfg->duration_ns;
	uint64_t interval = 0, sched = t->start_ns, cpu0 = 0, now;
	uint32_t batch = cfg->batch, repeat;
	char frame[KB_FRAME_MAX];
	bool measuring = false;
	int len, fd, ifindex = 0, rc = 0;
	LIBBPF_OPTS(bpf_test_run_opts, o);

	if (batch > BATCH_MAX) {
		snprintf(t->err, sizeof(t->err), "--flood-xdp: --batch is at most %d", BATCH_MAX);
		return -EINVAL;
	}
	len = frame_build(t, &ifindex, frame);
	if (len < 0)
		return len;
	fd = gen_get(ifindex, t->err, sizeof(t->err));
	if (fd < 0)
		return fd;
	o.data_in = frame;
	o.data_size_in = (__u32)len;
	o.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
	o.batch_size = batch;
	repeat = batch; /* the first call: one batch, then sized by its CPU time */
	/* one schedule per thread, as kb_udp_flood */
	if (cfg->rate > 0)
		interval = (uint64_t)(1e9 * (double)cfg->threads / cfg->rate) + 1;
	while (!atomic_load_explicit(cfg->stop, memory_order_relaxed)) {
		uint32_t n = repeat;
		uint64_t c0;

		now = kc_mono_ns();
		if (now >= end)
			break;
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
				struct timespec ts = {
				    0,
				    (long)(sched - now < MAX_WAIT_NS ? sched - now : MAX_WAIT_NS)};

				nanosleep(&ts, NULL);
				continue;
			}
		}
		n = claim(cfg, n);
		if (!n)
			break;
		o.repeat = n;
		c0 = kb_thread_cpu_ns();
		rc = bpf_prog_test_run_opts(fd, &o);
		if (rc == -EINTR) { /* a signal: how much of this call went out is unknown */
			rc = 0;
			break;
		}
		if (rc) {
			snprintf(t->err, sizeof(t->err), "--flood-xdp: BPF_PROG_TEST_RUN: %s",
				 strerror(-rc));
			goto out;
		}
		if (measuring)
			t->st.sent += n;
		if (interval)
			sched += (uint64_t)n * interval;
		if (n == repeat)
			repeat = next_repeat(repeat, kb_thread_cpu_ns() - c0, batch);
	}
	/* not capped at end: the last call's frames count, and it ends when they are out */
	if (measuring) {
		t->st.end_ns = kc_mono_ns();
		t->st.cpu_ns = kb_thread_cpu_ns() - cpu0;
	}
out:
	gen_put();
	return rc;
}
