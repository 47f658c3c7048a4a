/* test_policy.c: BPF_PROG_TEST_RUN tables for the network policy (bpf/policy.bpf.c), with
 * policies compiled and swapped in by the daemon's own code (user/netpol/policy_maps.c) from YAML.
 *
 * Slot 0 of kc_policy_next holds a two-instruction program that returns XDP_TX, so a row tells
 * "passed on to the next program" (XDP_TX) from "dropped" (XDP_DROP). Every row asserts the
 * verdict, which kc_policy_tot counter moved (exactly one, by one), and which rule's counters
 * moved (exactly one rule, or none): packets +1, bytes + the frame length, drops +0 or +1.
 * Rate limits and deny reports run on a fixed clock (kc_pol_cfg.clock_ns), and the test runs
 * pinned to one CPU (deny reports start in per-CPU slots), so token and event counts are exact;
 * test_events moves to a second CPU on purpose.
 *
 * Needs root (BPF). Without it the test exits 77 (skip), unless KCACHE_REQUIRE_BPF=1, in which
 * case it fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sched.h>
#include <unistd.h>

#include <kcache/policy.h>
#include "policy.skel.h"
#include "netpol/policy_file.h"
#include "netpol/policy_maps.h"
#include "../lib/pkt.h"

#define TEST_RULES 1024
#define FRAME_MAX  2048
#define NSEC	   1000000000ULL
#define V_NONE	   (-1)	  /* no verdict counter (a BPF_PROG_TEST_RUN that never ran) */
#define NEXT	   XDP_TX /* what the program in slot 0 returns */

struct env {
	struct policy_bpf *skel;
	int prog_fd, next_fd;
	struct kc_pol_state st;
	struct ring_buffer *rb;
	int cpu[2];    /* the CPU the test runs on, and another one or -1 */
	__u32 ifindex; /* xdp_md.ingress_ifindex of the rows run now; 0: none given (lo's rxq) */
};

static struct env E;
static int n_events;
static struct kc_pol_event events[64];

/* --- loading --------------------------------------------------------------------------------- */

static int next_prog(void)
{
	struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_TX},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_XDP);

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "kc_t_next", "GPL", insns, 2, &o);
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size >= sizeof(struct kc_pol_event) && n_events < 64)
		memcpy(&events[n_events++], data, sizeof(struct kc_pol_event));
	return 0;
}

