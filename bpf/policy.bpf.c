// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* policy.bpf.c: the in-kernel network policy, the XDP program attached to the interface. It
 * decides on every UDP and TCP packet to a protected port by source prefix, protocol and port:
 * allow, deny (XDP_DROP) or limit (a per-source token bucket); everything it allows or does not
 * police goes on to the kernel cache (bpf/cache.bpf.c) through a tail call, or up the stack
 * when the cache is not loaded. Layout and map contract: include/kcache/policy.h; verdicts for
 * odd packets: docs/network-policy.md.
 *
 *   1. parse: source address, protocol, destination port (kc_parse_l4), behind any tags the
 *      stack would strip or hand to a VLAN device; more tags than walked -> invalid (drop);
 *      a loopback source off lo -> invalid (drop); not UDP/TCP with ports -> pass on;
 *   2. read the active buffer once; the port's default rule from kc_policy_prt_* and
 *      kc_policy_def_* (two inlined array lookups); not protected -> pass on;
 *   3. the longest prefix's rule set from the trie; the first rule that matches the port wins,
 *      else the port's default;
 *   4. count; allow -> on; limit -> GCRA bucket of (source, rule) on the precise clock; deny
 *      or over the rate -> report (at most one event per source and rule every 5 s) and drop,
 *      or in audit mode count "would" and go on.
 *
 * A plain deny is the path a flood takes, so it reads neither the precise clock (a TSC read,
 * slow in some VMs) nor the shared per-source LRU hash: its report state is a per-CPU slot
 * (kc_policy_rpt) on the coarse clock, which goes to kc_policy_src once per 5 s per CPU.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <kcache/policy.h>
#include "parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* CPUs whose kc_policy_rpt slots a deny report gathers at most (it stops at the last one). */
#ifndef KC_POL_CPUS_MAX
#define KC_POL_CPUS_MAX 4096
#endif

/* Linux's LOOPBACK_IFINDEX: lo is 1 in every network namespace. The program asks the packet,
 * not a load-time knob, because one program may be attached to several interfaces. */
#define KC_LOOPBACK_IFINDEX 1

/* One load that the compiler may neither repeat nor tear. */
#define KC_READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
/* Keeps the compiler from moving memory accesses across it (x86 keeps their order itself). */
#define kc_barrier()	    asm volatile("" ::: "memory")
#define KC_WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

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
		__uint(type, BPF_MAP_TYPE_ARRAY);                                                  \
		__uint(max_entries, KC_POL_PORT_SLOTS);                                            \
		__type(key, __u32);                                                                \
		__type(value, struct kc_pol_port);                                                 \
	} name SEC(".maps")

KC_POL_PORTS(kc_policy_prt_a);
KC_POL_PORTS(kc_policy_prt_b);

#define KC_POL_DEFS(name)                                                                          \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                                  \
		__uint(max_entries, KC_POL_PORTS_MAX + 1);                                         \
		__type(key, __u32);                                                                \
		__type(value, struct kc_pol_rule);                                                 \
	} name SEC(".maps")

KC_POL_DEFS(kc_policy_def_a);
KC_POL_DEFS(kc_policy_def_b);

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
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KC_POL_RPT_SLOTS);
	__type(key, __u32);
	__type(value, struct kc_pol_rpt);
} kc_policy_rpt SEC(".maps");

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

/* bpf_map_lookup_elem(active ? &b : &a, key) as two call sites: the verifier inlines an array
 * lookup, and calls a trie's directly, only where one call site sees one map. The barriers
 * keep clang from merging calls (these two, or the v4 and v6 tries') into one that takes
 * either map. */
#define KC_LOOKUP_AB(active, a, b, key)                                                            \
	({                                                                                         \
		void *_v;                                                                          \
		if (active) {                                                                      \
			_v = bpf_map_lookup_elem(&(b), key);                                       \
			barrier_var(_v);                                                           \
		} else {                                                                           \
			_v = bpf_map_lookup_elem(&(a), key);                                       \
			barrier_var(_v);                                                           \
		}                                                                                  \
		_v;                                                                                \
	})

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

/* Whether p's source is a loopback address: 127.0.0.0/8, ::1, or IPv4-mapped
 * ::ffff:127.0.0.0/104. Only lo carries such a source; anywhere else it is forged. */
static __always_inline int kc_src_loopback(const struct kc_pkt *p)
{
	if (!p->v6)
		return (bpf_ntohl(p->saddr[0]) >> 24) == 127;
	if (p->saddr[0] | p->saddr[1])
		return 0;
	if (!p->saddr[2])
		return p->saddr[3] == bpf_htonl(1);
	return p->saddr[2] == bpf_htonl(0xffff) && (bpf_ntohl(p->saddr[3]) >> 24) == 127;
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

static __always_inline int kc_src_eq(const struct kc_pol_src *a, const struct kc_pol_src *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2])) == 0;
}

