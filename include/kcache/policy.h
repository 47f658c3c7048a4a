/* policy.h: data layout of the in-kernel network policy, shared by bpf/policy.bpf.c and the
 * daemon (user/netpol/policy*.c). Layout only: fixed-width types, explicit padding, a size assert
 * on every struct that crosses the kernel boundary. Map definitions stay in bpf/; how a policy file
 * becomes these entries is user/netpol/policy_maps.h; the meaning of a verdict is
 * docs/network-policy.md.
 *
 * Maps (BTF-typed; pinned under <pin-path>/, e.g. /sys/fs/bpf/kcache/kc_policy_v4_a):
 *
 *   kc_policy_cfg    ARRAY (mmap)  0 -> struct kc_pol_cfg     active buffer, audit mode
 *   kc_policy_v4_a/b LPM_TRIE      struct kc_pol_v4 -> struct kc_pol_set   IPv4 source prefixes
 *   kc_policy_v6_a/b LPM_TRIE      struct kc_pol_v6 -> struct kc_pol_set   IPv6 source prefixes
 *   kc_policy_prt_a/b ARRAY        port -> struct kc_pol_port     protected ports: the slot of
 *                                                                 their default, per protocol
 *   kc_policy_def_a/b ARRAY        slot -> struct kc_pol_rule     those defaults (slot 0 unused)
 *   kc_policy_cnt    PERCPU_ARRAY  rule id -> struct kc_pol_cnt   per-rule counters
 *   kc_policy_tot    PERCPU_ARRAY  0 -> struct kc_pol_totals      per-verdict totals
 *   kc_policy_src    LRU_HASH      struct kc_pol_src -> struct kc_pol_srcst  token buckets and
 *                                                                        deny-report state
 *   kc_policy_rpt    PERCPU_ARRAY  kc_pol_rpt_slot(key) -> struct kc_pol_rpt  per-CPU front of
 *                                  kc_policy_src for deny reports (see below)
 *   kc_policy_evt    RINGBUF       struct kc_pol_event, at most one per (source, rule) per 5 s
 *   kc_policy_next   PROG_ARRAY    slot 0: the kernel cache program (kc_cache), or empty
 *
 * Double buffer: the _a and _b maps are two complete policies. The daemon fills the inactive
 * one, then flips kc_pol_cfg.active with one aligned 32-bit store; the program reads it once
 * per packet, so every packet sees one whole policy, never a mix or an empty one.
 *
 * Precedence: the longest matching prefix's set holds its own rules and every rule of the
 * prefixes that cover it, sorted by the daemon so that the first rule that matches the packet
 * (protocol and destination port) is the one that applies: longest prefix first, then the
 * narrowest port range, then a rule for one protocol before one for both, then file order.
 * No rule matching: the protected port's default (kc_policy_def_*) applies.
 *
 * Ports are arrays, not a hash of (port, protocol): the verifier inlines an array lookup into a
 * few instructions, while a hash lookup is a call that hashes and compares the key.
 *
 * Deny reports: kc_policy_src holds, per (source, rule), when the last event went out, shared
 * by every CPU, so that at most one event per pair goes out every KC_POL_REPORT_NS. A plain
 * deny does not go there on every packet: kc_policy_rpt, per CPU and direct-mapped by a hash
 * of the pair, holds one pair per slot, this CPU's drops of it, and the time before which no
 * report of it can be due; until then a drop only adds to the slot (coarse clock, no shared
 * cache line). After that time kc_policy_src decides, and the CPU that sends the event takes
 * the pair's drops from every CPU's slot and from kc_policy_src, where a pair pushed out of a
 * slot by another leaves them. So an event carries every drop since the previous one, and a
 * slot collision costs the kc_policy_src lookup a slot hit saves, never an event.
 */
#ifndef KCACHE_POLICY_H
#define KCACHE_POLICY_H

#if !defined(__bpf__) && !defined(__BPF__)
#include <linux/types.h>
#endif

/* Rules one prefix carries, inherited ones included; the daemon refuses a policy that needs
 * more. Changing it changes struct kc_pol_set (rebuild both sides). */