static int env_open(struct env *env, char *err, size_t errlen)
{
	struct policy_bpf *s;
	struct kc_pol_maps m;
	__u32 zero = 0;
	void *cfg;
	int rc;

	memset(env, 0, sizeof(*env));
	s = policy_bpf__open();
	if (!s) {
		snprintf(err, errlen, "open policy skeleton: %s", strerror(errno));
		return -1;
	}
	bpf_map__set_max_entries(s->maps.kc_policy_v4_a, TEST_RULES);
	bpf_map__set_max_entries(s->maps.kc_policy_v4_b, TEST_RULES);
	bpf_map__set_max_entries(s->maps.kc_policy_v6_a, TEST_RULES);
	bpf_map__set_max_entries(s->maps.kc_policy_v6_b, TEST_RULES);
	bpf_map__set_max_entries(s->maps.kc_policy_cnt, TEST_RULES + KC_POL_PORTS_MAX + 3);
	rc = policy_bpf__load(s);
	if (rc) {
		snprintf(err, errlen, "load policy program: %s", strerror(-rc));
		policy_bpf__destroy(s);
		return -1;
	}
	env->skel = s;
	env->prog_fd = bpf_program__fd(s->progs.kc_policy);
	env->next_fd = next_prog();
	if (env->next_fd < 0 ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.kc_policy_next), &zero, &env->next_fd, 0)) {
		snprintf(err, errlen, "next program: %s", strerror(errno));
		return -1;
	}
	cfg = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED,
		   bpf_map__fd(s->maps.kc_policy_cfg), 0);
	if (cfg == MAP_FAILED) {
		snprintf(err, errlen, "mmap kc_policy_cfg: %s", strerror(errno));
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.v4_fd[0] = bpf_map__fd(s->maps.kc_policy_v4_a);
	m.v4_fd[1] = bpf_map__fd(s->maps.kc_policy_v4_b);
	m.v6_fd[0] = bpf_map__fd(s->maps.kc_policy_v6_a);
	m.v6_fd[1] = bpf_map__fd(s->maps.kc_policy_v6_b);
	m.prt_fd[0] = bpf_map__fd(s->maps.kc_policy_prt_a);
	m.prt_fd[1] = bpf_map__fd(s->maps.kc_policy_prt_b);
	m.def_fd[0] = bpf_map__fd(s->maps.kc_policy_def_a);
	m.def_fd[1] = bpf_map__fd(s->maps.kc_policy_def_b);
	m.cnt_fd = bpf_map__fd(s->maps.kc_policy_cnt);
	m.tot_fd = bpf_map__fd(s->maps.kc_policy_tot);
	m.cfg = cfg;
	m.max_ids = TEST_RULES + KC_POL_PORTS_MAX + 3;
	m.max_prefixes = TEST_RULES;
	if (kc_pol_state_init(&env->st, &m, true)) {
		snprintf(err, errlen, "policy state: %s", strerror(errno));
		return -1;
	}
	env->rb = ring_buffer__new(bpf_map__fd(s->maps.kc_policy_evt), on_event, NULL, NULL);
	if (!env->rb) {
		snprintf(err, errlen, "ring buffer: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void env_close(struct env *env)
{
	struct kc_pol_cfg *cfg = env->st.m.cfg;

	ring_buffer__free(env->rb);
	kc_pol_state_free(&env->st);
	if (cfg)
		munmap(cfg, (size_t)sysconf(_SC_PAGESIZE));
	if (env->next_fd >= 0)
		close(env->next_fd);
	policy_bpf__destroy(env->skel);
}

/* Parses, finishes and swaps in a policy; asserts success. */
static void apply_yaml(const char *yaml)
{
	struct kc_pol_spec s;
	char err[400];

	if (kc_pol_parse_buf(&s, "t.yaml", yaml, strlen(yaml), TEST_RULES, err, sizeof(err)) ||
	    kc_pol_spec_finish(&s, "t.yaml", 11211, NULL, 0, TEST_RULES, err, sizeof(err)))
		fail_msg("policy refused: %s", err);
	if (kc_pol_apply(&E.st, &s, err, sizeof(err)))
		fail_msg("apply: %s", err);
	kc_pol_spec_free(&s);
}

static void set_clock(__u64 ns)
{
	E.st.m.cfg->clock_ns = ns;
}

/* Runs the rest of the test (and so BPF_PROG_TEST_RUN) on cpu. */
static void on_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fail_msg("pin to CPU %d: %s", cpu, strerror(errno));
}

/* Takes the events the program sent since the last call. */
static int take_events(void)
{
	ring_buffer__consume(E.rb);
	return n_events;
}

static void expect_event(int i, const char *src, __u32 rule, __u32 count, __u8 verdict)
{
	char a[INET6_ADDRSTRLEN];

	if (i >= n_events)
		fail_msg("event %d: only %d events", i, n_events);
	inet_ntop(events[i].v6 ? AF_INET6 : AF_INET, events[i].addr, a, sizeof(a));
	if (strcmp(a, src) || events[i].rule != rule || events[i].count != count ||
	    events[i].verdict != verdict)
		fail_msg(
		    "event %d: %s rule %u count %u verdict %u; want %s rule %u count %u verdict "
		    "%u",
		    i, a, events[i].rule, events[i].count, events[i].verdict, src, rule, count,
		    verdict);
}

/* The id of a rule by its words ("deny 198.18.5.0/24"), or a port default ("default udp
 * 11211"), or "loopback4"/"loopback6". */
static __u32 rule_id(const char *text)
{
	const struct kc_pol_spec *s = &E.st.spec;
	char t[KC_POL_TEXT_MAX];

	if (!strcmp(text, "loopback4") || !strcmp(text, "loopback6"))
		return E.st.ids.loopback[text[8] == '6'];
	for (__u32 i = 0; i < s->n_protect; i++) {
		snprintf(t, sizeof(t), "default %s %u", kc_pol_proto_name(s->protect[i].proto),
			 s->protect[i].port);
		if (!strcmp(t, text))
			return E.st.ids.prot[i];
	}
	for (__u32 i = 0; i < s->n_rules; i++) {
		kc_pol_rule_text(&s->rules[i], t, sizeof(t));
		if (!strcmp(t, text))
			return E.st.ids.rule[i];
	}
	fail_msg("no rule '%s' in the policy", text);
	return 0;
}

/* --- frames ---------------------------------------------------------------------------------- */

enum {
	F_TCP = 1 << 0,
	F_VLAN = 1 << 1,
	F_IPOPT = 1 << 2,   /* 8 bytes of IPv4 options */
	F_MF = 1 << 3,	    /* IPv4 first fragment: MF, offset 0 */
	F_FRAGOFF = 1 << 4, /* IPv4 later fragment: offset 8 */
	F_V6FRAG = 1 << 5,  /* IPv6 fragment header, offset 0, M */
	F_V6LATER = 1 << 6, /* IPv6 fragment header, offset 8 */
	F_V6HBH = 1 << 7,   /* IPv6 hop-by-hop header */
	F_ICMP = 1 << 8,
	F_ARP = 1 << 9,
};

/* A stack of tags in front of the IP header, outermost first: {TPID, TCI}. */
struct tags {
	int n;
	uint16_t t[PKT_TAGS_MAX][2];
};

/* A frame from src to dport with flags, behind the tags of stk (NULL: none). */
static size_t frame_tagged(uint8_t *buf, const char *src, uint16_t dport, unsigned flags,
			   const struct tags *stk)
{
	static const uint8_t cmac[6] = {0x02, 0, 0, 0, 0, 1}, smac[6] = {0x02, 0, 0, 0, 0, 2};
	uint8_t l4[20] = {0};
	struct pkt_spec s;
	size_t n;

	memset(&s, 0, sizeof(s));
	memcpy(s.src_mac, cmac, 6);
	memcpy(s.dst_mac, smac, 6);
	s.v6 = strchr(src, ':') != NULL;
	assert_int_equal(inet_pton(s.v6 ? AF_INET6 : AF_INET, src, s.src_ip), 1);
	assert_int_equal(
	    inet_pton(s.v6 ? AF_INET6 : AF_INET, s.v6 ? "2001:2::2" : "198.18.0.1", s.dst_ip), 1);
	s.sport = 40000;
	s.dport = dport;
	if (flags & F_VLAN) {
		s.vlan = 1;
		s.vlan_tci = 100;
	}
	for (int i = 0; stk && i < stk->n; i++) {
		s.tags[i].tpid = stk->t[i][0];
		s.tags[i].tci = stk->t[i][1];
		s.n_tags = stk->n;
	}
	if (flags & F_IPOPT)
		s.ip_opt_len = 8;
	if (flags & F_MF)
		s.frag_off = 0x2000;
	if (flags & F_FRAGOFF)
		s.frag_off = 0x0001; /* 8 bytes in */
	if (flags & (F_V6FRAG | F_V6LATER))
		s.v6_ext = 44;
	if (flags & F_V6HBH)
		s.v6_ext = 0x100;
	if (flags & F_ARP)
		s.raw_ethertype = 0x0806;
	if (flags & (F_TCP | F_ICMP)) {
		s.proto = flags & F_TCP ? 6 : (s.v6 ? 58 : 1);
		l4[0] = 40000 >> 8, l4[1] = 40000 & 0xff;
		l4[2] = (uint8_t)(dport >> 8), l4[3] = (uint8_t)dport;
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
		n = pkt_build(buf, FRAME_MAX, &s, l4, sizeof(l4));
	} else {
		n = pkt_build(buf, FRAME_MAX, &s, "get k\r\n", 7);
	}
	assert_true(n > 0);
	if (flags & F_V6LATER) {
		size_t fh = 14 + (s.vlan ? 4 : 0) + (size_t)s.n_tags * 4 + 40;

		buf[fh + 2] = 0;
		buf[fh + 3] = 8; /* offset 1 (8 bytes), no M */
	}
	return n;
}

static size_t frame(uint8_t *buf, const char *src, uint16_t dport, unsigned flags)
{
	return frame_tagged(buf, src, dport, flags, NULL);
}

/* IPv6 from src to udp dport behind n destination-options headers (8 bytes each). */
static size_t frame_v6_chain(uint8_t *buf, const char *src, uint16_t dport, int n)
{
	size_t len = 14 + 40 + (size_t)n * 8 + 8 + 7, l4;

	memset(buf, 0, len);
	buf[0] = 0x02, buf[5] = 2, buf[6] = 0x02, buf[11] = 1;
	buf[12] = 0x86, buf[13] = 0xdd;
	buf[14] = 0x60;
	buf[18] = (uint8_t)((len - 54) >> 8), buf[19] = (uint8_t)(len - 54);
	buf[20] = n ? 60 : 17;
	buf[21] = 64;
	assert_int_equal(inet_pton(AF_INET6, src, buf + 22), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:2::2", buf + 38), 1);
	for (int i = 0; i < n; i++) {
		uint8_t *h = buf + 54 + i * 8;

		h[0] = i + 1 < n ? 60 : 17;
		h[1] = 0;
		h[2] = 1, h[3] = 4; /* PadN over the other 4 bytes */
	}
	l4 = 54 + (size_t)n * 8;
	buf[l4] = 40000 >> 8, buf[l4 + 1] = 40000 & 0xff;
	buf[l4 + 2] = (uint8_t)(dport >> 8), buf[l4 + 3] = (uint8_t)dport;
	buf[l4 + 5] = 15;
	memcpy(buf + l4 + 8, "get k\r\n", 7);
	return len;
}

/* --- running --------------------------------------------------------------------------------- */

/* Runs in through the program and checks verdict, totals and rule counters (see the top). */
static void check(const char *name, const uint8_t *in, size_t len, int want_ret, int want_v,
		  const char *want_rule, int want_drop)
{
	static struct kc_pol_cnt before[TEST_RULES + KC_POL_PORTS_MAX + 3],
	    after[TEST_RULES + KC_POL_PORTS_MAX + 3];
	static uint8_t out[FRAME_MAX];
	struct kc_pol_totals tb, ta;
	__u32 want_id = want_rule ? rule_id(want_rule) : 0;
	struct xdp_md md = {.data_end = (__u32)len, .ingress_ifindex = E.ifindex};
	int err;

	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	/* Without a context the kernel runs the program on lo's receive queue (ifindex 1). */
	if (E.ifindex) {
		o.ctx_in = &md;
		o.ctx_size_in = sizeof(md);
	}

	assert_int_equal(kc_pol_read_totals(&E.st, &tb), 0);
	assert_int_equal(kc_pol_read_all_cnt(&E.st, before), 0);
	err = bpf_prog_test_run_opts(E.prog_fd, &o);
	if (err)
		fail_msg("%s: BPF_PROG_TEST_RUN: %s", name, strerror(-err));
	assert_int_equal(kc_pol_read_totals(&E.st, &ta), 0);
	assert_int_equal(kc_pol_read_all_cnt(&E.st, after), 0);
	if ((int)o.retval != want_ret)
		fail_msg("%s: verdict %u, want %d", name, o.retval, want_ret);
	if (o.data_size_out != len || memcmp(out, in, len))
		fail_msg("%s: the frame was modified", name);
	for (int v = 0; v < KC_POL_V_EVENTS_LOST; v++)
		if (ta.v[v] - tb.v[v] != (v == want_v ? 1u : 0u))
			fail_msg("%s: total %s moved by %llu", name, kc_pol_verdict_name(v),
				 (unsigned long long)(ta.v[v] - tb.v[v]));
	for (__u32 id = 0; id < E.st.m.max_ids; id++) {
		__u64 dp = after[id].packets - before[id].packets;
		__u64 db = after[id].bytes - before[id].bytes;
		__u64 dd = after[id].drops - before[id].drops;

		if (id == want_id && want_rule) {
			if (dp != 1 || db != len || dd != (__u64)want_drop)
				fail_msg("%s: rule '%s' moved by %llu packets, %llu bytes, %llu "
					 "drops; want 1, %zu, %d",
					 name, want_rule, (unsigned long long)dp,
					 (unsigned long long)db, (unsigned long long)dd, len,
					 want_drop);
		} else if (dp || db || dd) {
			fail_msg("%s: rule id %u moved (want %s)", name, id,
				 want_rule ? want_rule : "none");
		}
	}
	print_message("    %-40s %-8s %-11s %s\n", name,
		      want_ret == XDP_DROP ? "DROP"
		      : want_ret == NEXT   ? "next"
					   : "PASS",
		      kc_pol_verdict_name((unsigned)want_v), want_rule ? want_rule : "-");
}

/* A row: a frame from src to dport with flags. */
static void row_tagged(const char *name, const char *src, uint16_t dport, unsigned flags,
		       const struct tags *stk, int want_ret, int want_v, const char *want_rule)
{
	static uint8_t buf[FRAME_MAX];
	size_t n = frame_tagged(buf, src, dport, flags, stk);

	check(name, buf, n, want_ret, want_v, want_rule,
	      want_v == KC_POL_V_DENY || want_v == KC_POL_V_LIMIT ||
		  want_v == KC_POL_V_WOULD_DENY || want_v == KC_POL_V_WOULD_LIMIT);
}

static void row(const char *name, const char *src, uint16_t dport, unsigned flags, int want_ret,
		int want_v, const char *want_rule)
{
	row_tagged(name, src, dport, flags, NULL, want_ret, want_v, want_rule);
}

#define ALLOW(name, src, port, flags, rule) row(name, src, port, flags, NEXT, KC_POL_V_ALLOW, rule)
#define DENY(name, src, port, flags, rule)                                                         \
	row(name, src, port, flags, XDP_DROP, KC_POL_V_DENY, rule)
#define PASS(name, src, port, flags) row(name, src, port, flags, NEXT, KC_POL_V_PASS, NULL)

/* --- the tables ------------------------------------------------------------------------------ */

static const char *const main_policy =
    "audit: false\n"
    "protect:\n"
    "  - {proto: udp, port: 11211, default: deny}\n"
    "  - {proto: tcp, port: 11211, default: deny}\n"
    "  - {proto: udp, port: 11250, default: deny}\n"
    "  - {proto: udp, port: 11900, default: deny}\n"
    "  - {proto: udp, port: 5000, default: allow}\n"
    "rules:\n"
    "  - {action: allow, prefix: 198.18.0.0/16}\n"
    "  - {action: deny, prefix: 198.18.5.0/24}\n"
    "  - {action: allow, prefix: 198.18.5.7/32, proto: udp, ports: 11211}\n"
    "  - {action: deny, prefix: 198.18.6.0/24, proto: udp, ports: 11000-12000}\n"
    "  - {action: allow, prefix: 198.18.6.0/24, proto: udp, ports: 11200-11300}\n"
    "  - {action: deny, prefix: 198.18.6.0/24, proto: any, ports: 11211}\n"
    "  - {action: allow, prefix: 198.18.6.0/24, proto: udp, ports: 11211}\n"
    "  - {action: allow, prefix: \"2001:2::/32\"}\n"
    "  - {action: deny, prefix: \"2001:2:0:5::/64\"}\n"
    "  - {action: allow, prefix: \"2001:2:0:5::7\", proto: udp, ports: 11211}\n"
    "  - {action: deny, prefix: 0.0.0.0/0, ports: 5000}\n";

static void test_precedence(void **state)
{
	(void)state;
	apply_yaml(main_policy);
	print_message("  IPv4: longest prefix, then the narrowest ports, then one protocol\n");
	ALLOW("v4 /16 allows", "198.18.1.1", 11211, 0, "allow 198.18.0.0/16");
	DENY("v4 /24 deny beats /16 allow", "198.18.5.1", 11211, 0, "deny 198.18.5.0/24");
	ALLOW("v4 /32 allow beats /24 deny", "198.18.5.7", 11211, 0,
	      "allow 198.18.5.7/32 udp 11211");
	DENY("v4 /32 has no tcp rule: /24 applies", "198.18.5.7", 11211, F_TCP,
	     "deny 198.18.5.0/24");
	ALLOW("v4 exact port beats any-proto port", "198.18.6.1", 11211, 0,
	      "allow 198.18.6.0/24 udp 11211");
	DENY("v4 tcp to that port: any-proto rule", "198.18.6.1", 11211, F_TCP,
	     "deny 198.18.6.0/24 any 11211");
	ALLOW("v4 narrower range beats wider", "198.18.6.1", 11250, 0,
	      "allow 198.18.6.0/24 udp 11200-11300");
	DENY("v4 wider range where narrow ends", "198.18.6.1", 11900, 0,
	     "deny 198.18.6.0/24 udp 11000-12000");
	DENY("v4 no prefix: port default deny", "10.1.2.3", 11211, 0, "default udp 11211");
	DENY("v4 no prefix: tcp default deny", "10.1.2.3", 11211, F_TCP, "default tcp 11211");
	DENY("v4 /0 rule on 5000 beats allow default", "10.1.2.3", 5000, 0,
	     "deny 0.0.0.0/0 any 5000");
	ALLOW("v4 5000 from a /16 source", "198.18.1.1", 5000, 0, "allow 198.18.0.0/16");
	PASS("v4 unprotected port passes", "10.1.2.3", 53, 0);
	PASS("v4 unprotected tcp port passes", "198.18.5.1", 80, F_TCP);
	ALLOW("v4 loopback always allowed", "127.0.0.1", 11211, 0, "loopback4");
	print_message("  IPv6\n");
	ALLOW("v6 /32 allows", "2001:2::9", 11211, 0, "allow 2001:2::/32");
	DENY("v6 /64 deny beats /32", "2001:2:0:5::1", 11211, 0, "deny 2001:2:0:5::/64");
	ALLOW("v6 /128 allow beats /64", "2001:2:0:5::7", 11211, 0,
	      "allow 2001:2:0:5::7/128 udp 11211");
	DENY("v6 /128 no tcp rule: /64", "2001:2:0:5::7", 11211, F_TCP, "deny 2001:2:0:5::/64");
	DENY("v6 no prefix: default", "2001:db8::1", 11211, 0, "default udp 11211");
	ALLOW("v6 ::1 allowed", "::1", 11211, 0, "loopback6");
	PASS("v6 unprotected port", "2001:db8::1", 53, 0);
}

static void test_headers(void **state)
{
	(void)state;
	apply_yaml(main_policy);
	print_message("  VLAN, IPv4 options and fragments, IPv6 extension headers\n");
	DENY("vlan v4 denied", "198.18.5.1", 11211, F_VLAN, "deny 198.18.5.0/24");
	ALLOW("vlan v4 allowed", "198.18.1.1", 11211, F_VLAN, "allow 198.18.0.0/16");
	DENY("vlan v6 denied", "2001:2:0:5::1", 11211, F_VLAN, "deny 2001:2:0:5::/64");
	DENY("v4 options: ports after them", "198.18.5.1", 11211, F_IPOPT, "deny 198.18.5.0/24");
	ALLOW("v4 options allowed", "198.18.1.1", 11211, F_IPOPT | F_VLAN, "allow 198.18.0.0/16");
	DENY("v4 first fragment: by its ports", "198.18.5.1", 11211, F_MF, "deny 198.18.5.0/24");
	PASS("v4 later fragment passes", "198.18.5.1", 11211, F_FRAGOFF);
	DENY("v6 hop-by-hop: walked", "2001:2:0:5::1", 11211, F_V6HBH, "deny 2001:2:0:5::/64");
	DENY("v6 first fragment: by its ports", "2001:2:0:5::1", 11211, F_V6FRAG,
	     "deny 2001:2:0:5::/64");
	PASS("v6 later fragment passes", "2001:2:0:5::1", 11211, F_V6LATER);
	DENY("v4 tcp SYN denied", "198.18.5.1", 11211, F_TCP | F_VLAN, "deny 198.18.5.0/24");
	PASS("v4 icmp passes", "198.18.5.1", 11211, F_ICMP);
	PASS("v6 icmpv6 passes", "2001:2:0:5::1", 11211, F_ICMP);
	PASS("arp passes", "198.18.5.1", 11211, F_ARP);
	{
		static uint8_t buf[FRAME_MAX];
		size_t n;

		for (int k = 1; k <= KC_POL_V6_EXT_MAX; k++) {
			char name[64];

			n = frame_v6_chain(buf, "2001:2:0:5::1", 11211, k);
			snprintf(name, sizeof(name), "v6 %d destination options", k);
			check(name, buf, n, XDP_DROP, KC_POL_V_DENY, "deny 2001:2:0:5::/64", 1);
		}
		n = frame_v6_chain(buf, "2001:2::9", 11211, KC_POL_V6_EXT_MAX + 1);
		check("v6 chain too long: invalid, dropped", buf, n, XDP_DROP, KC_POL_V_INVALID,
		      NULL, 0);
	}
}

/* Every truncation of whole frames (two of them behind three tags; 14 bytes up: BPF_PROG_TEST_RUN
 * needs an Ethernet header) is passed on untouched as "pass": the IP lengths no longer fit the
 * frame, and the stack drops such packets itself. Corrupt headers likewise. Never a fault, never
 * a drop. */
static void test_malformed(void **state)
{
	static const struct tags three = {3, {{0x88a8, 0}, {0x8100, 0}, {0x8100, 0}}};
	static const struct {
		const char *src;
		unsigned flags;
		const struct tags *stk;
	} frames[] = {
	    {"198.18.5.1", 0, NULL},	    {"198.18.5.1", F_TCP | F_VLAN, NULL},
	    {"198.18.5.1", F_IPOPT, NULL},  {"2001:2:0:5::1", F_V6HBH | F_VLAN, NULL},
	    {"2001:2:0:5::1", F_TCP, NULL}, {"2001:2:0:5::1", F_V6FRAG, NULL},
	    {"198.18.5.1", F_TCP, &three},  {"2001:2:0:5::1", F_V6HBH, &three},
	};
	static uint8_t buf[FRAME_MAX];
	char name[80];
	size_t n, l3;

	(void)state;
	apply_yaml(main_policy);
	for (size_t f = 0; f < sizeof(frames) / sizeof(frames[0]); f++) {
		n = frame_tagged(buf, frames[f].src, 11211, frames[f].flags, frames[f].stk);
		for (size_t len = 0; len < 14; len++) {
			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf,
				    .data_size_in = (__u32)len, .repeat = 1);

			assert_int_not_equal(bpf_prog_test_run_opts(E.prog_fd, &o), 0);
		}
		for (size_t len = 14; len < n; len++) {
			snprintf(name, sizeof(name), "%s 0x%x%s cut to %zu", frames[f].src,
				 frames[f].flags, frames[f].stk ? " 3 tags" : "", len);
			if (len + 1 == n || len == 14)
				check(name, buf, len, NEXT, KC_POL_V_PASS, NULL, 0);
			else /* quietly: the same checks */
			{
				LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf,
					    .data_size_in = (__u32)len, .repeat = 1);
				struct kc_pol_totals tb, ta;

				assert_int_equal(kc_pol_read_totals(&E.st, &tb), 0);
				assert_int_equal(bpf_prog_test_run_opts(E.prog_fd, &o), 0);
				assert_int_equal(kc_pol_read_totals(&E.st, &ta), 0);
				if (o.retval != NEXT ||
				    ta.v[KC_POL_V_PASS] != tb.v[KC_POL_V_PASS] + 1)
					fail_msg("%s: verdict %u, pass moved %llu", name, o.retval,
						 (unsigned long long)(ta.v[KC_POL_V_PASS] -
								      tb.v[KC_POL_V_PASS]));
			}
		}
		print_message("    %s 0x%x%s: 0..13 bytes EINVAL, 14..%zu bytes passed on\n",
			      frames[f].src, frames[f].flags, frames[f].stk ? " 3 tags" : "",
			      n - 1);
	}
	/* Corrupt IPv4 headers from a denied source: the stack drops them, so do not we. */
	n = frame(buf, "198.18.5.1", 11211, 0);
	l3 = 14;
	buf[l3] = 0x65; /* version 6 in an IPv4 frame */
	check("v4 bad version", buf, n, NEXT, KC_POL_V_PASS, NULL, 0);
	buf[l3] = 0x44; /* IHL 4 */
	check("v4 IHL below 5", buf, n, NEXT, KC_POL_V_PASS, NULL, 0);
	buf[l3] = 0x45;
	buf[l3 + 2] = 0, buf[l3 + 3] = 19; /* total length < header */
	check("v4 total length below the header", buf, n, NEXT, KC_POL_V_PASS, NULL, 0);
	buf[l3 + 2] = 0x05, buf[l3 + 3] = 0xdc; /* 1500 > frame */
	check("v4 total length beyond the frame", buf, n, NEXT, KC_POL_V_PASS, NULL, 0);
	buf[l3 + 2] = 0, buf[l3 + 3] = 24; /* 4 bytes of UDP */
	check("v4 L4 header cut by total length", buf, n, NEXT, KC_POL_V_PASS, NULL, 0);
	n = frame(buf, "2001:2:0:5::1", 11211, 0);
	buf[18] = 0x05, buf[19] = 0xdc;
	check("v6 payload length beyond the frame", buf, n, NEXT, KC_POL_V_PASS, NULL, 0);
}

static void test_rate_limit(void **state)
{
	const __u64 t0 = 1000 * NSEC;

	(void)state;
	apply_yaml("protect:\n"
		   "  - {proto: udp, port: 11211, default: deny}\n"
		   "rules:\n"
		   "  - {action: limit, prefix: 198.18.1.0/24, proto: udp, ports: 11211, rate: 10, "
		   "burst: 3}\n"
		   "  - {action: limit, prefix: \"2001:2::/32\", rate: 1000}\n");
	set_clock(t0);
	take_events();
	n_events = 0;
#define LIM4		   "limit 198.18.1.0/24 udp 11211 --rate 10 --burst 3"
#define LIMITED(name, src) row(name, src, 11211, 0, XDP_DROP, KC_POL_V_LIMIT, LIM4)
	print_message("  10 packets/s, burst 3, on a fixed clock\n");
	for (int i = 1; i <= 3; i++)
		ALLOW("burst", "198.18.1.1", 11211, 0, LIM4);
	LIMITED("over the burst", "198.18.1.1");
	LIMITED("still over", "198.18.1.1");
	ALLOW("another source has its own bucket", "198.18.1.2", 11211, 0, LIM4);
	set_clock(t0 + 99 * NSEC / 1000);
	LIMITED("99 ms later: no token yet", "198.18.1.1");
	set_clock(t0 + 100 * NSEC / 1000);
	ALLOW("100 ms later: one token", "198.18.1.1", 11211, 0, LIM4);
	LIMITED("and only one", "198.18.1.1");
	set_clock(t0 + 350 * NSEC / 1000);
	ALLOW("250 ms more: two tokens", "198.18.1.1", 11211, 0, LIM4);
	ALLOW("250 ms more: two tokens", "198.18.1.1", 11211, 0, LIM4);
	LIMITED("not three", "198.18.1.1");
	/* Limit drops report like denies: the first at once, the rest with the next event. */
	assert_int_equal(take_events(), 1);
	expect_event(0, "198.18.1.1", rule_id(LIM4), 1, KC_POL_V_LIMIT);
	set_clock(t0 + 60 * NSEC);
	for (int i = 1; i <= 3; i++)
		ALLOW("a minute later: the burst again", "198.18.1.1", 11211, 0, LIM4);
	LIMITED("but no more than the burst", "198.18.1.1");
	assert_int_equal(take_events(), 2);
	expect_event(1, "198.18.1.1", rule_id(LIM4), 5, KC_POL_V_LIMIT);
	/* burst defaults to one second's worth */
	for (int i = 0; i < 1000; i++) {
		static uint8_t buf[FRAME_MAX];
		size_t n = frame(buf, "2001:2::1", 11211, 0);
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf, .data_size_in = (__u32)n,
			    .repeat = 1);

		assert_int_equal(bpf_prog_test_run_opts(E.prog_fd, &o), 0);
		assert_int_equal(o.retval, NEXT);
	}
	row("v6: rate 1000 gives a burst of 1000", "2001:2::1", 11211, 0, XDP_DROP, KC_POL_V_LIMIT,
	    "limit 2001:2::/32 --rate 1000 --burst 1000");
	set_clock(0);
}

