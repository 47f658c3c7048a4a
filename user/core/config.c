/* config.c: the directive table and its three sources (defaults, YAML, flags). See config.h. */
#include "core/log.h"
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/num.h"
#include "core/version.h"
#include "core/yaml.h"
#include <kcache/cache.h>  /* KC_VALUE_MAX */
#include <kcache/policy.h> /* KC_POL_RULES_DEFAULT */
#include "core/prefix.h"

/* The config file: directives and allow lists, far below this. */
#define KC_CONFIG_FILE_MAX (1u << 20)

enum kc_cfg_type { T_STR, T_U32, T_SIZE, T_BOOL, T_XDP, T_LOGLEVEL, T_HOSTPORT, T_PREFIXES };

struct kc_directive {
	const char *name;
	enum kc_cfg_type type;
	size_t off;  /* offset in struct kc_config */
	size_t size; /* field size, for strings */
	const char *def;
	uint64_t min, max; /* numeric bounds (inclusive) */
	bool runtime;	   /* may change on reload (SIGHUP); none yet */
	const char *help;
};

#define F(field) offsetof(struct kc_config, field), sizeof(((struct kc_config *)0)->field)

/* One row per directive. Defaults go through the same parser as user input. */
static const struct kc_directive directives[] = {
    {"listen", T_STR, F(listen), "127.0.0.1", 0, 0, false,
     "address for memcached TCP and UDP (0.0.0.0 for all)"},
    {"insecure-listen", T_BOOL, F(insecure_listen), "false", 0, 0, false,
     "allow a memcached or HTTP listener the network policy does not cover (non-loopback with "
     "xdp-mode off, an interface other than iface, HTTP off loopback)"},
    {"port", T_U32, F(port), "11211", 0, 65535, false, "memcached TCP and UDP port"},
    {"udp", T_BOOL, F(udp), "true", 0, 0, false, "serve memcached over UDP as well as TCP"},
    {"udp-writes", T_BOOL, F(udp_writes), "false", 0, 0, false,
     "let UDP (no handshake: spoofable) set, delete, incr, touch...; off: UDP serves reads only"},
    {"udp-max-reply", T_SIZE, F(udp_max_reply), "1400", 128, 16 << 20, false,
     "most bytes one UDP request gets back, frame headers included (1400: one datagram, "
     "a kernel-tier-sized value); larger replies get SERVER_ERROR ... use TCP"},
    {"allow-flush", T_BOOL, F(allow_flush), "false", 0, 0, false,
     "serve the protocol's flush_all over TCP (this node's view, until it restarts; never "
     "over UDP); the durable one is kcachectl flush [--all-nodes]"},
    {"http", T_HOSTPORT, F(http), "127.0.0.1:8080", 0, 0, false,
     "HTTP listener host:port (/metrics, /healthz)"},
    {"http-max-conns", T_U32, F(http_max_conns), "256", 1, 1000000, false,
     "most HTTP connections at once; more get 503 and are closed"},
    {"http-header-timeout", T_U32, F(http_header_timeout), "10", 1, 3600, false,
     "seconds an HTTP client has for a whole request header"},
    {"iface", T_STR, F(iface), "", 0, 0, false, "interface for XDP (with --xdp-mode)"},
    {"xdp-mode", T_XDP, F(xdp_mode), "off", 0, 0, false,
     "kernel hot-key tier: native (driver XDP), skb (generic XDP) or off (no BPF)"},
    {"kernel-entries", T_U32, F(kernel_entries), "8192", 1, 1 << 20, false,
     "most keys resident in the kernel tier (sizes its maps once, at start)"},
    {"kernel-max-value", T_U32, F(kernel_max_value), "1000", 1, KC_VALUE_MAX, false,
     "largest value (bytes) the kernel tier serves"},
    {"memory", T_SIZE, F(memory), "64M", 1 << 20, 1ULL << 40, false,
     "memory tier size (bytes, K, M, G)"},
    {"item-size-max", T_SIZE, F(item_max), "1M", 1024, 128 << 20, false,
     "largest item, key + value (bytes, K, M)"},
    {"data-dir", T_STR, F(data_dir), "/var/lib/kcache", 0, 0, false,
     "object store directory (data-dir/store) and write-behind journal; empty: none"},
    {"redis", T_STR, F(redis), "", 0, 0, false,
     "Redis tier: redis://[user:pass@]host:port[/db], rediss://..., "
     "redis+sentinel://master@host:port,..."},
    {"redis-password-file", T_STR, F(redis_password_file), "", 0, 0, false,
     "file (mode 0600) holding the Redis password, kept out of the command line"},
    {"audit-redis-password-file", T_STR, F(audit_redis_password_file), "", 0, 0, false,
     "file (mode 0600) holding the password of audit-redis-stream"},
    {"redis-prefix", T_STR, F(redis_prefix), "kcache:", 0, 0, false,
     "prefix of kcache's Redis keys and channel"},
    {"redis-timeout", T_U32, F(redis_timeout_ms), "200", 1, 60000, false,
     "Redis command timeout (ms)"},
    {"redis-busy-poll", T_U32, F(redis_busy_poll_us), "0", 0, 1000, false,
     "us a worker polls for a Redis reply before sleeping (0: never; CPU for latency)"},
    {"store", T_STR, F(store), "", 0, 0, false,
     "object store: s3://bucket/prefix?endpoint=...&region=... (default: data-dir/store)"},
    {"store-max-size", T_SIZE, F(store_max), "1G", 1 << 20, 1ULL << 50, false,
     "directory store size limit; least recently used objects go first"},
    {"store-timeout", T_U32, F(store_timeout_ms), "2000", 1, 600000, false,
     "S3 request timeout (ms)"},
    {"write-mode", T_STR, F(write_mode), "behind", 0, 0, false,
     "through (ack once Redis and the store have it) or behind (ack once the journal has it)"},
    {"negative-ttl", T_U32, F(negative_ttl_ms), "500", 0, 60000, false,
     "ms a key found in no tier is remembered as absent (0: never)"},
    {"compress-min", T_SIZE, F(compress_min), "4K", 0, 1ULL << 32, false,
     "zstd-compress values of at least this size in the lower tiers (0: never)"},
    {"write-behind-queue", T_U32, F(wb_queue), "100000", 1, 100000000, false,
     "most writes waiting for the flusher; beyond, writes get SERVER_ERROR"},
    {"write-behind-queue-size", T_SIZE, F(wb_queue_bytes), "256M", 1 << 20, 1ULL << 40, false,
     "most bytes waiting for the flusher"},
    {"write-behind-attempts", T_U32, F(wb_attempts), "8", 1, 1000, false,
     "flush attempts before a write becomes a dead letter"},
    {"breaker-failures", T_U32, F(breaker_failures), "5", 1, 1000, false,
     "failures in a row that open a tier's circuit breaker"},
    {"breaker-reset", T_U32, F(breaker_reset_ms), "1000", 10, 600000, false,
     "ms an open breaker waits before it lets one probe through"},
    {"node-id", T_U32, F(node_id), "256", 0, 256, false,
     "this node's id in write versions, 0..255 (256: random)"},
    {"threads", T_U32, F(threads), "0", 0, 256, false, "worker threads (0: one per CPU)"},
    {"pin-workers", T_BOOL, F(pin_workers), "false", 0, 0, false,
     "pin worker i to the i-th allowed CPU (mod their number): no migrations between wakeups"},
    {"max-conns", T_U32, F(max_conns), "4096", 1, 1000000, false,
     "most client connections at once"},
    {"request-timeout", T_U32, F(request_timeout), "30", 0, 86400, false,
     "seconds a memcached command or value may take to arrive in full (0: no limit)"},
    {"conn-buffer-budget", T_SIZE, F(conn_budget), "0", 0, 1ULL << 40, false,
     "bytes all memcached connections' buffers may hold (0: memory / 4, at least 4 largest "
     "requests)"},
    {"idle-timeout", T_U32, F(idle_timeout), "0", 0, 86400 * 30, false,
     "seconds a memcached connection with nothing to do is kept open (0: forever)"},
    {"pin-path", T_STR, F(pin_path), "/sys/fs/bpf/kcache", 0, 0, false,
     "bpffs folder for pinned maps"},
    {"admin-socket", T_STR, F(admin_socket), "/run/kcache/admin.sock", 0, 0, false,
     "kcachectl's unix socket"},
    {"log-level", T_LOGLEVEL, F(log_level), "info", 0, 0, true, "error, warn, info or debug"},
    {"audit-policy", T_STR, F(audit_policy), "", 0, 0, false,
     "syscall audit policy (YAML); audit is off without it"},
    {"audit-log", T_STR, F(audit_log), "", 0, 0, false, "audit stream file, or - for stdout"},
    {"audit-key", T_STR, F(audit_key), "", 0, 0, false,
     "HMAC-SHA-256 key file for the audit chain (mode 0600, >= 32 bytes)"},
    {"audit-log-max-size", T_SIZE, F(audit_log_max_size), "100M", 4096, 1ULL << 40, false,
     "rotate the audit log past this size"},
    {"audit-log-max-files", T_U32, F(audit_log_max_files), "5", 2, 1000, false,
     "audit log files kept, the current one included"},
    {"audit-redis-stream", T_STR, F(audit_redis_stream), "", 0, 0, false,
     "audit Redis stream: a --redis URL with the key last, redis[s]://[user:pass@]host:port/key"},
    {"audit-redis-maxlen", T_U32, F(audit_redis_maxlen), "100000", 1, 1000000000, false,
     "approximate length cap of the audit stream (XADD MAXLEN ~)"},
    {"audit-ring-size", T_SIZE, F(audit_ring_size), "4M", 4096, 1 << 30, false,
     "audit BPF ring buffer (a power of two, at least a page)"},
    {"audit-queue-size", T_SIZE, F(audit_queue_size), "16M", 4096, 1ULL << 32, false,
     "bound of each audit sink's queue"},
    {"audit-checkpoint", T_U32, F(audit_checkpoint), "10", 1, 86400, false,
     "seconds between audit checkpoint records"},
    {"net-policy", T_STR, F(net_policy), "", 0, 0, false,
     "network policy (YAML) enforced by XDP; without it the memcached port answers only "
     "loopback and --allow"},
    {"allow", T_PREFIXES, F(allow), "", 0, 0, false,
     "a source prefix the memcached port answers (repeatable; YAML: a list)"},
    {"net-policy-persist", T_BOOL, F(net_policy_persist), "false", 0, 0, false,
     "keep the network policy enforced (pinned) while kcached is down or upgrading"},
    {"net-policy-max-rules", T_U32, F(net_policy_max_rules), "131072", 16, 1 << 20, false,
     "most network policy rules (sizes the prefix tries and counters once, at start)"},
};
#define N_DIRECTIVES (sizeof(directives) / sizeof(directives[0]))