#define KC_POL_SET_MAX 8
/* Default of --net-policy-max-rules: rule ids (kc_policy_cnt), and prefixes per trie. */
#define KC_POL_RULES_DEFAULT 131072
/* Rule ids below this are the daemon's own (loopback allows, port defaults). */
#define KC_POL_ID_RESERVED 1
/* Protected (protocol, port) pairs at most; kc_policy_def_* has one more entry (slot 0). */
#define KC_POL_PORTS_MAX 256
/* kc_policy_prt_* entries: one per port. */
#define KC_POL_PORT_SLOTS 65536
/* Sources tracked at once for token buckets and deny reports (LRU: the oldest go first). */
#define KC_POL_SOURCES_DEFAULT 65536
/* At most one deny event per (source, rule) this often. */
#define KC_POL_REPORT_NS 5000000000ULL
/* kc_policy_rpt slots per CPU (a power of two). */
#ifndef KC_POL_RPT_SLOTS
#define KC_POL_RPT_SLOTS 4096
#endif
/* IPv6 extension headers the program walks to find the ports; a longer chain is dropped as
 * KC_POL_V_INVALID (docs/network-policy.md). */
#define KC_POL_V6_EXT_MAX 4
/* 802.1Q / 802.1ad tags the program walks to find the IP header; a frame still tagged after
 * them is dropped as KC_POL_V_INVALID (docs/network-policy.md). */
#define KC_POL_VLAN_MAX 4
/* Rate-limit bounds: packets per second and burst. */
#define KC_POL_RATE_MAX	 100000000U
#define KC_POL_BURST_MAX 1000000U

/* kc_pol_rule.proto: IP protocol numbers, 0 for either. */
#define KC_POL_PROTO_ANY 0
#define KC_POL_PROTO_TCP 6
#define KC_POL_PROTO_UDP 17

enum kc_pol_action {
	KC_POL_NONE = 0,
	KC_POL_ALLOW = 1,
	KC_POL_DENY = 2,
	KC_POL_LIMIT = 3, /* allow up to rate packets/s per source, burst at once; drop the rest */
};

/* LPM trie keys: prefix length in bits, then the address in network order. */
struct kc_pol_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};
_Static_assert(sizeof(struct kc_pol_v4) == 8, "kc_pol_v4 layout");

struct kc_pol_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};
_Static_assert(sizeof(struct kc_pol_v6) == 20, "kc_pol_v6 layout");

/* One rule as the program applies it. Also the value of kc_policy_def_* (a port's default:
 * port_lo = port_hi = the port, prefixlen 0). */
struct kc_pol_rule {
	__u32 id;		/* kc_policy_cnt index; names the rule in events and metrics */
	__u16 port_lo, port_hi; /* destination ports, host order, inclusive */
	__u8 proto;		/* KC_POL_PROTO_TCP, _UDP, or _ANY */
	__u8 action;		/* enum kc_pol_action */
	__u8 prefixlen;		/* of the prefix the rule was written for */
	__u8 pad;		/* zero */
	__u32 burst;		/* limit: packets at once, >= 1 */
	__u32 interval_ns;	/* limit: nanoseconds per packet, 1e9 / rate */
};
_Static_assert(sizeof(struct kc_pol_rule) == 20, "kc_pol_rule layout");

/* Trie value: the rules that can apply to a source under this prefix, in precedence order. */
struct kc_pol_set {
	__u32 n; /* rules used, 1..KC_POL_SET_MAX */
	struct kc_pol_rule r[KC_POL_SET_MAX];
};
_Static_assert(sizeof(struct kc_pol_set) == 4 + 20 * KC_POL_SET_MAX, "kc_pol_set layout");

/* kc_policy_prt_* value, at index port (host order): where the port's default rule is in
 * kc_policy_def_*, per protocol; 0: that protocol is not protected on that port. */
struct kc_pol_port {
	__u16 udp;
	__u16 tcp;
};
_Static_assert(sizeof(struct kc_pol_port) == 4, "kc_pol_port layout");

/* kc_policy_cfg value (one element, mmapable). Only active changes while the program runs,
 * by one aligned 32-bit store; audit[i] is written before buffer i becomes active. */
struct kc_pol_cfg {
	__u32 active;	/* 0: the _a maps are in force, 1: the _b maps */
	__u32 audit[2]; /* per buffer: 1 = count "would deny/limit", drop nothing */
	__u32 pad;
	__u64 clock_ns; /* 0 in production; BPF_PROG_TEST_RUN tables set a fixed clock here */
};
_Static_assert(sizeof(struct kc_pol_cfg) == 24, "kc_pol_cfg layout");

/* kc_policy_cnt value, per CPU. */
struct kc_pol_cnt {
	__u64 packets; /* matched the rule */
	__u64 bytes;   /* their frame bytes */
	__u64 drops;   /* of those, dropped (or, in audit mode, that would have been) */
};
_Static_assert(sizeof(struct kc_pol_cnt) == 24, "kc_pol_cnt layout");

/* What happened to a packet: kc_policy_tot's counters, and kc_pol_event.verdict. Stable
 * numbers; names in user/netpol/policy_maps.c (metric label action="..."). */