static void test_audit_mode(void **state)
{
	(void)state;
	apply_yaml("audit: true\n"
		   "rules:\n"
		   "  - {action: deny, prefix: 198.18.5.0/24}\n"
		   "  - {action: limit, prefix: 198.18.1.0/24, rate: 1, burst: 1}\n");
	set_clock(7 * NSEC);
	print_message("  audit mode: counts what it would drop, drops nothing\n");
	row("would deny", "198.18.5.1", 11211, 0, NEXT, KC_POL_V_WOULD_DENY, "deny 198.18.5.0/24");
	row("would deny (default)", "10.0.0.1", 11211, F_TCP, NEXT, KC_POL_V_WOULD_DENY,
	    "default tcp 11211");
	ALLOW("within the rate", "198.18.1.1", 11211, 0, "limit 198.18.1.0/24 --rate 1 --burst 1");
	row("would limit", "198.18.1.1", 11211, 0, NEXT, KC_POL_V_WOULD_LIMIT,
	    "limit 198.18.1.0/24 --rate 1 --burst 1");
	{
		static uint8_t buf[FRAME_MAX];
		size_t n = frame_v6_chain(buf, "2001:2::9", 11211, KC_POL_V6_EXT_MAX + 1);

		check("invalid chain: counted, passed on", buf, n, NEXT, KC_POL_V_INVALID, NULL, 0);
	}
	apply_yaml("audit: false\nrules:\n  - {action: deny, prefix: 198.18.5.0/24}\n");
	DENY("audit off again: dropped", "198.18.5.1", 11211, 0, "deny 198.18.5.0/24");
	set_clock(0);
}