int kc_parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strlen(s);
	unsigned shift = 0;
	uint64_t v;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	if (n > 1 && (num[n - 1] == 'B' || num[n - 1] == 'b') &&
	    !isdigit((unsigned char)num[n - 2]))
		num[--n] = 0; /* "64MB" */
	switch (toupper((unsigned char)num[n - 1])) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	}
	if (shift)
		num[--n] = 0;
	if (kc_parse_u64(num, UINT64_MAX, &v))
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static const char *const xdp_names[] = {"off", "skb", "native"};

const char *kc_xdp_mode_name(enum kc_xdp_mode m)
{
	return xdp_names[m];
}

/* Parses one value into cfg. Returns 0, or -EINVAL with "expected ..., got '...'" in err. */
static int set_value(struct kc_config *cfg, const struct kc_directive *d, const char *v, char *err,
		     size_t errlen)
{
	char *field = (char *)cfg + d->off;
	uint64_t n;

	switch (d->type) {
	case T_STR:
	case T_HOSTPORT:
		if (strlen(v) >= d->size) {
			kc_errf(err, errlen, "%s: expected at most %zu bytes, got %zu", d->name,
				d->size - 1, strlen(v));
			return -EINVAL;
		}
		if (d->type == T_HOSTPORT) {
			const char *colon = strrchr(v, ':');
			uint64_t port;

			if (!colon || colon == v || kc_parse_u64(colon + 1, 65535, &port)) {
				kc_errf(err, errlen, "%s: expected host:port, got '%s'", d->name,
					v);
				return -EINVAL;
			}
		}
		strcpy(field, v);
		return 0;
	case T_U32:
		if (kc_parse_u64(v, d->max, &n) || n < d->min) {
			kc_errf(err, errlen, "%s: expected an integer from %llu to %llu, got '%s'",
				d->name, (unsigned long long)d->min, (unsigned long long)d->max, v);
			return -EINVAL;
		}
		*(uint32_t *)field = (uint32_t)n;
		return 0;
	case T_SIZE:
		if (kc_parse_size(v, &n) || n < d->min || n > d->max) {
			kc_errf(
			    err, errlen,
			    "%s: expected a size from %llu to %llu bytes (suffixes K, M, G), got "
			    "'%s'",
			    d->name, (unsigned long long)d->min, (unsigned long long)d->max, v);
			return -EINVAL;
		}
		*(uint64_t *)field = n;
		return 0;
	case T_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") ||
		    !strcmp(v, "1")) {
			*(bool *)field = true;
		} else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") ||
			   !strcmp(v, "0")) {
			*(bool *)field = false;
		} else {
			kc_errf(err, errlen, "%s: expected true or false, got '%s'", d->name, v);
			return -EINVAL;
		}
		return 0;
	case T_XDP:
		for (int i = KC_XDP_OFF; i <= KC_XDP_NATIVE; i++)
			if (!strcmp(v, xdp_names[i])) {
				*(enum kc_xdp_mode *)field = (enum kc_xdp_mode)i;
				return 0;
			}
		kc_errf(err, errlen, "%s: expected off, skb or native, got '%s'", d->name, v);
		return -EINVAL;
	case T_PREFIXES: {
		struct kc_prefix pfx;
		char msg[160];
		size_t used = strlen(field);

		if (!*v)
			return 0; /* the empty default */
		if (kc_prefix_parse(v, &pfx, msg, sizeof(msg))) {
			kc_errf(err, errlen, "%s: %s", d->name, msg);
			return -EINVAL;
		}
		if (used + strlen(v) + 2 > d->size) {
			size_t count = 1;

			for (const char *p = field; *p; p++)
				count += *p == ',';
			kc_errf(err, errlen,
				"%s: '%s' does not fit: the list holds at most %zu bytes, commas "
				"included, and has %zu prefixes in %zu; put longer lists in a "
				"net-policy file (up to net-policy-max-rules)",
				d->name, v, d->size - 1, count, used);
			return -EINVAL;
		}
		if (used)
			field[used++] = ',';
		strcpy(field + used, v);
		return 0;
	}
	case T_LOGLEVEL:
		if (kc_log_parse_level(v, (enum kc_log_level *)field)) {
			kc_errf(err, errlen, "%s: expected error, warn, info or debug, got '%s'",
				d->name, v);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

static const struct kc_directive *find(const char *name)
{
	for (size_t i = 0; i < N_DIRECTIVES; i++)
		if (!strcmp(directives[i].name, name))
			return &directives[i];
	return NULL;
}

void kc_config_defaults(struct kc_config *cfg)
{
	char err[256];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_DIRECTIVES; i++) {
		int rc = set_value(cfg, &directives[i], directives[i].def, err, sizeof(err));

		(void)rc; /* defaults are valid by construction; test_config checks it */
	}
}