/* Gathering the drops of one (source, rule) from every CPU's kc_policy_rpt slot. */
struct kc_gather {
	struct kc_pol_src key;
	__u32 slot;
	__u32 pad;
	__u64 sum;
};

/* Takes the drops of slot c that were not taken when it held taken t and count n: advances
 * taken from t to n with a compare-and-swap, so that of the slot's owner and a CPU gathering
 * for a report exactly one gets each drop. Returns how many it took (0 if the other did). */
static __always_inline __u64 kc_take(struct kc_pol_rpt *c, __u64 t, __u64 n)
{
	if (n == t || __sync_val_compare_and_swap(&c->taken, t, n) != t)
		return 0;
	return n - t;
}

/* bpf_loop callback: takes CPU cpu's drops of g->key; stops past the last CPU. The owner
 * changes a slot's key inside an odd gen (kc_deny_report), so a key, taken and count read
 * under one even gen belong together; a slot caught changing is left alone (its drops went
 * to kc_policy_src, for the next report). */
static long kc_gather_cpu(__u64 cpu, void *ctx)
{
	struct kc_gather *g = ctx;
	struct kc_pol_rpt *c = bpf_map_lookup_percpu_elem(&kc_policy_rpt, &g->slot, (__u32)cpu);
	__u32 gen;
	__u64 t, n;
	int same;

	if (!c)
		return 1;
	gen = KC_READ_ONCE(c->gen);
	kc_barrier();
	same = kc_src_eq(&c->key, &g->key);
	t = KC_READ_ONCE(c->taken);
	n = KC_READ_ONCE(c->count);
	kc_barrier();
	if (same && !(gen & 1) && KC_READ_ONCE(c->gen) == gen)
		g->sum += kc_take(c, t, n);
	return 0;
}

/* Sends a drop report of source k by rule k->rule, carrying count drops; with no room in
 * the ring buffer they go back to st, for the pair's next report. */