#define DENY5(name, src) DENY(name, src, 11211, 0, "deny 198.18.5.0/24")

/* A source denied on two CPUs, each counting in its own slot: still one event per 5 s, each
 * carrying the drops of both CPUs since the previous one. t1: 198.18.5.9's last event, sent
 * from E.cpu[0]. */
static void test_events_cpus(__u64 t1)
{
	__u32 id = rule_id("deny 198.18.5.0/24");
	int n = take_events();

	if (E.cpu[1] < 0) {
		print_message("    (one CPU only: no test of drops on two CPUs)\n");
		return;
	}
	on_cpu(E.cpu[1]);
	set_clock(t1 + 1 * NSEC);
	DENY5("cpu B, 1 s after cpu A's event", "198.18.5.9");
	set_clock(t1 + 2 * NSEC);
	DENY5("cpu B, 2 s after", "198.18.5.9");
	DENY5("cpu B, 2 s after", "198.18.5.9");
	assert_int_equal(take_events(), n);
	on_cpu(E.cpu[0]);
	set_clock(t1 + 5 * NSEC);
	DENY5("cpu A, 5 s after: an event", "198.18.5.9");
	assert_int_equal(take_events(), n + 1);
	expect_event(n, "198.18.5.9", id, 4, KC_POL_V_DENY); /* B's 3 and this one */
	on_cpu(E.cpu[1]);
	set_clock(t1 + 6 * NSEC);
	DENY5("cpu B, 6 s after: no event", "198.18.5.9");
	assert_int_equal(take_events(), n + 1);
	on_cpu(E.cpu[0]);
	set_clock(t1 + 10 * NSEC);
	DENY5("cpu A, 10 s after: an event", "198.18.5.9");
	assert_int_equal(take_events(), n + 2);
	expect_event(n + 1, "198.18.5.9", id, 2, KC_POL_V_DENY);
	print_message("    two CPUs (%d, %d): one event per 5 s, counts 4 and 2 = the 6 drops\n",
		      E.cpu[0], E.cpu[1]);
}