int kc_config_load_yaml(struct kc_config *cfg, const char *path, char *err, size_t errlen)
{
	struct kc_yaml y;
	char *text;
	size_t len;
	int rc, depth = 0, done = 0, docs = 0;
	char key[64] = "";
	size_t key_line = 0;
	size_t seen[N_DIRECTIVES] = {0}; /* the line each key was first set on */
	bool have_key = false, in_list = false;

	rc = kc_yaml_read_file(path, KC_CONFIG_FILE_MAX, &text, &len, err, errlen);
	if (rc)
		return rc;
	rc = kc_yaml_open(&y, path, text, len, err, errlen);
	while (!rc && !done) {
		rc = kc_yaml_next(&y);
		if (rc)
			break;
		size_t line = kc_yaml_line(&y);
		switch (y.ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			/* a second document would be read as more of the first, or ignored */
			if (++docs > 1)
				rc = kc_yaml_errf(err, errlen, path, line,
						  "a second YAML document (---): the configuration "
						  "is one mapping");
			break;
		case YAML_MAPPING_START_EVENT:
			if (++depth > 1)
				rc = kc_yaml_errf(err, errlen, path, line,
						  "%s: expected a scalar value, got a mapping",
						  have_key ? key : "?");
			break;
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SEQUENCE_START_EVENT:
			if (have_key && !in_list && find(key)->type == T_PREFIXES) {
				in_list = true;
				break;
			}
			rc = kc_yaml_errf(err, errlen, path, line,
					  "%s: expected a scalar value, got a list",
					  have_key ? key : "top level");
			break;
		case YAML_SEQUENCE_END_EVENT:
			in_list = false;
			have_key = false;
			break;
		case YAML_SCALAR_EVENT: {
			const char *val = (const char *)y.ev.data.scalar.value;

			if (depth != 1) {
				rc = kc_yaml_errf(err, errlen, path, line,
						  "expected a mapping of directive: value");
			} else if (!have_key) {
				size_t di = 0;

				if (strlen(val) >= sizeof(key) || !find(val)) {
					rc = kc_yaml_errf(err, errlen, path, line,
							  "unknown key '%.63s'", val);
				} else if (seen[di = (size_t)(find(val) - directives)]) {
					/* YAML says keys are unique; silently taking the last
					 * hides an edit that did not do what it meant */
					rc = kc_yaml_errf(err, errlen, path, line,
							  "duplicate key '%s' (first on line %zu)",
							  val, seen[di]);
				} else {
					seen[di] = line;
					strcpy(key, val);
					key_line = line;
					have_key = true;
				}
			} else {
				char msg[200];

				if (set_value(cfg, find(key), val, msg, sizeof(msg)))
					rc = kc_yaml_errf(err, errlen, path,
							  in_list ? line : key_line, "%s", msg);
				have_key = in_list;
			}
			break;
		}
		default:
			break;
		}
	}
	kc_yaml_close(&y);
	free(text);
	return rc;
}

