/* bench.h: the engine of kcache-bench, a memcached load generator (UDP and TCP, text
 * protocol). Shared by tools/bench/kcache-bench.c (options, safety check, threads, report) and
 * the tools/bench/bench_*.c modules:
 *
 *   bench_gen.c    random numbers, Zipf ranks, the key space (keys, deterministic values),
 *                  the latency histogram
 *   bench_proto.c  request rendering and reply parsing (with verification)
 *   bench_udp.c    UDP: sendmmsg/recvmmsg, requests matched by the frame's request id; flood
 *   bench_tcp.c    TCP: pipelined connections, replies matched in order; prefill
 *   bench_raw.c    UDP requests as padded Ethernet frames (--pad-frames), for XDP on veth
 *   bench_xdp.c    --flood-xdp: frames made in the kernel (BPF_PROG_TEST_RUN live frames),
 *                  or sent through a packet socket where the kernel refuses that mode
 *
 * Nothing here is used by the daemon. Every engine function runs on one bench thread and
 * touches only that thread's struct kb_thread; the configuration is read-only once threads run.
 */
#ifndef KC_BENCH_H
#define KC_BENCH_H

#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/clock.h" /* kc_mono_ns: every timestamp of the engines */

/* --- random numbers and Zipf ranks (bench_gen.c) ------------------------------------------ */

/* xoshiro256**: fast, good enough for load generation, reproducible from a seed. */
struct kb_rng {
	uint64_t s[4];
};

void kb_rng_seed(struct kb_rng *r, uint64_t seed);
uint64_t kb_rng_next(struct kb_rng *r);
/* Uniform in [0, 1). */
double kb_rng_double(struct kb_rng *r);
/* splitmix64's finalizer: a bijective 64-bit mix, used to derive everything from a key index. */
uint64_t kb_mix64(uint64_t x);

/* Zipf over ranks 0..n-1 (rank 0 the most popular) with exponent s, by rejection-inversion
 * (Hörmann and Derflinger 1996): O(1) per sample and no table, for any s >= 0 (0 = uniform). */
struct kb_zipf {
	uint64_t n;
	double s;
	double h_x1, h_n, sval;
};

/* Returns 0, or -EINVAL for n == 0 or s < 0 (or not finite). */
int kb_zipf_init(struct kb_zipf *z, uint64_t n, double s);
uint64_t kb_zipf_next(const struct kb_zipf *z, struct kb_rng *r);

/* --- the key space (bench_gen.c) --------------------------------------------------------- */

#define KB_KEY_MAX 250 /* memcached's limit */

/* N keys; each key's length, bytes, value length, value bytes and flags are functions of its
 * index (and the ranges) alone, so a reader can verify a value without knowing who wrote it. */
struct kb_keyspace {
	uint64_t n;
	unsigned kmin, kmax; /* key length range, bytes */
	uint32_t vmin, vmax; /* value length range, bytes */
	char prefix[16];     /* keys are prefix + decimal index + letters up to the length */
	unsigned prefix_len;
	char *cache; /* kb_keyspace_cache(): every key rendered, kmax bytes apart */
	uint8_t *cache_len;
};

/* Checks the ranges against n (the longest index must fit in kmax). Returns 0 or -EINVAL with
 * a message in err. */
int kb_keyspace_check(const struct kb_keyspace *ks, char *err, size_t errlen);
/* Renders every key once, so that kb_key() is a copy (when they take at most 256 MiB).
 * Returns 0, or -ENOMEM (kb_key() then renders each time). Call before threads start. */
int kb_keyspace_cache(struct kb_keyspace *ks);
void kb_keyspace_free(struct kb_keyspace *ks);
/* Writes key i (no NUL) into out (KB_KEY_MAX bytes); returns its length. */
unsigned kb_key(const struct kb_keyspace *ks, uint64_t i, char *out);
uint32_t kb_value_len(const struct kb_keyspace *ks, uint64_t i);
uint32_t kb_flags(const struct kb_keyspace *ks, uint64_t i);
/* Writes the kb_value_len() bytes of key i's value. */
void kb_value_fill(const struct kb_keyspace *ks, uint64_t i, char *out);
/* True if (flags, data, len) is exactly key i's value. */
bool kb_value_check(const struct kb_keyspace *ks, uint64_t i, uint32_t flags, const char *data,
		    size_t len);