/* Two sources whose (source, rule) pairs share a kc_policy_rpt slot: each keeps its own
 * events, one per 5 s, and no drop is lost when one pushes the other out. */
static void test_events_collision(__u64 t2)
{
	__u32 id = rule_id("deny 198.18.5.0/24");
	struct kc_pol_src k[2];
	char a[2][INET_ADDRSTRLEN];
	int n = take_events(), found = 0;

	memset(k, 0, sizeof(k));
	k[0].rule = k[1].rule = id;
	for (int x = 10; x < 200 && !found; x++)
		for (int y = x + 1; y < 200 && !found; y++) {
			snprintf(a[0], sizeof(a[0]), "198.18.5.%d", x);
			snprintf(a[1], sizeof(a[1]), "198.18.5.%d", y);
			inet_pton(AF_INET, a[0], k[0].addr);
			inet_pton(AF_INET, a[1], k[1].addr);
			found = kc_pol_rpt_slot(&k[0]) == kc_pol_rpt_slot(&k[1]);
		}
	if (!found)
		fail_msg("no two sources of 198.18.5.10-199 share a report slot");
	set_clock(t2);
	DENY5("A: first drop, an event", a[0]);
	DENY5("B takes A's slot: its first event", a[1]);
	set_clock(t2 + 1 * NSEC);
	DENY5("A takes it back: no event", a[0]);
	set_clock(t2 + 2 * NSEC);
	DENY5("A counts in the slot", a[0]);
	set_clock(t2 + 3 * NSEC);
	DENY5("B pushes A's drop to A's state", a[1]);
	assert_int_equal(take_events(), n + 2);
	expect_event(n, a[0], id, 1, KC_POL_V_DENY);
	expect_event(n + 1, a[1], id, 1, KC_POL_V_DENY);
	set_clock(t2 + 5 * NSEC);
	DENY5("A, 5 s on: its 3 drops", a[0]);
	DENY5("B, 5 s on: its 2 drops", a[1]);
	assert_int_equal(take_events(), n + 4);
	expect_event(n + 2, a[0], id, 3, KC_POL_V_DENY);
	expect_event(n + 3, a[1], id, 2, KC_POL_V_DENY);
	print_message("    %s and %s share report slot %u: events 1, 1, then 3 and 2\n", a[0], a[1],
		      kc_pol_rpt_slot(&k[0]));
}

