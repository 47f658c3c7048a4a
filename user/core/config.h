/* config.h: kcached's configuration, one table of directives (config.c) read from defaults,
 * then a YAML file (--config), then command-line flags, each later source overriding.
 *
 * Every directive is both a flag (--name) and a YAML key (name). Unknown keys and bad values
 * are rejected with the source (file:line or the flag) and what was expected. A list directive
 * (allow) takes a YAML list, and its flag may be repeated; every value adds to the list.
 */
#ifndef KC_CONFIG_H
#define KC_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

/* Room for the allow list, commas included (the network policy takes at most 64 --allow
 * prefixes, netpol/policy.c; longer lists belong in a net-policy file). */
#define KC_CONFIG_ALLOW_BYTES 2048

enum kc_xdp_mode { KC_XDP_OFF, KC_XDP_SKB, KC_XDP_NATIVE };

struct kc_config {
	char listen[64];	 /* address for memcached TCP and UDP */
	uint32_t port;		 /* memcached TCP and UDP port */
	bool udp;		 /* serve memcached over UDP too */
	bool udp_writes;	 /* UDP may mutate (set, delete, incr, ...); off: reads only */
	uint64_t udp_max_reply;	 /* most bytes sent back for one UDP datagram, headers included */
	bool allow_flush;	 /* the protocol's flush_all (TCP only; this node, until restart) */
	char http[80];		 /* host:port of the HTTP listener (/metrics, /healthz) */
	uint32_t http_max_conns; /* HTTP connections at once */
	uint32_t http_header_timeout; /* seconds for a whole HTTP request header */
	bool insecure_listen;	      /* allow listeners the network policy does not cover */
	char iface[IF_NAMESIZE];
	enum kc_xdp_mode xdp_mode;
	uint64_t memory;   /* memory tier bytes */
	uint64_t item_max; /* largest item (key + value) */
	char data_dir[256];
	uint32_t threads;	   /* worker threads; 0 = one per CPU */
	uint32_t max_conns;	   /* per daemon */
	uint32_t request_timeout;  /* s for an incomplete command to complete; 0 = off */
	uint32_t idle_timeout;	   /* s a connection may idle; 0 = off */
	uint64_t conn_budget;	   /* connection buffer bytes; 0 = memory / 4 */
	uint32_t kernel_entries;   /* kernel tier: most resident keys */
	uint32_t kernel_max_value; /* kernel tier: largest value served */
	char pin_path[128];
	char admin_socket[108];
	enum kc_log_level log_level;
	/* Syscall audit (user/audit/audit.h); off unless audit_policy is set. */
	char audit_policy[256];
	char audit_log[256];	      /* file, or - for stdout */
	char audit_key[256];	      /* HMAC key file, mode 0600 */
	uint64_t audit_log_max_size;  /* rotate past this size */
	uint32_t audit_log_max_files; /* files kept, the current one included */
	char audit_redis_stream[512]; /* a --redis URL, the stream key last */
	uint32_t audit_redis_maxlen;  /* XADD MAXLEN ~ */
	uint64_t audit_ring_size;     /* BPF ring buffer bytes */
	uint64_t audit_queue_size;    /* each sink's queue bound */
	uint32_t audit_checkpoint;    /* seconds between checkpoint records */
	/* Lower tiers (user/tiers/tier.h): Redis and the object store; off when neither is set. */
	char redis[512];		     /* redis://, rediss://, redis+sentinel:// URL */
	char redis_password_file[256];	     /* password for redis, kept out of argv */
	char audit_redis_password_file[256]; /* the same for audit-redis-stream */
	char redis_prefix[48];		     /* prefix of every Redis key and channel */
	uint32_t redis_timeout_ms;	     /* per command */
	/* us a worker polls for a Redis reply before sleeping (0: never) */
	uint32_t redis_busy_poll_us;
	char store[512];	   /* s3://bucket/prefix?...; default: data-dir/store */
	uint64_t store_max;	   /* directory store size limit */
	uint32_t store_timeout_ms; /* per S3 request */
	char write_mode[16];	   /* through | behind */
	uint32_t negative_ttl_ms;  /* how long "found nowhere" is remembered */
	uint64_t compress_min;	   /* compress values from this size (0 = never) */
	uint32_t wb_queue;	   /* write-behind: most pending writes */
	uint64_t wb_queue_bytes;   /* write-behind: most pending bytes */
	uint32_t wb_attempts;	   /* write-behind: attempts before a dead letter */
	uint32_t breaker_failures; /* failures in a row that open a tier's breaker */
	uint32_t breaker_reset_ms; /* how long an open breaker waits before probing */
	uint32_t node_id;	   /* 0..255, in write versions; 256 = random */
	/* In-kernel network policy (user/netpol/policy.h); on whenever xdp_mode is not off. */
	char net_policy[256];		   /* policy file; "" for the default protection */
	char allow[KC_CONFIG_ALLOW_BYTES]; /* --allow prefixes, comma-separated */
	bool net_policy_persist;	   /* keep enforcing after exit (pinned link) */
	uint32_t net_policy_max_rules;	   /* prefixes per trie, rule ids */
	/* pin worker i to the i-th allowed CPU (mod their number) */
	bool pin_workers;
};

