/* audit_event.h: enrichment and JSON encoding of audit events.
 *
 * Two bounded tables, both 4-way set-associative with LRU replacement inside a set, and every
 * eviction counted:
 *   images   exec id of an image -> argv (fed by every exec record from the kernel; a process
 *            we never saw exec falls back to /proc/<pid>/cmdline while it lives)
 *   cgroups  cgroup v2 id -> path (from /proc/<pid>/cgroup checked against the id, else a
 *            bounded walk of the cgroup v2 mount, at most once a second)
 * Single-threaded: the ring buffer consumer owns it.
 */
#ifndef KC_AUDIT_EVENT_H
#define KC_AUDIT_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <kcache/audit.h>

#include "core/buf.h"
#include "core/json.h" /* kc_json_str, used with the encoder */

struct kc_audit_enrich;

struct kc_audit_enrich_stats {
	uint64_t image_evictions, image_misses;
	uint64_t cgroup_evictions, cgroup_misses;
};

/* images and cgroups are table sizes (rounded up to a multiple of 4); cgroup_root is the
 * cgroup v2 mount. node names the host in records. Returns NULL (ENOMEM). */
struct kc_audit_enrich *kc_audit_enrich_new(unsigned images, unsigned cgroups,
					    const char *cgroup_root, const char *node);
void kc_audit_enrich_free(struct kc_audit_enrich *e);

/* Learns an exec's argv. */
void kc_audit_enrich_exec(struct kc_audit_enrich *e, const struct kc_audit_exec *r);

/* Appends the record members of ev (no braces; see docs/audit-event.schema.json) to out.
 * rule is the rule's name; mono_to_real converts bpf_ktime_get_ns() to CLOCK_REALTIME.
 * Returns 0 or -ENOMEM. */
int kc_audit_encode_event(struct kc_audit_enrich *e, const struct kc_audit_event *ev,
			  const char *rule, int64_t mono_to_real, struct kc_buf *out);

void kc_audit_enrich_stats(const struct kc_audit_enrich *e, struct kc_audit_enrich_stats *out);

/* The container id in a cgroup path (docker, containerd, CRI-O, podman), or 0 when none:
 * fills id (65 bytes) and runtime ("docker", "containerd", "cri-o", "podman" or "unknown"). */
int kc_audit_container_id(const char *cgroup_path, char id[65], const char **runtime);

/* "<node>:<boot id prefix>:<exec_id>:<pid>": unique across the node's lifetime. */
void kc_audit_exec_id(const struct kc_audit_enrich *e, char *out, size_t len, uint64_t exec_id,
		      uint32_t pid);

#endif