/* Deny events: the first drop of a (source, rule) reports at once with count 1; the next
 * report comes no sooner than 5 s later and carries every drop in between. */
static void test_events(void **state)
{
	const __u64 t0 = 500 * NSEC;
	char a[INET6_ADDRSTRLEN];

	(void)state;
	apply_yaml("rules:\n  - {action: deny, prefix: 198.18.5.0/24}\n"
		   "  - {action: deny, prefix: \"2001:2::/32\", proto: tcp}\n");
	ring_buffer__consume(E.rb);
	n_events = 0;
	set_clock(t0);
	for (int i = 0; i < 4; i++)
		DENY("flood", "198.18.5.9", 11211, 0, "deny 198.18.5.0/24");
	ring_buffer__consume(E.rb);
	assert_int_equal(n_events, 1);
	inet_ntop(AF_INET, events[0].addr, a, sizeof(a));
	assert_string_equal(a, "198.18.5.9");
	assert_int_equal(events[0].count, 1);
	assert_int_equal(events[0].rule, rule_id("deny 198.18.5.0/24"));
	assert_int_equal(events[0].verdict, KC_POL_V_DENY);
	assert_int_equal(events[0].dport, 11211);
	assert_int_equal(events[0].proto, 17);
	set_clock(t0 + 5 * NSEC - 1);
	DENY("4.999999999 s later: no event", "198.18.5.9", 11211, 0, "deny 198.18.5.0/24");
	ring_buffer__consume(E.rb);
	assert_int_equal(n_events, 1);
	set_clock(t0 + 5 * NSEC);
	DENY("5 s later: an event", "198.18.5.9", 11211, F_TCP, "deny 198.18.5.0/24");
	DENY("another source: its own", "2001:2::5", 11211, F_TCP, "deny 2001:2::/32 tcp");
	ring_buffer__consume(E.rb);
	assert_int_equal(n_events, 3);
	assert_int_equal(events[1].count, 5); /* 3 of the flood, the quiet one, this one */
	assert_int_equal(events[1].proto, 6);
	assert_int_equal(events[2].v6, 1);
	assert_int_equal(events[2].count, 1);
	inet_ntop(AF_INET6, events[2].addr, a, sizeof(a));
	assert_string_equal(a, "2001:2::5");
	print_message("    events: first drop at once (count 1), then one per 5 s carrying "
		      "the drops in between (count 5)\n");
	test_events_cpus(t0 + 5 * NSEC);
	test_events_collision(t0 + 100 * NSEC);
	set_clock(0);
}

/* Swaps: a rule that stays keeps its id and counters; a refused policy leaves the old one
 * enforced; a freed id's counters are zero when it is given out again. */
static void test_swaps(void **state)
{
	struct kc_pol_spec s;
	struct kc_pol_cnt c, kept;
	char err[400], yaml[KC_POL_SET_MAX * 80 + 100];
	__u32 id, gone;
	int len;

	(void)state;
	/* Protected ports follow each swap in both buffers: added, removed, default changed. */
	for (int i = 0; i < 2; i++) {
		apply_yaml(main_policy);
		DENY("udp 11250 protected", "10.1.2.3", 11250, 0, "default udp 11250");
		PASS("tcp 11250 not", "10.1.2.3", 11250, F_TCP);
		ALLOW("udp 5000 protected", "198.18.1.1", 5000, F_VLAN, "allow 198.18.0.0/16");
		apply_yaml("protect:\n  - {proto: tcp, port: 11250, default: deny}\n"
			   "  - {proto: udp, port: 11211, default: allow}\n"
			   "rules:\n  - {action: deny, prefix: 10.9.0.0/16}\n");
		PASS("udp 11250 no longer protected", "10.1.2.3", 11250, 0);
		DENY("tcp 11250 now protected", "10.1.2.3", 11250, F_TCP, "default tcp 11250");
		ALLOW("udp 11211 default now allow", "10.1.2.3", 11211, 0, "default udp 11211");
		PASS("tcp 11211 no longer protected", "10.1.2.3", 11211, F_TCP);
		PASS("udp 5000 no longer protected", "198.18.1.1", 5000, 0);
	}
	apply_yaml("rules:\n  - {action: deny, prefix: 198.18.5.0/24}\n"
		   "  - {action: allow, prefix: 198.18.6.0/24}\n");
	DENY("before the swap", "198.18.5.1", 11211, 0, "deny 198.18.5.0/24");
	id = rule_id("deny 198.18.5.0/24");
	gone = rule_id("allow 198.18.6.0/24");
	ALLOW("the rule that goes", "198.18.6.1", 11211, 0, "allow 198.18.6.0/24");
	assert_int_equal(kc_pol_read_cnt(&E.st, id, &kept), 0);
	assert_true(kept.packets >= 1);
	apply_yaml("rules:\n  - {action: allow, prefix: 198.18.7.0/24}\n"
		   "  - {action: deny, prefix: 198.18.5.0/24}\n");
	assert_int_equal(rule_id("deny 198.18.5.0/24"), id);
	assert_int_equal(kc_pol_read_cnt(&E.st, id, &c), 0);
	assert_int_equal(c.packets, kept.packets);
	assert_int_equal(c.drops, kept.drops);
	assert_int_not_equal(rule_id("allow 198.18.7.0/24"), gone);
	assert_int_equal(kc_pol_read_cnt(&E.st, gone, &c), 0);
	assert_int_equal(c.packets, 0);
	DENY("after: same rule, same id", "198.18.5.1", 11211, 0, "deny 198.18.5.0/24");
	DENY("after: the removed rule is gone", "198.18.6.1", 11211, 0, "default udp 11211");
	print_message("    rule id %u kept its counters across the swap; freed id %u zeroed\n", id,
		      gone);

	/* More than KC_POL_SET_MAX rules on one source: refused, the old policy stays. */
	len = snprintf(yaml, sizeof(yaml), "rules:\n");
	for (int i = 0; i <= KC_POL_SET_MAX; i++)
		len +=
		    snprintf(yaml + len, sizeof(yaml) - (size_t)len,
			     "  - {action: deny, prefix: 198.18.%d.0/24, proto: udp, ports: %d}\n",
			     5, 1000 + i);
	assert_int_equal(
	    kc_pol_parse_buf(&s, "big.yaml", yaml, (size_t)len, TEST_RULES, err, sizeof(err)), 0);
	assert_int_equal(
	    kc_pol_spec_finish(&s, "big.yaml", 11211, NULL, 0, TEST_RULES, err, sizeof(err)), 0);
	assert_int_not_equal(kc_pol_apply(&E.st, &s, err, sizeof(err)), 0);
	print_message("    refused: %s\n", err);
	assert_non_null(strstr(err, "198.18.5.0/24: more than 8 rules apply"));
	kc_pol_spec_free(&s);
	DENY("the old policy is still in force", "198.18.5.1", 11211, 0, "deny 198.18.5.0/24");
	ALLOW("all of it", "198.18.7.1", 11211, 0, "allow 198.18.7.0/24");
	/* Swap back and forth: both buffers are rewritten by difference, never half. */
	for (int i = 0; i < 6; i++) {
		apply_yaml(i % 2 ? "rules:\n  - {action: deny, prefix: 198.18.5.0/24}\n"
				 : "rules:\n  - {action: allow, prefix: 198.18.5.0/24}\n"
				   "  - {action: deny, prefix: 198.18.5.128/25}\n");
		if (i % 2)
			DENY("flip", "198.18.5.200", 11211, 0, "deny 198.18.5.0/24");
		else
			DENY("flop", "198.18.5.200", 11211, 0, "deny 198.18.5.128/25");
	}
}