/* Fills cfg with the embedded defaults. Cannot fail. */
void kc_config_defaults(struct kc_config *cfg);

/* Reads a YAML mapping of directive: scalar from path, a regular file of at most 1 MiB
 * (core/yaml.h). Returns 0, or -EINVAL / -EFBIG / -errno with a message such as
 * "kcached.yaml:3: memory: expected a size (bytes, K, M, G), got 'lots'" in err.
 * On error cfg may be partly updated: callers load into a copy. */
int kc_config_load_yaml(struct kc_config *cfg, const char *path, char *err, size_t errlen);

/* Parses argv: --config FILE is read first, then every other flag. Returns 0, 1 when --help or
 * --version was printed (the caller exits 0), or -EINVAL with a message in err. */
int kc_config_parse_args(struct kc_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Checks constraints between directives (e.g. memory >= 2 * item_max). */
int kc_config_validate(const struct kc_config *cfg, char *err, size_t errlen);

/* Reads redis-password-file and audit-redis-password-file, when set, into the userinfo of the
 * redis and audit-redis-stream URLs (%XX-encoded: ":PASS@" after the scheme, or "user:PASS@"
 * when the URL names a user), so that the password is never in /proc/PID/cmdline. A file must
 * be a regular file not readable or writable by group or others (0600 or 0400), its first line
 * the password (a final newline is dropped). kc_config_parse_args calls it before validating.
 * Returns 0, or -errno/-EINVAL/-EPERM with a message that never contains the password (e.g.
 * "redis-password-file /etc/kcache/redis.pw: mode 0644 lets group or others read it: chmod
 * 600 it"). */
int kc_config_read_password_files(struct kc_config *cfg, char *err, size_t errlen);

/* Refuses listeners that nothing protects, unless insecure_listen is set: memcached on a
 * non-loopback address with xdp-mode off; memcached on a wildcard address (0.0.0.0, ::) while
 * an interface other than iface (and loopback) has an address of that family; memcached on a
 * specific address that is not iface's; HTTP on a non-loopback address (the network policy
 * covers the memcached port only). Reads the interfaces (getifaddrs) of the calling process's
 * network namespace, so call it where the daemon runs. Returns 0, -EPERM with what is
 * unprotected and the two ways out in err, or -errno when the interfaces cannot be read. */
int kc_config_check_exposure(const struct kc_config *cfg, char *err, size_t errlen);

/* Parses "64M" style sizes (bytes, K, M, G, T; powers of 1024). Returns 0 or -EINVAL. */
int kc_parse_size(const char *s, uint64_t *out);

/* Prints the directive table (name, default, help) to stdout. */
void kc_config_usage(const char *prog);

const char *kc_xdp_mode_name(enum kc_xdp_mode m);

#endif
