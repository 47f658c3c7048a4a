/* kcache-bench: a memcached load generator for kcache's benches and tests.
 *
 * This file holds the command line, the target safety check, the threads, the watchdog and the
 * report. The engines live in tools/bench/bench_*.c (contract: tools/bench/bench.h).
 *
 * Safety: the tool only ever sends to loopback (127.0.0.0/8, ::1) or to the benchmarking range
 * 198.18.0.0/15 (RFC 2544), which kcache's scripts assign to the network namespaces and veth
 * pairs they create. Any other destination is refused before a socket is opened. Names are not
 * resolved: the target must be a numeric address. The frame --flood-xdp's packet sender sends
 * is checked again before it goes out (kb_raw_check).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "core/num.h"

#define EXIT_FAIL	   1 /* the bench ran and found a problem (with --verify), or could not run */
#define EXIT_USAGE	   2 /* bad options or a refused target */
#define MAX_THREADS	   256
#define MAX_CONNS	   4096
#define MAX_DEPTH	   32768
#define MAX_BATCH	   1024
#define MAX_DURATION	   3600.0
#define GRACE_NS	   (5 * 1000000000ULL) /* watchdog: after the expected end and the timeout */
#define PREFILL_TIMEOUT_NS (5 * 1000000000ULL) /* least per-request timeout of the prefill */

static _Atomic bool stop_flag;
static _Atomic uint64_t issued;
static bool quiet;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, true);
}