/* --- tag stacks --------------------------------------------------------------------------------
 */

/* Linux strips priority tags (VID 0, 802.1Q or 802.1ad) and delivers what is behind them; a tag
 * with a VID goes to that VLAN's device, if there is one, which reaches a socket bound to any
 * address. So the policy walks every tag, up to KC_POL_VLAN_MAX of them, and judges the IP
 * packet behind them by its source whatever the VIDs; a frame still tagged after that many is
 * dropped as invalid, IP inside or not. */
static const struct {
	const char *name;
	struct tags stk;
} stacks[] = {
    {"untagged", {0, {{0}}}},
    {"8100/0", {1, {{0x8100, 0}}}},
    {"8100/100", {1, {{0x8100, 100}}}},
    {"88a8/0", {1, {{0x88a8, 0}}}},
    {"88a8/100", {1, {{0x88a8, 100}}}},
    {"9100/0", {1, {{0x9100, 0}}}},
    {"8100/0+8100/0", {2, {{0x8100, 0}, {0x8100, 0}}}},
    {"8100/0+8100/7", {2, {{0x8100, 0}, {0x8100, 7}}}},
    {"8100/0+88a8/0", {2, {{0x8100, 0}, {0x88a8, 0}}}},
    {"88a8/0+8100/0", {2, {{0x88a8, 0}, {0x8100, 0}}}},
    {"88a8/0+8100/100 (prio bits)", {2, {{0x88a8, 0xe000}, {0x8100, 0xe064}}}},
    {"88a8/100+8100/200", {2, {{0x88a8, 100}, {0x8100, 200}}}},
    {"9100/0+8100/0", {2, {{0x9100, 0}, {0x8100, 0}}}},
    {"88a8/0+8100/0+8100/0", {3, {{0x88a8, 0}, {0x8100, 0}, {0x8100, 0}}}},
    {"8100/5+88a8/0+8100/0", {3, {{0x8100, 5}, {0x88a8, 0}, {0x8100, 0}}}},
    {"4 x 8100/0", {4, {{0x8100, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0}}}},
    {"5 x 8100/0", {5, {{0x8100, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0}}}},
    {"88a8/0+5 x 8100/0",
     {6, {{0x88a8, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0}, {0x8100, 0}}}},
};

static void test_vlan_stacks(void **state)
{
	static const struct {
		const char *src;
		const char *rule; /* the allow rule that applies, or NULL: */
		const char *deny; /* the deny rule that does */
	} srcs[] = {
	    {"198.18.1.1", "allow 198.18.0.0/16", NULL},
	    {"198.18.5.1", NULL, "deny 198.18.5.0/24"},
	    {"2001:2::9", "allow 2001:2::/32", NULL},
	    {"2001:2:0:5::1", NULL, "deny 2001:2:0:5::/64"},
	};
	char name[96];

	(void)state;
	apply_yaml(main_policy);
	_Static_assert(KC_POL_VLAN_MAX == 4, "the table's last two stacks are one and two over");
	print_message("  tag stacks x IPv4/IPv6 x allowed/denied x UDP/TCP (%d tags walked)\n",
		      KC_POL_VLAN_MAX);
	for (size_t k = 0; k < sizeof(stacks) / sizeof(stacks[0]); k++) {
		const struct tags *stk = &stacks[k].stk;
		int over = stk->n > KC_POL_VLAN_MAX;

		for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
			for (unsigned tcp = 0; tcp <= F_TCP; tcp += F_TCP) {
				snprintf(name, sizeof(name), "%s %s %s", stacks[k].name,
					 srcs[i].src, tcp ? "tcp" : "udp");
				if (over)
					row_tagged(name, srcs[i].src, 11211, tcp, stk, XDP_DROP,
						   KC_POL_V_INVALID, NULL);
				else if (srcs[i].rule)
					row_tagged(name, srcs[i].src, 11211, tcp, stk, NEXT,
						   KC_POL_V_ALLOW, srcs[i].rule);
				else
					row_tagged(name, srcs[i].src, 11211, tcp, stk, XDP_DROP,
						   KC_POL_V_DENY, srcs[i].deny);
			}
		}
		/* Not IP behind the tags: passed on, unless still tagged after the walk. */
		snprintf(name, sizeof(name), "%s arp", stacks[k].name);
		row_tagged(name, "198.18.5.1", 11211, F_ARP, stk, over ? XDP_DROP : NEXT,
			   over ? KC_POL_V_INVALID : KC_POL_V_PASS, NULL);
		snprintf(name, sizeof(name), "%s to an unprotected port", stacks[k].name);
		row_tagged(name, "198.18.5.1", 53, 0, stk, over ? XDP_DROP : NEXT,
			   over ? KC_POL_V_INVALID : KC_POL_V_PASS, NULL);
	}
}

/* --- loopback sources ------------------------------------------------------------------------ */

/* Makes a veth pair in a network namespace of the test's own (gone when the test exits) and
 * returns the ifindex of one end: BPF_PROG_TEST_RUN wants an existing device for
 * ingress_ifindex. */
