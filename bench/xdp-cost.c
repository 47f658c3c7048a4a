/* xdp-cost.c: nanoseconds per packet of the kernel tier's XDP program (bpf/cache.bpf.c) next to
 * the bench ceiling's (bench/bpf/bench_ceiling.bpf.c), by BPF_PROG_TEST_RUN, on the workload of
 * bench/udp-get.sh: NKEYS resident keys of 32 bytes with 100-500-byte values, get requests for
 * them drawn Zipf ZIPF (so most slots are cold in cache, as under the bench), frames padded to
 * 640 bytes. Then one hot key (everything in cache) and a wrong-port frame (parse, XDP_PASS).
 * Run by bench/xdp-cost.sh; needs root. Exits 1 if a hit did not come back as XDP_TX.
 *
 *   xdp-cost [NKEYS [NREQ [ZIPF]]]        defaults 100000 200000 0.99
 *   JIT=FILE xdp-cost ...                 also write kc_cache's JIT image to FILE, to map
 *                                         perf's bpf_prog_..._kc_cache+0xOFF samples to
 *                                         instructions (objdump -D -b binary -m i386:x86-64)
 *
 * Each request is one test run with repeat 1: the program rewrites its frame, so a repeat
 * would run it on its own reply. The kernel's duration includes its own timer reads; the
 * wrong-port row shows that floor. The ceiling answers the same frames.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kcache/cache.h> /* before the skeleton, which uses struct kc_kconfig */
#include "cache.skel.h"
#include "bench_ceiling.skel.h"
#include "kernel/cache_entry.h"
#include "pkt.h"

#define FRAME	 2048
#define PAD	 640
#define HOT_REPS 2000
#define PORT	 11211

static unsigned long long rs = 0x9e3779b97f4a7c15ULL;

static unsigned long long rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static void key_of(char *k, unsigned long i)
{
	snprintf(k, 33, "key:%028lu", i);
}

static size_t req_frame(uint8_t *buf, unsigned long key, uint16_t port)
{
	struct pkt_spec s = {0};
	char text[64];

	memcpy(s.dst_mac, "\x02\0\0\0\0\1", 6);
	memcpy(s.src_mac, "\x02\0\0\0\0\2", 6);
	memcpy(s.src_ip, "\xc6\x12\x03\x02", 4); /* 198.18.3.2 -> 198.18.3.1 */
	memcpy(s.dst_ip, "\xc6\x12\x03\x01", 4);
	s.sport = 40000;
	s.dport = port;
	s.pad_to = PAD;
	memcpy(text, "get ", 4);
	key_of(text + 4, key);
	memcpy(text + 36, "\r\n", 2);
	return pkt_build_mc(buf, FRAME, &s, 7, 0, 1, text, 38);
}

/* Runs every frame once through prog_fd; returns the mean ns, counts XDP_TX in *tx. */
static double run_all(int prog_fd, const uint8_t *frames, const size_t *lens, int n, int *tx)
{
	static uint8_t out[FRAME];
	double sum = 0;

	*tx = 0;
	for (int i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frames + (size_t)i * FRAME,
			    .data_size_in = (__u32)lens[i], .data_out = out,
			    .data_size_out = sizeof(out), .repeat = 1);

		if (bpf_prog_test_run_opts(prog_fd, &o)) {
			perror("xdp-cost: BPF_PROG_TEST_RUN");
			exit(1);
		}
		*tx += o.retval == XDP_TX;
		sum += o.duration;
	}
	return sum / n;
}

static void dump_jit(int prog_fd, const char *path)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info), n;
	unsigned char *img;
	FILE *f;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return;
	n = info.jited_prog_len;
	img = malloc(n);
	if (!img)
		return;
	memset(&info, 0, sizeof(info));
	info.jited_prog_len = n;
	info.jited_prog_insns = (unsigned long)img;
	len = sizeof(info);
	f = fopen(path, "w");
	if (f && !bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		fwrite(img, 1, n, f);
	if (f)
		fclose(f);
	free(img);
}

/* kc_index/kc_slots as the daemon fills them: key i in slot i. A key whose kc_index bucket is
 * full stays out (as the daemon refuses it), marked in refused[]. */
static int install_keys(struct cache_bpf *skel, unsigned long nkeys, __u32 mask,
			unsigned char *refused)
{
	int idx = bpf_map__fd(skel->maps.kc_index), slots = bpf_map__fd(skel->maps.kc_slots);
	static struct kc_kentry e;
	char val[512], key[40];
	__u32 zero = 0;

	for (unsigned long i = 0; i < nkeys; i++) {
		size_t vlen = 100 + rnd() % 401;
		__u32 slot = (__u32)i;
		__u64 h;
		int err;

		for (size_t j = 0; j < vlen; j++)
			val[j] = (char)('a' + (i + j) % 26);
		key_of(key, i);
		h = kc_key_hash(key, 32);
		if (kc_entry_render(&e, key, 32, 0, val, vlen, i + 1, 0, i + 1) ||
		    bpf_map_update_elem(slots, &slot, &e, BPF_ANY))
			return -1;
		err = kc_index_put(idx, mask, h, slot, i + 1, 0);
		if (err == -ENOSPC || err == -EEXIST)
			refused[i] = 1;
		else if (err)
			return -1;
	}
	{
		struct kc_heartbeat b = {.mono_ns = kc_mono_ns()};

		return bpf_map_update_elem(bpf_map__fd(skel->maps.kc_heartbeat), &zero, &b,
					   BPF_ANY);
	}
}