/* The text is laid out as it prints. */
// clang-format off
static void usage(FILE *f)
{
	fputs(
"usage: kcache-bench [options]\n"
"A memcached load generator (text protocol, UDP or TCP) for kcache's benches and tests.\n"
"\n"
"Target (numeric only; anything but 127.0.0.0/8, ::1 and 198.18.0.0/15 is refused):\n"
"  -s, --server ADDR:PORT    server, e.g. 198.18.0.1:11211 or [::1]:11211 (127.0.0.1:11211)\n"
"  -p, --proto udp|tcp       protocol of the run (udp); --udp and --tcp are short for it\n"
"\n"
"Load:\n"
"  -t, --threads N           client threads (1)\n"
"  -c, --conns N             UDP sockets or TCP connections per thread (4)\n"
"  -d, --depth N             most requests in flight per socket/connection (32); UDP requests\n"
"                            are matched to replies by the frame's 16-bit request id, TCP\n"
"                            replies by order (pipelining)\n"
"  -b, --batch N             UDP datagrams per sendmmsg/recvmmsg call (32)\n"
"  -D, --duration SECS       measured time, at most 3600 (10); 0 with --prefill: prefill only\n"
"  -w, --warmup SECS         load before the measured time, not counted (0)\n"
"  -n, --requests N          stop after N measured requests in all (no limit)\n"
"  -r, --rate N              open loop: N requests/s in all, each socket on a fixed schedule;\n"
"                            latency counts from the intended send time, so queueing is never\n"
"                            hidden (no coordinated omission). Without it: closed loop, as\n"
"                            fast as replies come back (max throughput)\n"
"  -T, --timeout-ms MS       a request unanswered after MS is lost (250); over TCP the\n"
"                            connection is then reopened\n"
"      --flood               UDP: send get datagrams as fast as possible (or at --rate) and\n"
"                            never wait for replies; reports datagrams sent/s and replies seen\n"
"      --flood-xdp           a --flood whose frames the kernel makes: BPF_PROG_TEST_RUN in\n"
"                            live-frames mode redirects copies of one get frame out of the\n"
"                            interface facing the target (root; IPv4, on-link target; a veth\n"
"                            peer needs XDP or GRO on to take them). --batch frames (at most\n"
"                            256) per kernel batch; the receiver's softirq runs on the sending\n"
"                            CPU after each batch. Replies are not read\n"
"      --xdp-gen GEN         --flood-xdp's generator: live (frames as above), packet (the\n"
"                            same frames sent with sendmmsg on an AF_PACKET socket bound to\n"
"                            that interface: one skb each, through veth_xmit) or auto (the\n"
"                            default): live if one probe call shows the kernel takes live\n"
"                            frames (it may refuse: EPERM, EINVAL, EOPNOTSUPP), else packet.\n"
"                            A line on stderr says which runs and why.\n"
"                            KCACHE_BENCH_NO_LIVE_FRAMES=1 in the environment makes auto packet\n"
"      --pad-frames N        UDP over IPv4 to an on-link target: send each request as an\n"
"                            Ethernet frame of at least N bytes (64-1514) through a packet\n"
"                            socket, the request followed by a trailer the stack trims. On a\n"
"                            veth, XDP gets a frame only as large as the request, too small to\n"
"                            grow into a long reply; N above the longest reply frame gives it\n"
"                            the room a NIC would. Replies arrive on the UDP sockets as usual\n"
"\n"
"Keys and values (everything is a function of the key index: no state is needed to verify):\n"
"  -k, --keys N              number of keys (100000)\n"
"  -z, --zipf S              Zipf exponent of key popularity, 0 = uniform (0.99)\n"
"  -K, --key-size MIN[-MAX]  key length in bytes (32); keys are PREFIX, the index in decimal,\n"
"                            then letters\n"
"  -V, --value-size MIN[-MAX] value length in bytes (100-500)\n"
"      --key-prefix STR      key prefix, at most 15 bytes (kb:)\n"
"  -g, --get-ratio F         fraction of gets, the rest are sets (0.9)\n"
"  -S, --seed N              seed of the request sequence (1); same seed, same requests\n"
"      --prefill             first set all N keys over TCP (same address and port), then run\n"
"      --prefill-timeout SECS  give up on the prefill after SECS (120)\n"
"      --verify              check every value (and flags) returned against the key space;\n"
"                            the exit status is then 1 on any error or verification failure\n"
"\n"
"Other:\n"
"      --cpus LIST           pin thread i to the i-th CPU of LIST (e.g. 0,1)\n"
"  -q, --quiet               print only the result line (and the prefill line)\n"
"  -h, --help                this text\n"
"\n"
"Output: a few human lines, then one line to parse (after a --prefill, a line\n"
"  prefill: proto=tcp keys=N stored=N errors=N lost=N secs=S sets_per_s=R comes first):\n"
"  result: proto=P mode=closed|open|flood rps=R p50_us=X p99_us=X p999_us=X hits=N misses=N\n"
"          lost=N errors=N verify_fail=N sets=N unsent=N late=N sent=N replies=N secs=S\n"
"          cpu_s=S\n"
"rps counts answered requests (flood: datagrams sent) per second of the measured time. cpu_s\n"
"is the CPU time the sending threads used in it (floods only; for --flood-xdp it includes the\n"
"receive work the kernel did in their context). lost\n"
"counts requests without a reply in time; unsent, open-loop requests that fell due but never\n"
"went out because the window was full; late, UDP replies that came after their request was\n"
"counted lost. Every run stops by itself: after --duration (+ warmup, + timeout to drain), or\n"
"--requests, or a signal; a watchdog ends the process if a thread does not.\n"
"Exit status: 0 ran; 1 failed (or, with --verify, errors or verification failures); 2 usage.\n",
	      f);
}
// clang-format on

/* --- the target ----------------------------------------------------------------------------- */

/* Parses ADDR:PORT or [ADDR6]:PORT (numeric) and refuses destinations outside loopback and
 * 198.18.0.0/15. Returns 0, or -EINVAL / -EPERM with a message in err. */