static __always_inline void kc_send(struct kc_pol_srcst *st, const struct kc_pol_src *k,
				    const struct kc_pkt *p, __u32 verdict, __u64 count)
{
	struct kc_pol_event *ev = bpf_ringbuf_reserve(&kc_policy_evt, sizeof(*ev), 0);

	if (!ev) {
		kc_total(KC_POL_V_EVENTS_LOST);
		__sync_fetch_and_add(&st->count, count);
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

/* Whether a report of the pair whose shared state is st is due at now, and if so, this CPU's
 * claim to send it: at most one CPU wins each period. *due: when the next one may be. */
static __always_inline int kc_report_due(struct kc_pol_srcst *st, __u64 now, __u64 *due)
{
	__u64 last = KC_READ_ONCE(st->last_ns), cur;

	/* last_ns 0: never reported. A clock behind the last report (a test clock) reports. */
	if (last && now >= last && now - last < KC_POL_REPORT_NS) {
		*due = last + KC_POL_REPORT_NS;
		return 0;
	}
	cur = __sync_val_compare_and_swap(&st->last_ns, last, now ? now : 1);
	*due = (cur == last ? now : cur) + KC_POL_REPORT_NS;
	return cur == last;
}

/* A limit drop (or would-limit) of k: an event if none went out for the pair in the last
 * KC_POL_REPORT_NS, carrying every drop since the last one; else it waits in st->count. */
static __always_inline void kc_limit_report(struct kc_pol_srcst *st, const struct kc_pol_src *k,
					    const struct kc_pkt *p, __u32 verdict, __u64 now)
{
	__u64 due;

	if (!kc_report_due(st, now, &due)) {
		__sync_fetch_and_add(&st->count, 1);
		return;
	}
	kc_send(st, k, p, verdict, __sync_lock_test_and_set(&st->count, 0) + 1);
}

/* A deny (or would-deny) of k, the flood's path: counted in this CPU's slot while no report
 * of the pair can be due (no clock but the coarse one, no shared cache line). Else
 * kc_policy_src decides, and the CPU that sends the event gathers the pair's drops from every
 * CPU's slot (and those kc_policy_src kept). A pair that takes the slot from another moves
 * the other's drops to its kc_policy_src state first, so a collision loses no count and sends
 * no extra event. */
static __always_inline void kc_deny_report(const struct kc_pol_src *k, const struct kc_pkt *p,
					   __u32 verdict, __u64 now)
{
	struct kc_gather g __attribute__((aligned(8))) = {.slot = kc_pol_rpt_slot(k)};
	struct kc_pol_rpt *c = bpf_map_lookup_elem(&kc_policy_rpt, &g.slot);
	struct kc_pol_srcst *st;
	__u64 due, old;

	if (!c) /* cannot happen: slot < KC_POL_RPT_SLOTS */
		return;
	if (kc_src_eq(&c->key, k)) {
		/* Only this CPU writes count: no locked instruction (it would wait for the
		 * store buffer to drain, and a flood's path writes much). */
		c->count++;
		/* A clock behind due_ns - KC_POL_REPORT_NS (a test clock) asks kc_policy_src. */
		if (now < c->due_ns && c->due_ns - now <= KC_POL_REPORT_NS)
			return;
	} else {
		/* The previous pair's drops that no report took go to its shared state; a CPU
		 * gathering may take some first, never the same ones (a second try covers it). */
		old = kc_take(c, KC_READ_ONCE(c->taken), c->count);
		old += kc_take(c, KC_READ_ONCE(c->taken), c->count);
		if (old && c->key.rule) {
			st = bpf_map_lookup_elem(&kc_policy_src, &c->key);
			if (st)
				__sync_fetch_and_add(&st->count, old);
		}
		KC_WRITE_ONCE(c->gen, c->gen + 1);
		kc_barrier();
		c->key = *k;
		c->due_ns = 0;
		kc_barrier();
		KC_WRITE_ONCE(c->gen, c->gen + 1);
		c->count++;
	}
	/* No state (the LRU cannot make room): the drops wait in the slot for the next one. */
	st = kc_src_state(k);
	if (!st)
		return;
	if (!kc_report_due(st, now, &due)) {
		c->due_ns = due;
		return;
	}
	c->due_ns = due;
	g.key = *k;
	bpf_loop(KC_POL_CPUS_MAX, kc_gather_cpu, &g, 0);
	kc_send(st, k, p, verdict, __sync_lock_test_and_set(&st->count, 0) + g.sum);
}

SEC("xdp")
int kc_policy(struct xdp_md *ctx)
{
	struct kc_pkt p = {};
	struct kc_pol_src sk __attribute__((aligned(8))) = {};
	const struct kc_pol_rule *def, *r;
	const struct kc_pol_port *pp;
	const struct kc_pol_set *set;
	struct kc_pol_srcst *st;
	struct kc_pol_cnt *cnt;
	struct kc_pol_cfg *cfg;
	__u32 zero = 0, active, audit, verdict, id, key;
	int res;

	res = kc_parse_l4(ctx, &p);
	/* The implicit loopback allows (and any rule) hold on lo only: elsewhere the stack would
	 * drop the packet as a martian, but the kernel tier would answer it before that. Any
	 * port, since the kernel tier's need not be protected. */
	if (res == KC_L4_PORTS && ctx->ingress_ifindex != KC_LOOPBACK_IFINDEX &&
	    kc_src_loopback(&p))
		res = KC_L4_INVALID;
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

	key = p.dport;
	pp = KC_LOOKUP_AB(active, kc_policy_prt_a, kc_policy_prt_b, &key);
	key = pp ? (p.proto == KC_POL_PROTO_TCP ? pp->tcp : pp->udp) : 0;
	def = key ? KC_LOOKUP_AB(active, kc_policy_def_a, kc_policy_def_b, &key) : NULL;
	if (!def || def->action == KC_POL_NONE) {
		kc_total(KC_POL_V_PASS);
		return kc_next(ctx);
	}
	if (p.v6) {
		struct kc_pol_v6 k6 = {.prefixlen = 128};

		__builtin_memcpy(k6.addr, p.saddr, 16);
		set = KC_LOOKUP_AB(active, kc_policy_v6_a, kc_policy_v6_b, &k6);
	} else {
		struct kc_pol_v4 k4 = {.prefixlen = 32};

		__builtin_memcpy(k4.addr, p.saddr, 4);
		set = KC_LOOKUP_AB(active, kc_policy_v4_a, kc_policy_v4_b, &k4);
	}
	r = kc_match(set, def, &p);

	id = r->id;
	cnt = bpf_map_lookup_elem(&kc_policy_cnt, &id);
	if (cnt) {
		cnt->packets++;
		cnt->bytes += p.frame_len;
	}
	if (r->action == KC_POL_ALLOW) {
		kc_total(KC_POL_V_ALLOW);
		return kc_next(ctx);
	}

	__builtin_memcpy(sk.addr, p.saddr, 16);
	sk.rule = id;
	sk.v6 = p.v6;
	if (r->action == KC_POL_LIMIT) {
		__u64 now = cfg->clock_ns ? cfg->clock_ns : bpf_ktime_get_ns();

		/* No state (the LRU could not make room): over the rate, as safest. */
		st = kc_src_state(&sk);
		if (st && kc_bucket_take(st, r, now)) {
			kc_total(KC_POL_V_ALLOW);
			return kc_next(ctx);
		}
		verdict = audit ? KC_POL_V_WOULD_LIMIT : KC_POL_V_LIMIT;
		if (st)
			kc_limit_report(st, &sk, &p, verdict, now);
	} else {
		verdict = audit ? KC_POL_V_WOULD_DENY : KC_POL_V_DENY;
		kc_deny_report(&sk, &p, verdict,
			       cfg->clock_ns ? cfg->clock_ns : bpf_ktime_get_coarse_ns());
	}
	if (cnt)
		cnt->drops++;
	kc_total(verdict);
	return audit ? kc_next(ctx) : XDP_DROP;
}