/* --- latency histogram (bench_gen.c) ----------------------------------------------------- */

/* Log-linear: exact below 128 ns, then 64 buckets per power of two (error below 1.6 %). */
#define KB_HIST_SUB_BITS 6
#define KB_HIST_BUCKETS	 ((64 - KB_HIST_SUB_BITS + 1) << KB_HIST_SUB_BITS)

struct kb_hist {
	uint64_t count, max_ns;
	uint64_t b[KB_HIST_BUCKETS];
};

void kb_hist_add(struct kb_hist *h, uint64_t ns);
void kb_hist_merge(struct kb_hist *dst, const struct kb_hist *src);
/* The value at quantile q (0..1) in nanoseconds, the middle of its bucket; 0 when empty. */
uint64_t kb_hist_quantile(const struct kb_hist *h, double q);

/* --- configuration and per-thread state -------------------------------------------------- */

enum kb_proto { KB_UDP, KB_TCP };
enum kb_op { KB_GET, KB_SET };
/* --flood-xdp's generator (--xdp-gen): live frames if the kernel takes them, else AF_PACKET. */
enum kb_xdp_gen { KB_XDP_GEN_AUTO, KB_XDP_GEN_LIVE, KB_XDP_GEN_PACKET };

struct kb_cfg {
	struct sockaddr_storage addr; /* the target: checked by kb_target_parse() */
	socklen_t addrlen;
	char target[64]; /* as given, for messages */
	enum kb_proto proto;
	unsigned threads;
	unsigned conns;	       /* sockets or connections per thread */
	unsigned depth;	       /* most requests in flight per socket/connection */
	unsigned batch;	       /* UDP: datagrams per sendmmsg/recvmmsg */
	uint64_t duration_ns;  /* measured part; 0 = none (prefill only) */
	uint64_t warmup_ns;    /* run before the measured part, not counted */
	uint64_t max_requests; /* stop after this many measured requests in all (0 = no limit) */
	uint64_t timeout_ns;   /* a request without a reply after this long is lost */
	double rate;	       /* open loop: requests/s in all; 0 = closed loop */
	double get_ratio;      /* fraction of gets; the rest are sets */
	struct kb_keyspace ks;
	struct kb_zipf zipf;
	uint64_t seed;
	uint32_t pad_frames; /* UDP: send requests as Ethernet frames of at least this size */
	bool verify;
	bool flood;
	bool flood_xdp;		  /* flood from the kernel (bench_xdp.c); implies flood */
	enum kb_xdp_gen xdp_gen;  /* its generator */
	const char *xdp_gen_why;  /* what chose it when not auto, for the notice */
	_Atomic bool *stop;	  /* set by a signal, the watchdog or the request limit */
	_Atomic uint64_t *issued; /* measured requests issued so far, for max_requests */
};

/* What one thread counted. Merged by kb_stats_merge() for the report. */
struct kb_stats {
	uint64_t sent; /* requests sent (measured) */
	uint64_t done; /* requests answered */
	uint64_t gets, hits, misses;
	uint64_t sets, stored;
	uint64_t lost;	      /* no reply within the timeout, or still unanswered at the end */
	uint64_t errors;      /* error replies, malformed or unexpected replies, socket errors */
	uint64_t verify_fail; /* a value, flags or key that is not what the key space says */
	uint64_t unsent;      /* open loop: requests due but never sent (the client fell behind) */
	uint64_t late;	      /* UDP: replies to requests already counted lost */
	uint64_t replies;     /* flood: datagrams received */
	uint64_t cpu_ns;      /* flood: CPU time of the sending threads in the measured window */
	uint64_t start_ns, end_ns; /* measured window of this thread */
	struct kb_hist hist;
};

void kb_stats_merge(struct kb_stats *dst, const struct kb_stats *src);

struct kb_thread {
	const struct kb_cfg *cfg;
	unsigned id;
	struct kb_rng rng;
	uint64_t start_ns; /* common start: warmup begins here */
	/* prefill: this thread sets keys [pf_first, pf_end) */
	uint64_t pf_first, pf_end;
	struct kb_stats st;
	char err[256]; /* why the engine returned an error */
};

/* --- protocol (bench_proto.c) ------------------------------------------------------------ */