static int target_parse(const char *s, struct kb_cfg *cfg, char *err, size_t errlen)
{
	char host[64];
	const char *colon, *h = s;
	size_t hl;
	uint64_t port;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':') {
			snprintf(err, errlen, "server '%s': expected [ADDR6]:PORT", s);
			return -EINVAL;
		}
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon) {
			snprintf(err, errlen, "server '%s': expected ADDR:PORT (IPv6 in brackets)",
				 s);
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host)) {
		snprintf(err, errlen, "server '%s': no address", s);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	if (kc_parse_u64(colon + 1, 65535, &port) || port == 0) {
		snprintf(err, errlen, "server '%s': port must be 1..65535", s);
		return -EINVAL;
	}
	memset(&cfg->addr, 0, sizeof(cfg->addr));
	if (s[0] != '[') {
		struct sockaddr_in *a = (struct sockaddr_in *)&cfg->addr;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
			snprintf(err, errlen, "server '%s': '%s' is not a numeric IPv4 address", s,
				 host);
			return -EINVAL;
		}
		if (!kb_v4_allowed(&a->sin_addr))
			goto refuse;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		cfg->addrlen = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&cfg->addr;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
			snprintf(err, errlen, "server '%s': '%s' is not a numeric IPv6 address", s,
				 host);
			return -EINVAL;
		}
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			struct in_addr v4;

			memcpy(&v4, &a->sin6_addr.s6_addr[12], 4);
			if (!kb_v4_allowed(&v4))
				goto refuse;
		} else if (!IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) {
			goto refuse;
		}
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		cfg->addrlen = sizeof(*a);
	}
	snprintf(cfg->target, sizeof(cfg->target), "%s", s);
	return 0;
refuse:
	snprintf(err, errlen,
		 "refusing to send to %s: only 127.0.0.0/8, ::1 and 198.18.0.0/15 (addresses a "
		 "bench creates for itself) may be targeted",
		 host);
	return -EPERM;
}

/* --- option parsing -------------------------------------------------------------------------- */

