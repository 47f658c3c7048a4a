/* policy_maps.h: turns a struct kc_pol_spec (user/netpol/policy_file.h) into the entries of the
 * policy's double-buffered maps (include/kcache/policy.h) and swaps them in atomically.
 *
 * Compile: every prefix that has rules becomes one trie entry whose set holds its own rules and
 * those of every prefix that covers it, in precedence order (longest prefix, narrowest ports,
 * one protocol before both, then file order), so the program's first match is the answer; the
 * implicit loopback allows (127.0.0.0/8, ::1/128) come last among their equals. Every rule,
 * port default and loopback allow gets an id (its kc_policy_cnt counters); a rule that stays
 * the same across a swap keeps its id and so its counters.
 *
 * Apply (kc_pol_apply): compile; write the inactive buffer (only the entries that differ from
 * what it holds); flip kc_pol_cfg.active with one 32-bit store; wait for an RCU grace period,
 * after which no program reads the old buffer; zero the counters of ids that left, which may
 * then be given to new rules. A failure before the flip leaves the running policy untouched.
 *
 * Not thread-safe: one caller at a time (kcached's main thread).
 */
#ifndef KC_POLICY_MAPS_H
#define KC_POLICY_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kcache/policy.h>

#include "core/bpf_rcu.h"
#include "netpol/policy_file.h"

/* The maps, by fd, as the loader (user/netpol/policy_load.h) opened them. */
struct kc_pol_maps {
	int v4_fd[2], v6_fd[2], prt_fd[2], def_fd[2];
	int cnt_fd, tot_fd;
	struct kc_pol_cfg *cfg; /* kc_policy_cfg[0], mmapped */
	uint32_t max_ids;	/* kc_policy_cnt max_entries */
	uint32_t max_prefixes;	/* max_entries of each trie */
};

struct kc_pol_table;

/* What a compile gave each rule of the spec: its id, and the ids of the port defaults and
 * the implicit loopback allows (0 when the loopback allow is overridden). */
struct kc_pol_ids {
	uint32_t *rule;			 /* [spec.n_rules] */
	uint32_t prot[KC_POL_PORTS_MAX]; /* [spec.n_protect] */
	uint32_t loopback[2];		 /* 127.0.0.0/8, ::1/128 */
};

struct kc_pol_state {
	struct kc_pol_maps m;
	struct kc_rcu rcu;
	struct kc_pol_table *held[2]; /* what buffer i holds; NULL: unknown, cleared before use */
	/* ids: a ring of free ids (oldest freed first, so an id is reused as late as possible) */
	uint32_t *free_ring, free_head, free_n;
	struct kc_pol_idkey *keys; /* the active policy's identities, sorted, with their ids */
	uint32_t n_keys;
	struct kc_pol_spec spec; /* the active policy */
	struct kc_pol_ids ids;	 /* and its ids */
	uint64_t swaps;
};

/* Sets up the state over maps m (copied). known_empty: both buffers are fresh and empty (else
 * the inactive one is cleared before its first use, and the active one is left as it is until
 * the first flip). Returns 0 or a negative errno. */
int kc_pol_state_init(struct kc_pol_state *st, const struct kc_pol_maps *m, bool known_empty);
void kc_pol_state_free(struct kc_pol_state *st);

/* Compiles spec (kc_pol_spec_finish'ed) and swaps it in as described above; on success the
 * state takes a copy of spec. Returns 0, or a negative errno with the reason in err (a set
 * too large for a prefix, a full map, ...): the running policy is then unchanged. */
int kc_pol_apply(struct kc_pol_state *st, const struct kc_pol_spec *spec, char *err, size_t errlen);

/* Per-rule counters of id, summed over CPUs. Returns 0 or a negative errno. */
int kc_pol_read_cnt(const struct kc_pol_state *st, uint32_t id, struct kc_pol_cnt *out);

/* Every id's counters, summed over CPUs, into out[m.max_ids] (one batch read). Returns 0 or a
 * negative errno. */
int kc_pol_read_all_cnt(const struct kc_pol_state *st, struct kc_pol_cnt *out);

/* kc_policy_tot summed over CPUs. Returns 0 or a negative errno. */
int kc_pol_read_totals(const struct kc_pol_state *st, struct kc_pol_totals *out);

/* Label of an enum kc_pol_verdict ("allow", "would_deny", ...). */
const char *kc_pol_verdict_name(unsigned v);

/* Entries of the active policy: trie entries per family and protected ports. */
void kc_pol_sizes(const struct kc_pol_state *st, uint32_t *v4, uint32_t *v6, uint32_t *ports);

#endif