void kc_config_usage(const char *prog)
{
	printf("usage: %s [--config FILE] [--NAME VALUE]...\n\n"
	       "Each directive is a flag and a key of the YAML file given by --config:\n\n",
	       prog);
	for (size_t i = 0; i < N_DIRECTIVES; i++)
		printf("  --%-21s %s (default: %s)\n", directives[i].name, directives[i].help,
		       directives[i].def[0] ? directives[i].def : "none");
	printf("\n  --config FILE           YAML file read before the flags\n"
	       "  --check-config          validate the configuration and exit\n"
	       "  --help, --version\n");
}

int kc_config_parse_args(struct kc_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	struct option opts[N_DIRECTIVES + 4];
	size_t i;
	int c, idx;

	for (i = 0; i < N_DIRECTIVES; i++)
		opts[i] = (struct option){directives[i].name, required_argument, NULL, 0};
	opts[i++] = (struct option){"config", required_argument, NULL, 0};
	opts[i++] = (struct option){"help", no_argument, NULL, 'h'};
	opts[i++] = (struct option){"version", no_argument, NULL, 'V'};
	opts[i] = (struct option){NULL, 0, NULL, 0};

	/* Pass 1: --config, so that flags override the file whatever their order. */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hV", opts, &idx)) != -1) {
		if (c == 'h') {
			kc_config_usage(argv[0]);
			return 1;
		}
		if (c == 'V') {
			printf("kcached %s\n", KC_VERSION);
			return 1;
		}
		if (c == '?' || c == ':') {
			const char *bad = argv[optind - 1];

			if (c == ':')
				kc_errf(err, errlen, "%s: expected a value", bad);
			else
				kc_errf(err, errlen, "%s: unknown option (see --help)", bad);
			return -EINVAL;
		}
		if (c == 0 && !strcmp(opts[idx].name, "config")) {
			int rc = kc_config_load_yaml(cfg, optarg, err, errlen);

			if (rc)
				return rc;
		}
	}
	if (optind < argc) {
		kc_errf(err, errlen, "%s: unexpected argument", argv[optind]);
		return -EINVAL;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hV", opts, &idx)) != -1) {
		if (c != 0 || !strcmp(opts[idx].name, "config"))
			continue;
		char msg[200];

		if (set_value(cfg, &directives[idx], optarg, msg, sizeof(msg))) {
			kc_errf(err, errlen, "--%s", msg);
			return -EINVAL;
		}
	}
	int rc = kc_config_read_password_files(cfg, err, errlen);

	return rc ? rc : kc_config_validate(cfg, err, errlen);
}