static __u32 make_veth(void)
{
	__u32 idx;

	if (unshare(CLONE_NEWNET))
		fail_msg("unshare(CLONE_NEWNET): %s", strerror(errno));
	if (system("ip link add kct0 type veth peer name kct1"))
		fail_msg("ip link add kct0 type veth failed");
	idx = if_nametoindex("kct0");
	if (!idx || idx == 1)
		fail_msg("kct0: ifindex %u", idx);
	return idx;
}

/* The implicit loopback allows hold on lo only. Anywhere else a loopback source is forged (the
 * stack drops it as a martian, but the kernel tier would answer it with XDP_TX first): dropped
 * as invalid, to any port, whatever the rules. */
static void test_loopback_spoof(void **state)
{
	static const char *const lo_srcs[] = {"127.0.0.1", "127.1.2.3",	       "127.255.255.255",
					      "::1",	   "::ffff:127.0.0.1", "::ffff:127.9.8.7"};
	static const struct tags dbl = {2, {{0x8100, 0}, {0x8100, 0}}};
	__u32 veth = make_veth();
	char name[96];

	(void)state;
	apply_yaml("audit: false\n"
		   "protect:\n"
		   "  - {proto: udp, port: 11211, default: deny}\n"
		   "  - {proto: tcp, port: 11211, default: deny}\n"
		   "rules:\n"
		   "  - {action: allow, prefix: 0.0.0.0/0}\n"
		   "  - {action: allow, prefix: \"::/0\"}\n"
		   "  - {action: deny, prefix: 198.18.5.0/24}\n");
	for (int pass = 0; pass < 2; pass++) {
		/* 0: no context (lo's queue), then ingress_ifindex 1 given explicitly */
		E.ifindex = pass ? 1 : 0;
		print_message("  on lo (%s)\n", pass ? "ingress_ifindex 1" : "no context");
		ALLOW("127.0.0.1 udp", "127.0.0.1", 11211, 0, "loopback4");
		ALLOW("127.0.0.1 tcp", "127.0.0.1", 11211, F_TCP, "loopback4");
		ALLOW("127.1.2.3 udp", "127.1.2.3", 11211, 0, "loopback4");
		ALLOW("::1 udp", "::1", 11211, 0, "loopback6");
		ALLOW("::1 tcp", "::1", 11211, F_TCP, "loopback6");
		/* no implicit allow for the mapped form: the rules decide */
		ALLOW("::ffff:127.0.0.1 udp", "::ffff:127.0.0.1", 11211, 0, "allow ::/0");
		row_tagged("127.0.0.1 behind two priority tags", "127.0.0.1", 11211, 0, &dbl, NEXT,
			   KC_POL_V_ALLOW, "loopback4");
		PASS("127.0.0.1 to an unprotected port", "127.0.0.1", 53, 0);
	}
	E.ifindex = veth;
	print_message("  on a veth (ifindex %u)\n", veth);
	for (size_t i = 0; i < sizeof(lo_srcs) / sizeof(lo_srcs[0]); i++) {
		snprintf(name, sizeof(name), "%s udp", lo_srcs[i]);
		row(name, lo_srcs[i], 11211, 0, XDP_DROP, KC_POL_V_INVALID, NULL);
		snprintf(name, sizeof(name), "%s tcp", lo_srcs[i]);
		row(name, lo_srcs[i], 11211, F_TCP, XDP_DROP, KC_POL_V_INVALID, NULL);
		snprintf(name, sizeof(name), "%s to an unprotected port", lo_srcs[i]);
		row(name, lo_srcs[i], 53, 0, XDP_DROP, KC_POL_V_INVALID, NULL);
		snprintf(name, sizeof(name), "%s behind two priority tags", lo_srcs[i]);
		row_tagged(name, lo_srcs[i], 11211, 0, &dbl, XDP_DROP, KC_POL_V_INVALID, NULL);
	}
	/* The neighbours of the loopback prefixes are ordinary sources. */
	ALLOW("126.255.255.255 (not loopback)", "126.255.255.255", 11211, 0, "allow 0.0.0.0/0");
	ALLOW("128.0.0.1 (not loopback)", "128.0.0.1", 11211, 0, "allow 0.0.0.0/0");
	ALLOW("198.18.1.1 allowed", "198.18.1.1", 11211, F_TCP, "allow 0.0.0.0/0");
	DENY("198.18.5.1 denied", "198.18.5.1", 11211, 0, "deny 198.18.5.0/24");
	ALLOW("::2 (not loopback)", "::2", 11211, 0, "allow ::/0");
	ALLOW("::1:0:0:1 (not loopback)", "::1:0:0:1", 11211, 0, "allow ::/0");
	ALLOW("::ffff:128.0.0.1 (not loopback)", "::ffff:128.0.0.1", 11211, 0, "allow ::/0");
	ALLOW("::fffe:127.0.0.1 (not mapped)", "::fffe:127.0.0.1", 11211, 0, "allow ::/0");
	PASS("198.18.5.1 to an unprotected port", "198.18.5.1", 53, 0);
	{
		static uint8_t buf[FRAME_MAX];
		size_t n = frame(buf, "127.0.0.1", 11211, 0);

		/* audit mode drops nothing, this included */
		apply_yaml("audit: true\nrules:\n  - {action: deny, prefix: 198.18.5.0/24}\n");
		check("audit: 127.0.0.1 on the veth counted, passed", buf, n, NEXT,
		      KC_POL_V_INVALID, NULL, 0);
	}
	E.ifindex = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_precedence),	   cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_malformed),	   cmocka_unit_test(test_rate_limit),
	    cmocka_unit_test(test_audit_mode),	   cmocka_unit_test(test_events),
	    cmocka_unit_test(test_swaps),	   cmocka_unit_test(test_vlan_stacks),
	    cmocka_unit_test(test_loopback_spoof), /* last: it moves to a network namespace */
	};
	const char *req = getenv("KCACHE_REQUIRE_BPF");
	cpu_set_t set;
	int required = req && strcmp(req, "1") == 0;
	char err[256];
	int ret;

	if (geteuid() != 0) {
		snprintf(err, sizeof(err), "needs root for BPF (euid %u)", (unsigned)geteuid());
		goto no_bpf;
	}

	if (env_open(&E, err, sizeof(err))) {
		env_close(&E);
		goto no_bpf;
	}
	/* Deny reports start in per-CPU slots: one CPU, unless a test picks another. */
	E.cpu[0] = E.cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && E.cpu[1] < 0; c++)
			if (CPU_ISSET(c, &set))
				E.cpu[E.cpu[0] < 0 ? 0 : 1] = c;
	CPU_ZERO(&set);
	CPU_SET(E.cpu[0] < 0 ? 0 : E.cpu[0], &set);
	if (E.cpu[0] < 0 || sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "bpf_policy: FAIL: pin to one CPU: %s\n", strerror(errno));
		env_close(&E);
		return 1;
	}
	ret = cmocka_run_group_tests_name("bpf_policy", tests, NULL, NULL);
	env_close(&E);
	return ret;

no_bpf:
	if (required) {
		fprintf(stderr, "bpf_policy: FAIL: %s (KCACHE_REQUIRE_BPF=1)\n", err);
		return 1;
	}
	fprintf(stderr, "bpf_policy: SKIP: %s (set KCACHE_REQUIRE_BPF=1 to make this fatal)\n",
		err);
	return 77;
}