static int parse_u64_opt(const char *name, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t n;

	if (kc_parse_u64(v, max, &n) || n < min) {
		fprintf(stderr,
			"kcache-bench: --%s: expected an integer from %llu to %llu, got '%s'\n",
			name, (unsigned long long)min, (unsigned long long)max, v);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

static int parse_double_opt(const char *name, const char *v, double min, double max, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (!*v || *end || errno || !(d >= min && d <= max)) {
		fprintf(stderr, "kcache-bench: --%s: expected a number from %g to %g, got '%s'\n",
			name, min, max, v);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

/* MIN or MIN-MAX */
static int parse_range(const char *name, const char *v, uint64_t max, uint64_t *lo, uint64_t *hi)
{
	char buf[64];
	char *dash;

	if (strlen(v) >= sizeof(buf))
		goto bad;
	strcpy(buf, v);
	dash = strchr(buf, '-');
	if (dash)
		*dash = 0;
	if (parse_u64_opt(name, buf, 0, max, lo))
		return -EINVAL;
	*hi = *lo;
	if (dash && parse_u64_opt(name, dash + 1, *lo, max, hi))
		return -EINVAL;
	return 0;
bad:
	fprintf(stderr, "kcache-bench: --%s: expected MIN or MIN-MAX, got '%s'\n", name, v);
	return -EINVAL;
}

struct opts {
	struct kb_cfg cfg;
	double duration, warmup, pf_timeout;
	bool prefill;
	int cpus[MAX_THREADS];
	unsigned ncpus;
};

enum {
	O_FLOOD = 256,
	O_FLOOD_XDP,
	O_PREFILL,
	O_PREFILL_TIMEOUT,
	O_VERIFY,
	O_KEY_PREFIX,
	O_CPUS,
	O_UDP,
	O_TCP,
	O_PAD,
	O_XDP_GEN,
};

static const struct option long_opts[] = {
    {"server", required_argument, NULL, 's'},
    {"proto", required_argument, NULL, 'p'},
    {"udp", no_argument, NULL, O_UDP},
    {"tcp", no_argument, NULL, O_TCP},
    {"threads", required_argument, NULL, 't'},
    {"conns", required_argument, NULL, 'c'},
    {"depth", required_argument, NULL, 'd'},
    {"batch", required_argument, NULL, 'b'},
    {"duration", required_argument, NULL, 'D'},
    {"warmup", required_argument, NULL, 'w'},
    {"requests", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, 'r'},
    {"timeout-ms", required_argument, NULL, 'T'},
    {"flood", no_argument, NULL, O_FLOOD},
    {"flood-xdp", no_argument, NULL, O_FLOOD_XDP},
    {"xdp-gen", required_argument, NULL, O_XDP_GEN},
    {"pad-frames", required_argument, NULL, O_PAD},
    {"keys", required_argument, NULL, 'k'},
    {"zipf", required_argument, NULL, 'z'},
    {"key-size", required_argument, NULL, 'K'},
    {"value-size", required_argument, NULL, 'V'},
    {"key-prefix", required_argument, NULL, O_KEY_PREFIX},
    {"get-ratio", required_argument, NULL, 'g'},
    {"seed", required_argument, NULL, 'S'},
    {"prefill", no_argument, NULL, O_PREFILL},
    {"prefill-timeout", required_argument, NULL, O_PREFILL_TIMEOUT},
    {"verify", no_argument, NULL, O_VERIFY},
    {"cpus", required_argument, NULL, O_CPUS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_cpus(struct opts *o, const char *v)
{
	char buf[1024], *save = NULL, *tok;

	if (strlen(v) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, v);
	o->ncpus = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t c;

		if (o->ncpus == MAX_THREADS || parse_u64_opt("cpus", tok, 0, CPU_SETSIZE - 1, &c))
			return -EINVAL;
		o->cpus[o->ncpus++] = (int)c;
	}
	return o->ncpus ? 0 : -EINVAL;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	struct kb_cfg *cfg = &o->cfg;
	const char *server = "127.0.0.1:11211";
	uint64_t v, lo, hi, keys = 100000;
	double zipf = 0.99, t;
	const char *env;
	bool xdp_gen_set = false;
	char err[256];
	int c;

	memset(o, 0, sizeof(*o));
	cfg->proto = KB_UDP;
	cfg->threads = 1;
	cfg->conns = 4;
	cfg->depth = 32;
	cfg->batch = 32;
	cfg->timeout_ns = 250 * 1000000ULL;
	cfg->get_ratio = 0.9;
	cfg->seed = 1;
	cfg->ks = (struct kb_keyspace){.kmin = 32, .kmax = 32, .vmin = 100, .vmax = 500};
	strcpy(cfg->ks.prefix, "kb:");
	o->duration = 10;
	o->pf_timeout = 120;

	while ((c = getopt_long(argc, argv, "s:p:t:c:d:b:D:w:n:r:T:k:z:K:V:g:S:qh", long_opts,
				NULL)) != -1) {
		switch (c) {
		case 's':
			server = optarg;
			break;
		case 'p':
			if (!strcmp(optarg, "udp")) {
				cfg->proto = KB_UDP;
			} else if (!strcmp(optarg, "tcp")) {
				cfg->proto = KB_TCP;
			} else {
				fprintf(stderr, "kcache-bench: --proto: expected udp or tcp\n");
				return -EINVAL;
			}
			break;
		case O_UDP:
			cfg->proto = KB_UDP;
			break;
		case O_TCP:
			cfg->proto = KB_TCP;
			break;
		case 't':
			if (parse_u64_opt("threads", optarg, 1, MAX_THREADS, &v))
				return -EINVAL;
			cfg->threads = (unsigned)v;
			break;
		case 'c':
			if (parse_u64_opt("conns", optarg, 1, MAX_CONNS, &v))
				return -EINVAL;
			cfg->conns = (unsigned)v;
			break;
		case 'd':
			if (parse_u64_opt("depth", optarg, 1, MAX_DEPTH, &v))
				return -EINVAL;
			cfg->depth = (unsigned)v;
			break;
		case 'b':
			if (parse_u64_opt("batch", optarg, 1, MAX_BATCH, &v))
				return -EINVAL;
			cfg->batch = (unsigned)v;
			break;
		case 'D':
			if (parse_double_opt("duration", optarg, 0, MAX_DURATION, &o->duration))
				return -EINVAL;
			break;
		case 'w':
			if (parse_double_opt("warmup", optarg, 0, MAX_DURATION, &o->warmup))
				return -EINVAL;
			break;
		case 'n':
			if (parse_u64_opt("requests", optarg, 1, UINT64_MAX, &cfg->max_requests))
				return -EINVAL;
			break;
		case 'r':
			if (parse_double_opt("rate", optarg, 1, 1e9, &cfg->rate))
				return -EINVAL;
			break;
		case 'T':
			if (parse_u64_opt("timeout-ms", optarg, 1, 60000, &v))
				return -EINVAL;
			cfg->timeout_ns = v * 1000000ULL;
			break;
		case O_FLOOD:
			cfg->flood = true;
			break;
		case O_FLOOD_XDP:
			cfg->flood = cfg->flood_xdp = true;
			break;
		case O_XDP_GEN:
			if (!strcmp(optarg, "auto")) {
				cfg->xdp_gen = KB_XDP_GEN_AUTO;
			} else if (!strcmp(optarg, "live")) {
				cfg->xdp_gen = KB_XDP_GEN_LIVE;
			} else if (!strcmp(optarg, "packet")) {
				cfg->xdp_gen = KB_XDP_GEN_PACKET;
			} else {
				fprintf(stderr,
					"kcache-bench: --xdp-gen: expected auto, live or packet\n");
				return -EINVAL;
			}
			xdp_gen_set = true;
			break;
		case O_PAD:
			if (parse_u64_opt("pad-frames", optarg, 64, KB_FRAME_MAX, &v))
				return -EINVAL;
			cfg->pad_frames = (uint32_t)v;
			break;
		case 'k':
			if (parse_u64_opt("keys", optarg, 1, 1ULL << 40, &keys))
				return -EINVAL;
			break;
		case 'z':
			if (parse_double_opt("zipf", optarg, 0, 100, &zipf))
				return -EINVAL;
			break;
		case 'K':
			if (parse_range("key-size", optarg, KB_KEY_MAX, &lo, &hi))
				return -EINVAL;
			cfg->ks.kmin = (unsigned)lo;
			cfg->ks.kmax = (unsigned)hi;
			break;
		case 'V':
			if (parse_range("value-size", optarg, 64 << 20, &lo, &hi))
				return -EINVAL;
			cfg->ks.vmin = (uint32_t)lo;
			cfg->ks.vmax = (uint32_t)hi;
			break;
		case O_KEY_PREFIX:
			if (strlen(optarg) >= sizeof(cfg->ks.prefix) || strpbrk(optarg, " \r\n")) {
				fprintf(stderr,
					"kcache-bench: --key-prefix: at most %zu bytes, no "
					"spaces\n",
					sizeof(cfg->ks.prefix) - 1);
				return -EINVAL;
			}
			strcpy(cfg->ks.prefix, optarg);
			break;
		case 'g':
			if (parse_double_opt("get-ratio", optarg, 0, 1, &cfg->get_ratio))
				return -EINVAL;
			break;
		case 'S':
			if (parse_u64_opt("seed", optarg, 0, UINT64_MAX, &cfg->seed))
				return -EINVAL;
			break;
		case O_PREFILL:
			o->prefill = true;
			break;
		case O_PREFILL_TIMEOUT:
			if (parse_double_opt("prefill-timeout", optarg, 1, MAX_DURATION,
					     &o->pf_timeout))
				return -EINVAL;
			break;
		case O_VERIFY:
			cfg->verify = true;
			break;
		case O_CPUS:
			if (parse_cpus(o, optarg)) {
				fprintf(stderr, "kcache-bench: --cpus: expected a list like 0,1\n");
				return -EINVAL;
			}
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "kcache-bench: see --help\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kcache-bench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	cfg->ks.prefix_len = (unsigned)strlen(cfg->ks.prefix);
	cfg->ks.n = keys;
	if (kb_keyspace_check(&cfg->ks, err, sizeof(err)) || kb_zipf_init(&cfg->zipf, keys, zipf)) {
		fprintf(stderr, "kcache-bench: %s\n", err);
		return -EINVAL;
	}
	if (cfg->flood && cfg->proto != KB_UDP) {
		fprintf(stderr, "kcache-bench: --flood is UDP only\n");
		return -EINVAL;
	}
	if (cfg->pad_frames && (cfg->proto != KB_UDP || (cfg->flood && !cfg->flood_xdp))) {
		fprintf(stderr, "kcache-bench: --pad-frames is for UDP requests (not --flood)\n");
		return -EINVAL;
	}
	if (xdp_gen_set && !cfg->flood_xdp) {
		fprintf(stderr, "kcache-bench: --xdp-gen is for --flood-xdp\n");
		return -EINVAL;
	}
	if (cfg->xdp_gen == KB_XDP_GEN_LIVE) {
		cfg->xdp_gen_why = "--xdp-gen live";
	} else if (cfg->xdp_gen == KB_XDP_GEN_PACKET) {
		cfg->xdp_gen_why = "--xdp-gen packet";
	} else if ((env = getenv("KCACHE_BENCH_NO_LIVE_FRAMES")) && *env && strcmp(env, "0")) {
		cfg->xdp_gen = KB_XDP_GEN_PACKET;
		cfg->xdp_gen_why = "KCACHE_BENCH_NO_LIVE_FRAMES is set";
	}
	if (cfg->flood_xdp && cfg->batch > 256) {
		fprintf(stderr, "kcache-bench: --flood-xdp: --batch is at most 256\n");
		return -EINVAL;
	}
	if (cfg->pad_frames && cfg->get_ratio < 1 &&
	    KB_RAW_HLEN + 8 + kb_req_max(&cfg->ks) > KB_FRAME_MAX) {
		fprintf(stderr,
			"kcache-bench: --pad-frames: sets of values up to %u bytes do not "
			"fit one frame: lower --value-size or use --get-ratio 1\n",
			cfg->ks.vmax);
		return -EINVAL;
	}
	/* A UDP request is one datagram: the set must fit the 64 KiB datagram limit. */
	if (cfg->proto == KB_UDP && cfg->get_ratio < 1 && kb_req_max(&cfg->ks) + 8 > 65000) {
		fprintf(stderr,
			"kcache-bench: UDP sets of values up to %u bytes do not fit one "
			"datagram: lower --value-size or use --get-ratio 1\n",
			cfg->ks.vmax);
		return -EINVAL;
	}
	if (o->duration == 0 && !o->prefill) {
		fprintf(stderr, "kcache-bench: --duration 0 only makes sense with --prefill\n");
		return -EINVAL;
	}
	if (o->ncpus && o->ncpus < cfg->threads)
		fprintf(stderr, "kcache-bench: --cpus lists %u CPUs for %u threads: reusing them\n",
			o->ncpus, cfg->threads);
	t = o->duration * 1e9;
	cfg->duration_ns = (uint64_t)t;
	cfg->warmup_ns = (uint64_t)(o->warmup * 1e9);
	cfg->stop = &stop_flag;
	cfg->issued = &issued;
	if (target_parse(server, cfg, err, sizeof(err))) {
		fprintf(stderr, "kcache-bench: %s\n", err);
		return -EPERM;
	}
	return 0;
}

/* --- threads ---------------------------------------------------------------------------------- */

enum job { JOB_RUN, JOB_PREFILL };

struct worker {
	struct kb_thread t;
	pthread_t th;
	enum job job;
	uint64_t deadline;
	int cpu; /* -1: not pinned */
	int rc;
	_Atomic bool done;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct kb_cfg *cfg = w->t.cfg;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	/* Sleeps end within a microsecond: the open-loop schedule depends on it. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	if (w->job == JOB_PREFILL)
		w->rc = kb_tcp_prefill(&w->t, w->deadline);
	else if (cfg->flood_xdp)
		w->rc = kb_xdp_flood(&w->t);
	else if (cfg->flood)
		w->rc = kb_udp_flood(&w->t);
	else if (cfg->proto == KB_UDP)
		w->rc = kb_udp_run(&w->t);
	else
		w->rc = kb_tcp_run(&w->t);
	atomic_store(&w->done, true);
	return NULL;
}

/* Runs one job on cfg->threads threads and merges their counts into *sum. The watchdog stops
 * the threads at hard_end and ends the process GRACE_NS later if one still runs. */
static int run_threads(const struct opts *o, const struct kb_cfg *cfg, enum job job, uint64_t start,
		       uint64_t hard_end, struct kb_stats *sum)
{
	struct worker *ws = calloc(cfg->threads, sizeof(*ws));
	unsigned started = 0;
	int rc = 0;

	if (!ws) {
		fprintf(stderr, "kcache-bench: out of memory\n");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < cfg->threads; i++) {
		struct worker *w = &ws[i];

		w->t.cfg = cfg;
		w->t.id = i;
		w->t.start_ns = start;
		kb_rng_seed(&w->t.rng, cfg->seed * 1000003ULL + i);
		w->t.pf_first = cfg->ks.n * i / cfg->threads;
		w->t.pf_end = cfg->ks.n * (i + 1) / cfg->threads;
		w->job = job;
		w->deadline = hard_end;
		w->cpu = o->ncpus ? o->cpus[i % o->ncpus] : -1;
		if (pthread_create(&w->th, NULL, worker_main, w)) {
			fprintf(stderr, "kcache-bench: cannot start thread %u\n", i);
			atomic_store(&stop_flag, true);
			rc = -EAGAIN;
			break;
		}
		started++;
	}
	for (;;) {
		unsigned done = 0;
		uint64_t now = kc_mono_ns();
		struct timespec ts = {0, 10 * 1000000L};

		for (unsigned i = 0; i < started; i++)
			done += atomic_load(&ws[i].done);
		if (done == started)
			break;
		if (now > hard_end)
			atomic_store(&stop_flag, true);
		if (now > hard_end + GRACE_NS) {
			fprintf(stderr,
				"kcache-bench: watchdog: %u threads still running %.1f s past "
				"the end; exiting\n",
				started - done, (double)(now - hard_end) / 1e9);
			fflush(stdout);
			_exit(EXIT_FAIL);
		}
		nanosleep(&ts, NULL);
	}
	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < started; i++) {
		pthread_join(ws[i].th, NULL);
		if (ws[i].rc && !rc) {
			fprintf(stderr, "kcache-bench: thread %u: %s\n", i,
				ws[i].t.err[0] ? ws[i].t.err : strerror(-ws[i].rc));
			rc = ws[i].rc;
		}
		kb_stats_merge(sum, &ws[i].t.st);
	}
	free(ws);
	return rc;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static int prefill(const struct opts *o)
{
	struct kb_cfg cfg = o->cfg;
	struct kb_stats st = {0};
	uint64_t start = kc_mono_ns(), deadline = start + (uint64_t)(o->pf_timeout * 1e9);
	double secs;
	int rc;

	cfg.proto = KB_TCP;
	/* Not timed: a slow reply is waited for, not counted lost (it would leave a key unset). */
	if (cfg.timeout_ns < PREFILL_TIMEOUT_NS)
		cfg.timeout_ns = PREFILL_TIMEOUT_NS;
	cfg.rate = 0;
	cfg.max_requests = 0;
	cfg.verify = false;
	if (cfg.threads > cfg.ks.n)
		cfg.threads = (unsigned)cfg.ks.n;
	rc = run_threads(o, &cfg, JOB_PREFILL, start, deadline, &st);
	secs = (double)(kc_mono_ns() - start) / 1e9;
	printf("prefill: proto=tcp keys=%llu stored=%llu errors=%llu lost=%llu secs=%.2f "
	       "sets_per_s=%.0f\n",
	       (unsigned long long)cfg.ks.n, (unsigned long long)st.stored,
	       (unsigned long long)st.errors, (unsigned long long)st.lost, secs,
	       (double)st.stored / (secs > 0 ? secs : 1));
	fflush(stdout);
	if (rc)
		return rc;
	if (st.stored != cfg.ks.n) {
		fprintf(stderr, "kcache-bench: prefill stored %llu of %llu keys\n",
			(unsigned long long)st.stored, (unsigned long long)cfg.ks.n);
		return -EIO;
	}
	return 0;
}

static void report(const struct opts *o, const struct kb_stats *st)
{
	const struct kb_cfg *cfg = &o->cfg;
	const char *proto = cfg->proto == KB_UDP ? "udp" : "tcp";
	const char *mode = cfg->flood_xdp  ? "flood-xdp"
			   : cfg->flood	   ? "flood"
			   : cfg->rate > 0 ? "open"
					   : "closed";
	double secs = st->end_ns > st->start_ns ? (double)(st->end_ns - st->start_ns) / 1e9 : 0;
	double rps = secs > 0 ? (double)(cfg->flood ? st->sent : st->done) / secs : 0;
	const struct kb_hist *h = &st->hist;

	if (!quiet) {
		printf("kcache-bench: %s %s, %u threads x %u %s, depth %u, %s loop", proto,
		       cfg->target, cfg->threads, cfg->conns,
		       cfg->proto == KB_UDP ? "sockets" : "connections", cfg->depth, mode);
		if (cfg->rate > 0)
			printf(" at %.0f req/s", cfg->rate);
		printf(", %.2f s measured\n", secs);
		printf("  keys %llu, zipf %.2f, key %u-%u B, value %u-%u B, gets %.0f%%%s\n",
		       (unsigned long long)cfg->ks.n, cfg->zipf.s, cfg->ks.kmin, cfg->ks.kmax,
		       cfg->ks.vmin, cfg->ks.vmax, cfg->get_ratio * 100,
		       cfg->verify ? ", verifying" : "");
		if (cfg->flood) {
			printf("  sent %llu %s (%.0f/s), replies seen %llu, sender CPU %.2f s\n",
			       (unsigned long long)st->sent,
			       cfg->flood_xdp ? "frames" : "datagrams", rps,
			       (unsigned long long)st->replies, (double)st->cpu_ns / 1e9);
		} else {
			printf(
			    "  requests %llu answered of %llu sent (%.0f/s): gets %llu (hits %llu, "
			    "misses %llu), sets %llu (stored %llu)\n",
			    (unsigned long long)st->done, (unsigned long long)st->sent, rps,
			    (unsigned long long)st->gets, (unsigned long long)st->hits,
			    (unsigned long long)st->misses, (unsigned long long)st->sets,
			    (unsigned long long)st->stored);
			printf("  lost %llu, errors %llu, verify failures %llu, unsent %llu, late "
			       "%llu\n",
			       (unsigned long long)st->lost, (unsigned long long)st->errors,
			       (unsigned long long)st->verify_fail, (unsigned long long)st->unsent,
			       (unsigned long long)st->late);
			printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
			       us(kb_hist_quantile(h, 0.5)), us(kb_hist_quantile(h, 0.9)),
			       us(kb_hist_quantile(h, 0.99)), us(kb_hist_quantile(h, 0.999)),
			       us(h->max_ns));
		}
	}
	printf("result: proto=%s mode=%s rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f hits=%llu "
	       "misses=%llu lost=%llu errors=%llu verify_fail=%llu sets=%llu unsent=%llu late=%llu "
	       "sent=%llu replies=%llu secs=%.2f cpu_s=%.3f\n",
	       proto, mode, rps, us(kb_hist_quantile(h, 0.5)), us(kb_hist_quantile(h, 0.99)),
	       us(kb_hist_quantile(h, 0.999)), (unsigned long long)st->hits,
	       (unsigned long long)st->misses, (unsigned long long)st->lost,
	       (unsigned long long)st->errors, (unsigned long long)st->verify_fail,
	       (unsigned long long)st->sets, (unsigned long long)st->unsent,
	       (unsigned long long)st->late, (unsigned long long)st->sent,
	       (unsigned long long)(cfg->flood ? st->replies : st->done), secs,
	       (double)st->cpu_ns / 1e9);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct opts *o = calloc(1, sizeof(*o));
	struct kb_stats *st = calloc(1, sizeof(*st));
	uint64_t start, hard_end;
	int status = EXIT_FAIL;

	if (!o || !st)
		goto out;
	if (parse_args(argc, argv, o)) {
		status = EXIT_USAGE;
		goto out;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	kb_keyspace_cache(&o->cfg.ks); /* best effort: without it keys are rendered each time */

	if (o->prefill && prefill(o))
		goto out;
	status = 0;
	if (o->cfg.duration_ns == 0 || atomic_load(&stop_flag))
		goto out;

	start = kc_mono_ns() + 2000000; /* 2 ms for the threads to start */
	hard_end = start + o->cfg.warmup_ns + o->cfg.duration_ns + o->cfg.timeout_ns;
	if (run_threads(o, &o->cfg, JOB_RUN, start, hard_end, st))
		status = EXIT_FAIL;
	report(o, st);
	if (o->cfg.verify && (st->errors || st->verify_fail)) {
		fprintf(stderr, "kcache-bench: %llu errors, %llu verification failures\n",
			(unsigned long long)st->errors, (unsigned long long)st->verify_fail);
		status = EXIT_FAIL;
	}
out:
	if (o)
		kb_keyspace_free(&o->cfg.ks);
	free(o);
	free(st);
	return status;
}