/* An address of the listen directive, or the host of an http one: its family and bytes. */
struct host_addr {
	int family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} a;
};

static int parse_host(const char *host, struct host_addr *h)
{
	memset(h, 0, sizeof(*h));
	if (inet_pton(AF_INET, host, &h->a.v4) == 1)
		h->family = AF_INET;
	else if (inet_pton(AF_INET6, host, &h->a.v6) == 1)
		h->family = AF_INET6;
	else
		return -EINVAL;
	return 0;
}

/* The host of "a.b.c.d:port" or "[v6]:port" into buf (brackets removed). */
static int http_host(const char *hp, char *buf, size_t len)
{
	const char *end = strrchr(hp, ':');
	size_t n;

	if (!end)
		return -EINVAL;
	if (hp[0] == '[') {
		if (end == hp || end[-1] != ']')
			return -EINVAL;
		hp++;
		end--;
	}
	n = (size_t)(end - hp);
	if (n == 0 || n >= len)
		return -EINVAL;
	memcpy(buf, hp, n);
	buf[n] = 0;
	return 0;
}

static bool is_loopback(const struct host_addr *h)
{
	if (h->family == AF_INET)
		return (ntohl(h->a.v4.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&h->a.v6) ||
	       (IN6_IS_ADDR_V4MAPPED(&h->a.v6) && h->a.v6.s6_addr[12] == 127);
}

static bool is_wildcard(const struct host_addr *h)
{
	return h->family == AF_INET ? h->a.v4.s_addr == htonl(INADDR_ANY)
				    : IN6_IS_ADDR_UNSPECIFIED(&h->a.v6);
}

static bool same_addr(const struct host_addr *h, const struct sockaddr *sa)
{
	if (sa->sa_family != h->family)
		return false;
	if (h->family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == h->a.v4.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &h->a.v6, 16);
}

/* Reads the password in file (see kc_config_read_password_files) into pw. */
static int read_password(const char *name, const char *file, char *pw, size_t pwlen, char *err,
			 size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK), rc = 0;

	if (fd < 0) {
		rc = -errno;
		kc_errf(err, errlen, "%s %s: %s", name, file, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		kc_errf(err, errlen, "%s %s: expected a regular file", name, file);
		rc = -EINVAL;
	} else if (st.st_mode & 077) {
		kc_errf(err, errlen, "%s %s: mode %04o lets group or others at it: chmod 600 it",
			name, file, (unsigned)(st.st_mode & 07777));
		rc = -EPERM;
	} else if ((n = read(fd, pw, pwlen)) < 0) {
		rc = -errno;
		kc_errf(err, errlen, "%s %s: %s", name, file, strerror(errno));
	} else if ((size_t)n == pwlen) {
		kc_errf(err, errlen, "%s %s: longer than %zu bytes", name, file, pwlen - 1);
		rc = -EINVAL;
	} else {
		pw[n] = 0;
		pw[strcspn(pw, "\r\n")] = 0;
		if (!pw[0]) {
			kc_errf(err, errlen, "%s %s: empty password", name, file);
			rc = -EINVAL;
		}
	}
	close(fd);
	return rc;
}

/* Puts pw, %XX-encoded, into url's userinfo (kc_redis_url_parse's syntax). */
static int put_password(const char *name, const char *urlname, char *url, size_t size,
			const char *pw, char *err, size_t errlen)
{
	char enc[3 * 256 + 1], out[1024];
	char *sep = strstr(url, "://"), *auth, *end, *at = NULL;
	size_t e = 0, ats = 0, need;
	bool sentinel;

	if (!url[0]) {
		kc_errf(err, errlen, "%s is set but %s is not", name, urlname);
		return -EINVAL;
	}
	if (!sep) {
		kc_errf(err, errlen, "%s: expected a URL (scheme://...) to put the password in",
			urlname);
		return -EINVAL;
	}
	for (const unsigned char *p = (const unsigned char *)pw; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p))
			enc[e++] = (char)*p;
		else
			e += (size_t)snprintf(enc + e, sizeof(enc) - e, "%%%02X", *p);
	}
	enc[e] = 0;
	sentinel = (size_t)(sep - url) >= 9 && !strncmp(sep - 9, "+sentinel", 9);
	auth = sep + 3;
	end = auth + strcspn(auth, "/?");
	for (char *p = auth; p < end; p++)
		if (*p == '@' && !ats++)
			at = p;
	need = sentinel ? 2 : 1; /* user:pass@MASTER@host for Sentinel */
	if (ats == need && memchr(auth, ':', (size_t)(at - auth))) {
		kc_errf(err, errlen, "%s has a password in it and %s is set: keep one", urlname,
			name);
		return -EINVAL;
	}
	if (ats == need) /* user@host: user:PASS@host */
		snprintf(out, sizeof(out), "%.*s:%s%s", (int)(at - url), url, enc, at);
	else if (ats + 1 == need)
		snprintf(out, sizeof(out), "%.*s:%s@%s", (int)(auth - url), url, enc, auth);
	else {
		kc_errf(err, errlen, "%s: cannot tell its user from its host to add the password",
			urlname);
		return -EINVAL;
	}
	if (strlen(out) >= size || strlen(out) >= sizeof(out) - 1) {
		kc_errf(err, errlen, "%s with the password of %s: longer than %zu bytes", urlname,
			name, size - 1);
		return -EINVAL;
	}
	strcpy(url, out);
	return 0;
}

