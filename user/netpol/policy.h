/* policy.h: the in-kernel network policy's manager: reads the policy (--net-policy, --allow),
 * loads and attaches bpf/policy.bpf.c in front of the kernel cache (user/netpol/policy_load.h),
 * swaps policies in atomically (user/netpol/policy_maps.h) at start, on SIGHUP and on kcachectl's
 * policy add/del/reload, reports the kernel's deny events (kc_pol_set_report), and exports
 * counters. Behaviour and formats: docs/network-policy.md.
 *
 * Threads: everything here runs on the main thread (its event base polls the event ring);
 * the metrics collector runs on the HTTP thread and takes p->lock.
 *
 * Names: the job's C names all start kc_pol_ / KC_POL_. The BPF maps keep their kc_policy_*
 * names: they are pinned under the pin path, where bpftool users and scripts find them.
 */
#ifndef KC_POLICY_H
#define KC_POLICY_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "netpol/policy_file.h"

struct kc_pol;

struct kc_pol_opts {
	struct event_base *base; /* main thread's: the event ring is polled there */
	const char *iface;
	enum kc_xdp_mode mode; /* KC_XDP_SKB or KC_XDP_NATIVE */
	const char *pin_path;
	bool persist;	    /* --net-policy-persist */
	uint32_t max_rules; /* --net-policy-max-rules */
	const char *file;   /* --net-policy, "" for the default protection */
	uint16_t port;	    /* memcached port: protected when the file has no protect list */
	const char *allow;  /* --allow prefixes, comma-separated ("" for none) */
};

/* Reads and checks the policy the options name (file, --allow, bounds) without touching the
 * kernel: what kcached does before anything else, so that a bad file exits 2 at start.
 * Returns 0, or a negative errno with "FILE:LINE: what was expected" in err. */
int kc_pol_check(const struct kc_pol_opts *o, char *err, size_t errlen);

/* Reads the policy, loads the program, swaps the policy in and attaches (or takes over a
 * pinned link, see policy_load.h). Returns NULL with a message in err. */
struct kc_pol *kc_pol_start(const struct kc_pol_opts *o, char *err, size_t errlen);

/* The prog array whose slot 0 the kernel cache fills (kc_policy_next). */
int kc_pol_next_fd(const struct kc_pol *p);

/* Where deny events are reported instead of the log: kind is the record type
 * ("net_policy_deny"), members the record's JSON object members without braces (len bytes, as
 * docs/audit-event.schema.json defines the type). Called on the main thread, from the policy's
 * event ring; must not block. server.c wires it to the audit stream (kc_audit_emit). */
typedef void (*kc_pol_report_fn)(void *ctx, const char *kind, const char *members, size_t len);

/* Deny events go to fn(ctx, ...) from now on (fn NULL: to the log, at most 20 lines a second).
 * p NULL is a no-op. Main thread. */
void kc_pol_set_report(struct kc_pol *p, kc_pol_report_fn fn, void *ctx);

/* Re-reads file (NULL: the --net-policy file; the default protection without one) and swaps
 * it in; runtime additions are dropped. On any error the running policy stays and err says
 * why. Main thread. Returns 0 or a negative errno. */
int kc_pol_reload(struct kc_pol *p, const char *file, char *err, size_t errlen);

/* Admin command "policy": list | add WORDS | del WORDS | reload [FILE]. ctx is the policy,
 * or NULL when it is off (then an error). */
int kc_pol_admin(void *ctx, int argc, char **argv, struct kc_buf *out);

/* Metrics collector: kcache_policy_* families. ctx may be NULL (off: zeros). */
void kc_pol_collect(void *ctx, struct kc_buf *out);

/* Persisting: leaves the policy enforced (pinned) and frees everything else. Otherwise
 * detaches and unpins. Call after the kernel cache has left the slot. NULL is allowed. */
void kc_pol_stop(struct kc_pol *p);

#endif
