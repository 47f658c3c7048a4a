// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* policy.bpf.c: the in-kernel network policy, the XDP program attached to the interface. It
 * decides on every UDP and TCP packet to a protected port by source prefix, protocol and port:
 * allow, deny (XDP_DROP) or limit (a per-source token bucket); everything it allows or does not
 * police goes on to the kernel cache (bpf/cache.bpf.c) through a tail call, or up the stack
 * when the cache is not loaded. Layout and map contract: include/kcache/policy.h; verdicts for
 * odd packets: docs/network-policy.md.
 *
 *   1. parse: source address, protocol, destination port (kc_parse_l4); not UDP/TCP with
 *      ports -> pass on;
 *   2. read the active buffer once; the port's default rule from kc_policy_prt_*; not
 *      protected -> pass on;
 *   3. the longest prefix's rule set from the trie; the first rule that matches the port wins,
 *      else the port's default;
 *   4. count; allow -> on; limit -> GCRA bucket of (source, rule); deny or over the rate ->
 *      report (at most one event per source and rule every 5 s) and drop, or in audit mode
 *      count "would" and go on.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <kcache/policy.h>
#include "parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* One load that the compiler may neither repeat nor tear. */
#define KC_READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct kc_pol_cfg);
} kc_policy_cfg SEC(".maps");

/* The tries are sized by the loader (--net-policy-max-rules); LPM tries must not preallocate. */
#define KC_POL_TRIE(name, keytype)                                                                 \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);                                               \
		__uint(max_entries, KC_POL_RULES_DEFAULT);                                         \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                              \
		__type(key, keytype);                                                              \
		__type(value, struct kc_pol_set);                                                  \
	} name SEC(".maps")

KC_POL_TRIE(kc_policy_v4_a, struct kc_pol_v4);
KC_POL_TRIE(kc_policy_v4_b, struct kc_pol_v4);
KC_POL_TRIE(kc_policy_v6_a, struct kc_pol_v6);
KC_POL_TRIE(kc_policy_v6_b, struct kc_pol_v6);

#define KC_POL_PORTS(name)                                                                         \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_HASH);                                                   \
		__uint(max_entries, KC_POL_PORTS_MAX);                                             \
		__type(key, struct kc_pol_port);                                                   \
		__type(value, struct kc_pol_rule);                                                 \
	} name SEC(".maps")

KC_POL_PORTS(kc_policy_prt_a);
KC_POL_PORTS(kc_policy_prt_b);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KC_POL_RULES_DEFAULT);
	__type(key, __u32);
	__type(value, struct kc_pol_cnt);
} kc_policy_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kc_pol_totals);
} kc_policy_tot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KC_POL_SOURCES_DEFAULT);
	__type(key, struct kc_pol_src);
	__type(value, struct kc_pol_srcst);
} kc_policy_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} kc_policy_evt SEC(".maps");

/* Slot 0: what runs after the policy (the kernel cache's kc_cache), or nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} kc_policy_next SEC(".maps");

static __always_inline void kc_total(__u32 v)
{
	__u32 zero = 0;
	struct kc_pol_totals *t = bpf_map_lookup_elem(&kc_policy_tot, &zero);

	if (t && v < KC_POL_V__MAX)
		t->v[v]++;
}

/* Pass the packet on: to the cache if it is loaded, else up the stack. */
static __always_inline int kc_next(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &kc_policy_next, 0);
	return XDP_PASS;
}

/* The rule that applies: the first of the set that matches, else the port's default. */
static __always_inline const struct kc_pol_rule *
kc_match(const struct kc_pol_set *set, const struct kc_pol_rule *def, const struct kc_pkt *p)
{
	__u32 n;

	if (!set)
		return def;
	n = set->n;
#pragma unroll
	for (int i = 0; i < KC_POL_SET_MAX; i++) {
		const struct kc_pol_rule *r = &set->r[i];

		if (i >= n)
			break;
		if ((r->proto == KC_POL_PROTO_ANY || r->proto == p->proto) &&
		    p->dport >= r->port_lo && p->dport <= r->port_hi)
			return r;
	}
	return def;
}

/* The (source, rule) state, created if absent. NULL only if the LRU cannot make room. */
static __always_inline struct kc_pol_srcst *kc_src_state(const struct kc_pol_src *k)
{
	struct kc_pol_srcst *st = bpf_map_lookup_elem(&kc_policy_src, k);
	struct kc_pol_srcst fresh = {};

	if (st)
		return st;
	/* Two CPUs may race to create it: one wins, the other finds the winner's. */
	bpf_map_update_elem(&kc_policy_src, k, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&kc_policy_src, k);
}

/* GCRA: one token per interval_ns, burst at once. Returns 1 if the packet conforms. The
 * compare-and-swap keeps the count exact when CPUs take from one bucket at once; an update
 * that keeps losing the race is over the rate. */
static __always_inline int kc_bucket_take(struct kc_pol_srcst *st, const struct kc_pol_rule *r,
					  __u64 now)
{
	__u64 t = r->interval_ns, tau = t * (r->burst ? r->burst - 1 : 0);

#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u64 old = KC_READ_ONCE(st->tat), tat = old > now ? old : now;

		if (tat - now > tau)
			return 0;
		if (__sync_val_compare_and_swap(&st->tat, old, tat + t) == old)
			return 1;
	}
	return 0;
}