int kc_config_read_password_files(struct kc_config *cfg, char *err, size_t errlen)
{
	struct {
		const char *name, *urlname;
		const char *file;
		char *url;
		size_t size;
	} f[] = {
	    {"redis-password-file", "redis", cfg->redis_password_file, cfg->redis,
	     sizeof(cfg->redis)},
	    {"audit-redis-password-file", "audit-redis-stream", cfg->audit_redis_password_file,
	     cfg->audit_redis_stream, sizeof(cfg->audit_redis_stream)},
	};
	char pw[256] = "";
	int rc = 0;

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && !rc; i++) {
		if (!f[i].file[0])
			continue;
		rc = read_password(f[i].name, f[i].file, pw, sizeof(pw), err, errlen);
		if (!rc)
			rc = put_password(f[i].name, f[i].urlname, f[i].url, f[i].size, pw, err,
					  errlen);
		explicit_bzero(pw, sizeof(pw));
	}
	return rc;
}

int kc_config_validate(const struct kc_config *cfg, char *err, size_t errlen)
{
	struct host_addr a;
	char host[INET6_ADDRSTRLEN + 2];

	if (parse_host(cfg->listen, &a)) {
		kc_errf(err, errlen, "listen: expected an IPv4 or IPv6 address, got '%s'",
			cfg->listen);
		return -EINVAL;
	}
	if (http_host(cfg->http, host, sizeof(host)) || parse_host(host, &a) ||
	    (a.family == AF_INET6) != (cfg->http[0] == '[')) {
		kc_errf(err, errlen,
			"http: expected a.b.c.d:port or [v6]:port (a numeric address), got '%s'",
			cfg->http);
		return -EINVAL;
	}
	if (cfg->audit_ring_size & (cfg->audit_ring_size - 1)) {
		kc_errf(err, errlen, "audit-ring-size (%llu) must be a power of two",
			(unsigned long long)cfg->audit_ring_size);
		return -EINVAL;
	}
	if (cfg->memory < 2 * cfg->item_max) {
		kc_errf(err, errlen, "memory (%llu) must be at least twice item-size-max (%llu)",
			(unsigned long long)cfg->memory, (unsigned long long)cfg->item_max);
		return -EINVAL;
	}
	if (strcmp(cfg->write_mode, "through") && strcmp(cfg->write_mode, "behind")) {
		kc_errf(err, errlen, "write-mode: expected through or behind, got '%s'",
			cfg->write_mode);
		return -EINVAL;
	}
	if (!strcmp(cfg->write_mode, "behind") && !cfg->data_dir[0] &&
	    (cfg->redis[0] || cfg->store[0])) {
		kc_errf(err, errlen,
			"write-mode behind keeps its journal in data-dir: set data-dir "
			"or use write-mode through");
		return -EINVAL;
	}
	if (cfg->xdp_mode != KC_XDP_OFF && !cfg->iface[0]) {
		kc_errf(err, errlen, "xdp-mode %s needs iface", kc_xdp_mode_name(cfg->xdp_mode));
		return -EINVAL;
	}
	if (cfg->xdp_mode == KC_XDP_OFF && (cfg->net_policy[0] || cfg->allow[0])) {
		kc_errf(err, errlen,
			"%s needs xdp-mode skb or native: XDP enforces the network policy",
			cfg->net_policy[0] ? "net-policy" : "allow");
		return -EINVAL;
	}
	return 0;
}