enum kc_pol_verdict {
	KC_POL_V_ALLOW = 0,	 /* to a protected port, allowed (within a limit rule's rate too) */
	KC_POL_V_DENY = 1,	 /* dropped by a deny rule or default */
	KC_POL_V_LIMIT = 2,	 /* dropped by a limit rule over its rate */
	KC_POL_V_WOULD_DENY = 3, /* audit mode: a deny that was let through */
	KC_POL_V_WOULD_LIMIT = 4, /* audit mode: a limit drop that was let through */
	KC_POL_V_PASS = 5,	  /* not subject to the policy (see docs/network-policy.md) */
	KC_POL_V_INVALID = 6,	  /* dropped: more tags or IPv6 headers than the program walks, or
				   * a loopback source off lo */
	KC_POL_V_EVENTS_LOST = 7, /* not a verdict: deny events the ring buffer had no room for */
	KC_POL_V__MAX = 8,
};

struct kc_pol_totals {
	__u64 v[KC_POL_V__MAX];
};
_Static_assert(sizeof(struct kc_pol_totals) == 8 * KC_POL_V__MAX, "kc_pol_totals layout");

/* kc_policy_src key: one source under one rule. IPv4 sources use addr[0..3]. Rule ids start
 * at KC_POL_ID_RESERVED, so rule 0 marks an empty kc_policy_rpt slot. */
struct kc_pol_src {
	__u8 addr[16];
	__u32 rule;
	__u32 v6;
};
_Static_assert(sizeof(struct kc_pol_src) == 24, "kc_pol_src layout");

/* kc_policy_src value. Deny rules keep their times on the coarse clock, limit rules on the
 * precise one (bpf_ktime_get_coarse_ns, bpf_ktime_get_ns: both CLOCK_MONOTONIC). */
struct kc_pol_srcst {
	__u64 tat;     /* limit: GCRA theoretical arrival time (clock ns) */
	__u64 last_ns; /* last deny event for this (source, rule) */
	__u64 count;   /* drops since that event that no kc_policy_rpt slot holds */
};
_Static_assert(sizeof(struct kc_pol_srcst) == 24, "kc_pol_srcst layout");

/* kc_policy_rpt value, per CPU: the (source, rule) this slot remembers, if key.rule != 0.
 * Only its CPU writes key, gen, due_ns and count; taken may also be advanced by the CPU that
 * gathers the pair's drops for a report. count - taken: drops of key on this CPU in no event
 * yet, nor in kc_policy_src. */
struct kc_pol_rpt {
	struct kc_pol_src key;
	__u32 gen; /* odd while key changes */
	__u32 pad;
	__u64 due_ns; /* before this (and after due_ns - KC_POL_REPORT_NS) no report is due */
	__u64 count;  /* drops counted in this slot, whatever its key then (never goes back) */
	__u64 taken;  /* of those, taken into an event or moved to kc_policy_src */
};
_Static_assert(sizeof(struct kc_pol_rpt) == 56, "kc_pol_rpt layout");

/* The kc_policy_rpt slot of a (source, rule): part of the map's layout, so that tests can
 * place two pairs in one slot. A multiply-xorshift over the key's 32-bit words. */
static inline __u32 kc_pol_rpt_slot(const struct kc_pol_src *k)
{
	__u32 w[4], h = k->rule * 0x9e3779b1U ^ k->v6;

	__builtin_memcpy(w, k->addr, 16);
	h = (h ^ w[0]) * 0x85ebca6bU;
	h = (h ^ (h >> 15) ^ w[1]) * 0x85ebca6bU;
	h = (h ^ (h >> 15) ^ w[2]) * 0x85ebca6bU;
	h = (h ^ (h >> 15) ^ w[3]) * 0xc2b2ae35U;
	h ^= h >> 16;
	return h & (KC_POL_RPT_SLOTS - 1);
}

/* kc_policy_evt record. */
struct kc_pol_event {
	__u64 mono_ns; /* bpf_ktime_get_ns() when sent */
	__u32 rule;    /* rule id */
	__u32 count;   /* drops of this source by this rule since its previous event, this one
			* included */
	__u8 addr[16]; /* source; IPv4 in addr[0..3] */
	__u16 dport;   /* host order */
	__u8 proto;
	__u8 v6;
	__u8 verdict; /* KC_POL_V_DENY, _LIMIT, _WOULD_DENY or _WOULD_LIMIT */
	__u8 pad[3];
};
_Static_assert(sizeof(struct kc_pol_event) == 40, "kc_pol_event layout");

#endif