/* A drop (or audit-mode would-drop) of this source by rule r: an event if none went out for
 * this (source, rule) in the last KC_POL_REPORT_NS, carrying the drops since the last one. */
static __always_inline void kc_report(struct kc_pol_srcst *st, const struct kc_pol_src *k,
				      const struct kc_pkt *p, __u32 verdict, __u64 now)
{
	struct kc_pol_event *ev;
	__u64 count, last;

	if (!st)
		return;
	__sync_fetch_and_add(&st->count, 1);
	/* last_ns 0: never reported. A clock behind the last report (a test clock) reports. */
	last = KC_READ_ONCE(st->last_ns);
	if (last && now >= last && now - last < KC_POL_REPORT_NS)
		return;
	/* Exactly one CPU sends the event for this period. */
	if (__sync_val_compare_and_swap(&st->last_ns, last, now ? now : 1) != last)
		return;
	count = __sync_lock_test_and_set(&st->count, 0);
	ev = bpf_ringbuf_reserve(&kc_policy_evt, sizeof(*ev), 0);
	if (!ev) {
		kc_total(KC_POL_V_EVENTS_LOST);
		__sync_fetch_and_add(&st->count, count); /* reported with the next event */
		return;
	}
	ev->mono_ns = bpf_ktime_get_ns();
	ev->rule = k->rule;
	ev->count = count > 0xffffffffULL ? 0xffffffffU : (__u32)count;
	__builtin_memcpy(ev->addr, k->addr, 16);
	ev->dport = p->dport;
	ev->proto = p->proto;
	ev->v6 = (__u8)p->v6;
	ev->verdict = (__u8)verdict;
	ev->pad[0] = ev->pad[1] = ev->pad[2] = 0;
	bpf_ringbuf_submit(ev, 0);
}

SEC("xdp")
int kc_policy(struct xdp_md *ctx)
{
	struct kc_pkt p = {};
	struct kc_pol_port pk = {};
	struct kc_pol_src sk = {};
	const struct kc_pol_rule *def, *r;
	const struct kc_pol_set *set;
	struct kc_pol_srcst *st = NULL;
	struct kc_pol_cnt *cnt;
	struct kc_pol_cfg *cfg;
	__u32 zero = 0, active, audit, verdict, id;
	__u64 now;
	int res;

	res = kc_parse_l4(ctx, &p);
	cfg = bpf_map_lookup_elem(&kc_policy_cfg, &zero);
	if (!cfg) /* cannot happen: a one-element array */
		return kc_next(ctx);
	/* The buffer is chosen once; everything below reads that one policy. */
	active = KC_READ_ONCE(cfg->active);
	audit = active ? cfg->audit[1] : cfg->audit[0];
	if (res == KC_L4_INVALID) {
		kc_total(KC_POL_V_INVALID);
		return audit ? kc_next(ctx) : XDP_DROP;
	}
	if (res != KC_L4_PORTS) {
		kc_total(KC_POL_V_PASS);
		return kc_next(ctx);
	}

	pk.port = p.dport;
	pk.proto = p.proto;
	def =
	    bpf_map_lookup_elem(active ? (void *)&kc_policy_prt_b : (void *)&kc_policy_prt_a, &pk);
	if (!def) {
		kc_total(KC_POL_V_PASS);
		return kc_next(ctx);
	}
	if (p.v6) {
		struct kc_pol_v6 k6 = {.prefixlen = 128};

		__builtin_memcpy(k6.addr, p.saddr, 16);
		set = bpf_map_lookup_elem(
		    active ? (void *)&kc_policy_v6_b : (void *)&kc_policy_v6_a, &k6);
	} else {
		struct kc_pol_v4 k4 = {.prefixlen = 32};

		__builtin_memcpy(k4.addr, p.saddr, 4);
		set = bpf_map_lookup_elem(
		    active ? (void *)&kc_policy_v4_b : (void *)&kc_policy_v4_a, &k4);
	}
	r = kc_match(set, def, &p);

	id = r->id;
	cnt = bpf_map_lookup_elem(&kc_policy_cnt, &id);
	if (cnt) {
		cnt->packets++;
		cnt->bytes += bpf_xdp_get_buff_len(ctx);
	}
	if (r->action == KC_POL_ALLOW) {
		kc_total(KC_POL_V_ALLOW);
		return kc_next(ctx);
	}

	now = cfg->clock_ns ? cfg->clock_ns : bpf_ktime_get_ns();
	__builtin_memcpy(sk.addr, p.saddr, 16);
	sk.rule = id;
	sk.v6 = p.v6;
	st = kc_src_state(&sk);
	if (r->action == KC_POL_LIMIT) {
		/* No state (the LRU could not make room): over the rate, as safest. */
		if (st && kc_bucket_take(st, r, now)) {
			kc_total(KC_POL_V_ALLOW);
			return kc_next(ctx);
		}
		verdict = audit ? KC_POL_V_WOULD_LIMIT : KC_POL_V_LIMIT;
	} else {
		verdict = audit ? KC_POL_V_WOULD_DENY : KC_POL_V_DENY;
	}
	if (cnt)
		cnt->drops++;
	kc_total(verdict);
	kc_report(st, &sk, &p, verdict, now);
	return audit ? kc_next(ctx) : XDP_DROP;
}