int main(int argc, char **argv)
{
	unsigned long nkeys = argc > 1 ? strtoul(argv[1], NULL, 0) : 100000;
	int nreq = argc > 2 ? atoi(argv[2]) : 200000, tx, ctx_tx, cfd, bfd;
	double zipf = argc > 3 ? atof(argv[3]) : 0.99, *cdf, tot = 0;
	struct bench_ceiling_bpf *ceil;
	struct cache_bpf *skel;
	static uint8_t one[FRAME * 64];
	size_t *lens, l[64];
	uint8_t *frames;
	__u32 ncpu = (__u32)libbpf_num_possible_cpus(), mask, nref = 0;
	unsigned char *refused;

	if (nkeys < 1 || nkeys > 1000000 || nreq < 1) {
		fprintf(stderr, "usage: xdp-cost [NKEYS (1..1000000) [NREQ [ZIPF]]]\n");
		return 2;
	}
	skel = cache_bpf__open();
	if (!skel)
		return 1;
	skel->rodata->kc_cfg.port = PORT;
	skel->rodata->kc_cfg.mtu = KC_MTU_DEFAULT;
	skel->rodata->kc_cfg.max_value = KC_MAX_VALUE_DEFAULT;
	skel->rodata->kc_cfg.hb_window_ns = 3600 * 1000000000ULL; /* one beat for the run */
	skel->rodata->kc_cfg.entries = (__u32)nkeys;
	skel->rodata->kc_cfg.ncpu = ncpu;
	mask = kc_index_buckets((__u32)nkeys) - 1;
	skel->rodata->kc_cfg.index_mask = mask;
	bpf_map__set_max_entries(skel->maps.kc_index, mask + 1);
	bpf_map__set_max_entries(skel->maps.kc_slots, (__u32)nkeys);
	bpf_map__set_max_entries(skel->maps.kc_hits, (__u32)nkeys * ncpu);
	ceil = bench_ceiling_bpf__open_and_load();
	if (cache_bpf__load(skel) || !ceil) {
		fprintf(stderr, "xdp-cost: cannot load the programs (root?)\n");
		return 1;
	}
	cfd = bpf_program__fd(skel->progs.kc_cache);
	bfd = bpf_program__fd(ceil->progs.kb_ceiling);
	if (getenv("JIT"))
		dump_jit(cfd, getenv("JIT"));
	refused = calloc(nkeys, 1);
	if (!refused || install_keys(skel, nkeys, mask, refused)) {
		perror("xdp-cost: install");
		return 1;
	}

	cdf = malloc(nkeys * sizeof(*cdf));
	frames = malloc((size_t)nreq * FRAME);
	lens = malloc((size_t)nreq * sizeof(*lens));
	if (!cdf || !frames || !lens)
		return 1;
	for (unsigned long i = 0; i < nkeys; i++) {
		cdf[i] = tot += 1.0 / pow((double)(i + 1), zipf);
		nref += refused[i];
	}
	for (int i = 0; i < nreq; i++) {
		double u = (double)(rnd() >> 11) / 9007199254740992.0 * tot;
		unsigned long lo = 0, hi = nkeys - 1;

		while (lo < hi) {
			unsigned long m = (lo + hi) / 2;

			if (cdf[m] < u)
				lo = m + 1;
			else
				hi = m;
		}
		/* rank -> a key scattered over the slots, as the daemon's install order is; a key
		 * refused for a full bucket is asked as the next resident one */
		lo = (lo * 7919) % nkeys;
		while (refused[lo])
			lo = (lo + 1) % nkeys;
		lens[i] = req_frame(frames + (size_t)i * FRAME, lo, PORT);
	}
	printf("xdp-cost: %lu resident keys of 32 B, values 100-500 B, %d gets Zipf %.2f, frames "
	       "of %d B; ns per packet (BPF_PROG_TEST_RUN); %u keys refused for a full kc_index "
	       "bucket\n",
	       nkeys, nreq, zipf, PAD, nref);
	for (int pass = 1; pass <= 2; pass++) {
		double c = run_all(cfd, frames, lens, nreq, &tx);
		double b = run_all(bfd, frames, lens, nreq, &ctx_tx);

		printf("  pass %d: kc_cache %4.0f  ceiling %4.0f  (XDP_TX %d and %d of %d)\n", pass,
		       c, b, tx, ctx_tx, nreq);
		if (tx != nreq)
			return 1;
	}
	for (int i = 0; i < 64; i++)
		l[i] = req_frame(one + (size_t)i * FRAME, 0, PORT);
	{
		double c = 0, b = 0;

		for (int r = 0; r < HOT_REPS; r++) {
			c += run_all(cfd, one, l, 64, &tx);
			b += run_all(bfd, one, l, 64, &ctx_tx);
		}
		printf("  one hot key: kc_cache %4.0f  ceiling %4.0f\n", c / HOT_REPS,
		       b / HOT_REPS);
	}
	for (int i = 0; i < 64; i++)
		l[i] = req_frame(one + (size_t)i * FRAME, 0, PORT + 1);
	printf("  wrong port (parse, XDP_PASS): kc_cache %4.0f\n", run_all(cfd, one, l, 64, &tx));
	return 0;
}