/* Longest request: "set " key " " flags " 0 " len "\r\n" value "\r\n". */
size_t kb_req_max(const struct kb_keyspace *ks);
/* Renders a get or a set of key i into out (kb_req_max() bytes); returns its length. */
size_t kb_req_render(const struct kb_keyspace *ks, enum kb_op op, uint64_t i, char *out);

enum kb_outcome { KB_HIT, KB_MISS, KB_STORED, KB_ERROR, KB_VERIFY_FAIL };

/* Parses the reply to one request (op on key i) at the start of buf[0..len). Returns the bytes
 * it takes, 0 if it is not complete yet, or -1 if the bytes cannot be a reply (the stream is
 * out of step). *out says what the reply was; with verify, a value that is not key i's is
 * KB_VERIFY_FAIL (a VALUE for another key always is). */
ssize_t kb_reply_parse(const struct kb_keyspace *ks, enum kb_op op, uint64_t i, bool verify,
		       const char *buf, size_t len, enum kb_outcome *out);
/* Counts one outcome into st (gets/hits/misses/sets/stored/errors/verify_fail). */
void kb_count(struct kb_stats *st, enum kb_op op, enum kb_outcome o);

/* --- padded frames (bench_raw.c) -------------------------------------------------------- */

#define KB_FRAME_MAX 1514 /* Ethernet frame of a 1500-byte MTU, without FCS */
#define KB_RAW_HLEN  42	  /* Ethernet + IPv4 + UDP headers */

/* Sends a connected UDP socket's datagrams as Ethernet frames on the interface that holds its
 * local address, padded with a trailer to at least pad bytes. */
struct kb_raw {
	int fd;	     /* AF_PACKET, bound to the interface */
	int ifindex; /* that interface */
	uint32_t pad;
	uint16_t ip_id;
	uint32_t pseudo; /* checksum of the UDP pseudo-header's addresses and protocol */
	uint8_t hdr[KB_RAW_HLEN];
};

/* Prepares r for udp_fd (connected to cfg->addr, IPv4, on-link). Returns 0 or a negative errno
 * with a message in err. */
int kb_raw_open(struct kb_raw *r, int udp_fd, const struct kb_cfg *cfg, char *err, size_t errlen);
/* Writes the frame carrying p1 then p2 as UDP payload into out (max(pad, 42 + n1 + n2) bytes,
 * at most KB_FRAME_MAX); returns its length. */
size_t kb_raw_frame(struct kb_raw *r, const void *p1, size_t n1, const void *p2, size_t n2,
		    char *out);
void kb_raw_close(struct kb_raw *r);
/* True if a is in 127.0.0.0/8 or 198.18.0.0/15, the only IPv4 destinations kcache-bench sends
 * to (see kcache-bench.c). */
bool kb_v4_allowed(const struct in_addr *a);
/* The safety check before raw frames go out of r->fd: frame[0..len) is an IPv4 frame from
 * r's interface to cfg's target (an address kb_v4_allowed() accepts), and r->fd is bound to
 * r->ifindex, the interface holding the local address the kernel chose towards that target.
 * Returns 0, or -EPERM with a message in err. */
int kb_raw_check(const struct kb_raw *r, const struct kb_cfg *cfg, const void *frame, size_t len,
		 char *err, size_t errlen);

/* --- engines ----------------------------------------------------------------------------- */

/* CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID), ns. */
uint64_t kb_thread_cpu_ns(void);
/* Chooses the next request: a Zipf key, get or set by the ratio. */
enum kb_op kb_pick(struct kb_thread *t, uint64_t *key);
/* Claims one measured request against max_requests. False when the limit is reached. */
bool kb_claim(struct kb_thread *t);

/* Each returns 0, or a negative errno with a message in t->err. */
int kb_udp_run(struct kb_thread *t);
int kb_udp_flood(struct kb_thread *t);
/* --flood-xdp: frames sent by BPF_PROG_TEST_RUN in live-frames mode, or by an AF_PACKET socket
 * when cfg->xdp_gen says so or the kernel refuses that mode (root, IPv4, on-link). The first
 * thread chooses for all and prints one line on stderr saying which generator runs and why. */
int kb_xdp_flood(struct kb_thread *t);
int kb_tcp_run(struct kb_thread *t);
/* Sets keys [t->pf_first, t->pf_end) over TCP, cfg->depth in flight per connection. */
int kb_tcp_prefill(struct kb_thread *t, uint64_t deadline_ns);

#endif