#define INSECURE_HINT "or pass --insecure-listen (insecure-listen: true) to accept it"

int kc_config_check_exposure(const struct kc_config *cfg, char *err, size_t errlen)
{
	struct host_addr l, hh;
	struct ifaddrs *ifs, *i;
	char host[INET6_ADDRSTRLEN + 2];
	int rc = 0;

	if (cfg->insecure_listen)
		return 0;
	if (!http_host(cfg->http, host, sizeof(host)) && !parse_host(host, &hh) &&
	    !is_loopback(&hh)) {
		kc_errf(err, errlen,
			"http %s is not a loopback address and the network policy does not cover "
			"it (it filters the memcached port only): bind http to 127.0.0.1 (or "
			"[::1]), " INSECURE_HINT,
			cfg->http);
		return -EPERM;
	}
	if (parse_host(cfg->listen, &l) || is_loopback(&l))
		return 0; /* a bad address is kc_config_validate's to report */
	if (cfg->xdp_mode == KC_XDP_OFF) {
		kc_errf(err, errlen,
			"listen %s is not a loopback address and xdp-mode is off: nothing filters "
			"who reaches memcached. Listen on 127.0.0.1, or set xdp-mode and iface and "
			"listen on that interface's address, " INSECURE_HINT,
			cfg->listen);
		return -EPERM;
	}
	if (getifaddrs(&ifs)) {
		rc = -errno;
		kc_errf(err, errlen, "listen %s: cannot list the interfaces: %s", cfg->listen,
			strerror(errno));
		return rc;
	}
	bool on_iface = false;

	for (i = ifs; i && !rc; i = i->ifa_next) {
		const struct sockaddr *sa = i->ifa_addr;
		bool mine = !strcmp(i->ifa_name, cfg->iface);
		char shown[INET6_ADDRSTRLEN] = "?";

		if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
			continue;
		if (!is_wildcard(&l)) {
			on_iface |= mine && same_addr(&l, sa);
			continue;
		}
		/* 0.0.0.0 takes every IPv4 address; :: every address of both families */
		if (mine || (i->ifa_flags & IFF_LOOPBACK) ||
		    (l.family == AF_INET && sa->sa_family != AF_INET))
			continue;
		inet_ntop(sa->sa_family,
			  sa->sa_family == AF_INET
			      ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
			      : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr,
			  shown, sizeof(shown));
		kc_errf(err, errlen,
			"listen %s: memcached would answer on %s (%s), which XDP does not protect "
			"(it runs on iface %s only). Listen on an address of %s, " INSECURE_HINT,
			cfg->listen, i->ifa_name, shown, cfg->iface, cfg->iface);
		rc = -EPERM;
	}
	freeifaddrs(ifs);
	if (!rc && !is_wildcard(&l) && !on_iface) {
		kc_errf(err, errlen,
			"listen %s is not an address of iface %s, the interface XDP protects: "
			"listen on one of its addresses, " INSECURE_HINT,
			cfg->listen, cfg->iface);
		rc = -EPERM;
	}
	return rc;
}
