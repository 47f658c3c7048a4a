/* audit.h: the syscall audit module of kcached: loads bpf/audit.bpf.c, compiles the policy
 * into its maps, consumes the ring buffer, and writes the hash-chained JSON-lines stream to
 * its sinks. Architecture, bounds and formats: docs/audit.md.
 *
 * Threads: one ring-buffer consumer (enrichment, encoding, gap records, kernel counters) and
 * one thread per sink. The main thread only starts, reloads and stops the module; the metrics
 * collector runs on the HTTP thread. Nothing here ever blocks the cache's threads.
 */
#ifndef KC_AUDIT_H
#define KC_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct kc_admin;

struct kc_audit_opts {
	const char *policy;	  /* YAML policy file (required) */
	const char *key;	  /* HMAC key file, mode 0600 (required) */
	const char *log;	  /* file, or "-" for stdout; NULL/"" for none */
	uint64_t log_max_size;	  /* rotate past this many bytes */
	unsigned log_max_files;	  /* files kept, the current one included (>= 2) */
	const char *redis_stream; /* a --redis URL, the stream key last; NULL/"" none */
	uint64_t redis_maxlen;	  /* XADD MAXLEN ~ */
	uint64_t ring_size;	  /* BPF ring buffer bytes (power of two) */
	uint64_t queue_bytes;	  /* bound of each sink's queue */
	unsigned checkpoint_s;	  /* seconds between checkpoint records */
	const char *pin_path;	  /* maps are pinned under <pin_path>/audit/ ("" : not pinned) */
	const char *cgroup_root;  /* cgroup v2 mount (default /sys/fs/cgroup/unified, or
				   * /sys/fs/cgroup when that is cgroup2) */
};

struct kc_audit;

/* Loads the policy and the BPF programs, attaches them and starts the threads. Returns NULL
 * with a message in err: a bad policy gives "FILE:LINE: ..."; no BPF gives the reason. */
struct kc_audit *kc_audit_start(const struct kc_audit_opts *o, char *err, size_t errlen);

/* Re-reads the policy file. On any error the running policy stays active and err says why
 * (also written into the stream as a policy record). Main thread. Returns 0 or -errno. */
int kc_audit_reload(struct kc_audit *a, char *err, size_t errlen);

/* Adds a record of another module to the stream (every sink and `audit tail`), e.g. the
 * network policy's "net_policy_deny": the record is "time", "node", "type":type, then members
 * (JSON object members without braces, "" for none), which must follow the type's definition in
 * docs/audit-event.schema.json. Thread-safe; never blocks (a full sink counts a drop). NULL a
 * is allowed (nothing happens). Returns 0 or -ENOMEM. */
int kc_audit_emit(struct kc_audit *a, const char *type, const char *members, size_t len);

/* Registers "audit" (status, reload, tail) on the admin socket. Returns 0 or -errno. */
int kc_audit_register_admin(struct kc_audit *a, struct kc_admin *admin);

/* Detaches the programs, drains the ring buffer and the sinks (final gap and checkpoint
 * records) and frees everything. NULL is allowed. */
void kc_audit_stop(struct kc_audit *a);

#endif
