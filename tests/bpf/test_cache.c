/* test_cache.c: BPF_PROG_TEST_RUN tables for the kernel hot-key tier (bpf/cache.bpf.c).
 *
 * Each row is an input frame, the verdict and pass reason expected, and for XDP_TX the exact
 * reply frame. Expected replies are built by tests/lib/pkt.c from literal memcached text, and
 * every reply's checksums are re-verified there by a byte-wise sum that shares no code with the
 * BPF program. Every pass row asserts that the frame came back byte for byte as it went in, and
 * every row asserts which counter moved.
 *
 * Needs root (BPF). Without it the test exits 77 (skip), unless KCACHE_REQUIRE_BPF=1, in which
 * case it fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kcache/cache.h> /* before the skeleton, which uses struct kc_kconfig */
#include "cache.skel.h"
#include "kernel/cache_entry.h"
#include "../lib/pkt.h"

#define ROW_TX	     (-1)
#define TEST_ENTRIES 1024 /* kc_slots max_entries here; kc_index has 1024 buckets */
#define INDEX_MASK   (TEST_ENTRIES - 1)
#define FRAME_MAX    4096
#define NSEC	     1000000000ULL

/* One loaded program with its maps and the state of a tiny slot allocator. */
struct env {
	struct cache_bpf *skel;
	int prog_fd, index_fd, slots_fd, hb_fd, stats_fd;
	__u32 next_slot;
	__u64 next_gen;
};

static struct env E;
static int hb_manual; /* a row controls the heartbeat itself */
static int quiet;     /* do not print a line per row */

/* --- loading ------------------------------------------------------------------------------- */

/* addr_mode and addr (4 or 16 bytes, network order) as the loader sets them from --listen. */
static int env_open_addr(struct env *env, __u32 mtu, __u8 addr_mode, const void *addr, char *err,
			 size_t errlen)
{
	struct cache_bpf *skel;
	int ret;

	memset(env, 0, sizeof(*env));
	skel = cache_bpf__open();
	if (!skel) {
		snprintf(err, errlen, "open cache skeleton: %s", strerror(errno));
		return -1;
	}
	skel->rodata->kc_cfg.port = KC_PORT_DEFAULT;
	skel->rodata->kc_cfg.mtu = mtu;
	skel->rodata->kc_cfg.max_value = KC_MAX_VALUE_DEFAULT;
	skel->rodata->kc_cfg.hb_window_ns = KC_HB_WINDOW_NS_DEFAULT;
	skel->rodata->kc_cfg.addr_mode = addr_mode;
	if (addr_mode == KC_ADDR_V4)
		memcpy((void *)&skel->rodata->kc_cfg.addr4, addr, 4);
	if (addr_mode == KC_ADDR_V6)
		memcpy((void *)skel->rodata->kc_cfg.addr6, addr, 16);
	bpf_map__set_max_entries(skel->maps.kc_index, INDEX_MASK + 1);
	bpf_map__set_max_entries(skel->maps.kc_slots, TEST_ENTRIES);
	skel->rodata->kc_cfg.entries = TEST_ENTRIES;
	skel->rodata->kc_cfg.index_mask = kc_index_buckets(TEST_ENTRIES) - 1;
	assert_int_equal(skel->rodata->kc_cfg.index_mask, INDEX_MASK);
	skel->rodata->kc_cfg.ncpu = (__u32)libbpf_num_possible_cpus();
	bpf_map__set_max_entries(skel->maps.kc_hits,
				 TEST_ENTRIES * (__u32)libbpf_num_possible_cpus());
	ret = cache_bpf__load(skel);
	if (ret) {
		snprintf(err, errlen, "load cache program: %s", strerror(-ret));
		cache_bpf__destroy(skel);
		return -1;
	}
	env->skel = skel;
	env->prog_fd = bpf_program__fd(skel->progs.kc_cache);
	env->index_fd = bpf_map__fd(skel->maps.kc_index);
	env->slots_fd = bpf_map__fd(skel->maps.kc_slots);
	env->hb_fd = bpf_map__fd(skel->maps.kc_heartbeat);
	env->stats_fd = bpf_map__fd(skel->maps.kc_stats);
	env->next_gen = 1;
	return 0;
}

static int env_open(struct env *env, __u32 mtu, char *err, size_t errlen)
{
	return env_open_addr(env, mtu, KC_ADDR_ANY, NULL, err, errlen);
}

static void env_close(struct env *env)
{
	cache_bpf__destroy(env->skel);
	env->skel = NULL;
}

/* The install protocol of user/kernel/cache_entry.h, with a bump allocator for slots (the tests
 * never free one, so no quarantine is needed). Returns the slot. */
static __u32 install(struct env *env, const void *key, size_t klen, __u32 flags, const void *val,
		     size_t vlen, __u64 cas, __u64 expire_ns)
{
	struct kc_kentry e;
	struct kc_key k;
	__u32 slot = env->next_slot++;
	__u64 gen = env->next_gen++;

	assert_int_equal(kc_entry_render(&e, key, klen, flags, val, vlen, cas, expire_ns, gen), 0);
	assert_int_equal(bpf_map_update_elem(env->slots_fd, &slot, &e, BPF_ANY), 0);
	assert_int_equal(kc_key_init(&k, key, klen), 0);
	assert_int_equal(
	    kc_index_put(env->index_fd, INDEX_MASK, kc_key_hash(key, klen), slot, gen, 1), 0);
	return slot;
}

static void install_s(struct env *env, const char *key, __u32 flags, const char *val, __u64 cas)
{
	install(env, key, strlen(key), flags, val, strlen(val), cas, 0);
}

static void uninstall(struct env *env, const void *key, size_t klen)
{
	struct kc_key k;

	assert_int_equal(kc_key_init(&k, key, klen), 0);
	assert_int_equal(kc_index_del(env->index_fd, INDEX_MASK, kc_key_hash(key, klen)), 0);
}

static void heartbeat(struct env *env, __u64 ns)
{
	struct kc_heartbeat hb = {.mono_ns = ns};
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(env->hb_fd, &zero, &hb, BPF_ANY), 0);
}

/* --- frames -------------------------------------------------------------------------------- */

enum {
	F_V6 = 1 << 0,
	F_VLAN = 1 << 1,
	F_IPOPT = 1 << 2,
	F_MF = 1 << 3,
	F_FRAGOFF = 1 << 4,
	F_V6FRAG = 1 << 5,
	F_V6HBH = 1 << 6,
	F_WRONGPORT = 1 << 7,
	F_TCP = 1 << 8,
	F_ARP = 1 << 9,
	F_QINQ = 1 << 10,
	F_PAD60 = 1 << 11,
	F_MCAST = 1 << 12,
	F_BCASTMAC = 1 << 13,
	F_SPORT0 = 1 << 14,
	F_NOCSUM = 1 << 15,
	F_SEQ1 = 1 << 16,
	F_TOTAL2 = 1 << 17,
	F_UDPLEN = 1 << 18,
};

#define REQ_ID 0xbeef

static void base_spec(struct pkt_spec *s, unsigned int flags)
{
	static const uint8_t cmac[6] = {0x02, 0, 0, 0, 0, 0x01}, smac[6] = {0x02, 0, 0, 0, 0, 0x02};
	/* 198.18.0.0/15 and its IPv6 sibling 2001:2::/48, both set aside for benchmarking */
	static const uint8_t c4[4] = {198, 18, 0, 1}, s4[4] = {198, 18, 0, 2};
	static const uint8_t c6[16] = {0x20, 0x01, 0, 0x02, [15] = 1};
	static const uint8_t s6[16] = {0x20, 0x01, 0, 0x02, [15] = 2};

	memset(s, 0, sizeof(*s));
	memcpy(s->src_mac, cmac, 6);
	memcpy(s->dst_mac, smac, 6);
	s->v6 = !!(flags & F_V6);
	memcpy(s->src_ip, s->v6 ? c6 : c4, s->v6 ? 16 : 4);
	memcpy(s->dst_ip, s->v6 ? s6 : s4, s->v6 ? 16 : 4);
	s->sport = 40000;
	s->dport = KC_PORT_DEFAULT;
	s->ttl = 63;
	s->tos = 0x2b; /* DSCP AF11 + ECN CE: the reply keeps the DSCP, drops the ECN */
	s->ip_id = 0x4242;
	s->flow_label = 0x12345;
	if (flags & (F_VLAN | F_QINQ)) {
		s->vlan = 1;
		s->vlan_tci = 0x0064;
		if (flags & F_QINQ)
			s->vlan_tpid = 0x88a8;
	}
	if (flags & F_IPOPT)
		s->ip_opt_len = 4;
	if (flags & F_MF)
		s->frag_off = 0x2000;
	if (flags & F_FRAGOFF)
		s->frag_off = 0x0010;
	if (flags & F_V6FRAG)
		s->v6_ext = 44;
	if (flags & F_V6HBH)
		s->v6_ext = 0x100;
	if (flags & F_WRONGPORT)
		s->dport = 11212;
	if (flags & F_TCP)
		s->proto = 6;
	if (flags & F_ARP)
		s->raw_ethertype = 0x0806;
	if (flags & F_PAD60)
		s->pad_to = 60;
	if (flags & F_MCAST) {
		static const uint8_t m4[4] = {239, 1, 2, 3};

		memcpy(s->dst_ip, m4, 4);
	}
	if (flags & F_BCASTMAC)
		memset(s->dst_mac, 0xff, 6);
	if (flags & F_SPORT0)
		s->sport = 0;
	if (flags & F_NOCSUM)
		s->no_udp_csum = 1;
}

/* What kcache's reply to a request built from req looks like, at the IP level. */
static void reply_spec(struct pkt_spec *out, const struct pkt_spec *req)
{
	pkt_spec_reverse(out, req);
	out->ttl = 64;
	out->tos = req->tos & ~3;
	out->frag_off = 0x4000;
	out->pad_to = 0;
	out->no_udp_csum = 0;
}

static size_t build_req(uint8_t *buf, unsigned int flags, const void *text, size_t len)
{
	struct pkt_spec s;
	size_t n;

	base_spec(&s, flags);
	n = pkt_build_mc(buf, FRAME_MAX, &s, REQ_ID, (flags & F_SEQ1) ? 1 : 0,
			 (flags & F_TOTAL2) ? 2 : 1, text, len);
	assert_true(n > 0);
	if (flags & F_UDPLEN) {
		size_t l4 = 14 + (s.vlan ? 4 : 0) + (s.v6 ? 40 : 20);

		buf[l4 + 5] -= 1; /* UDP length one short of what IP says */
	}
	return n;
}

static size_t build_reply(uint8_t *buf, unsigned int flags, const void *text, size_t len)
{
	struct pkt_spec req, rep;
	size_t n;

	base_spec(&req, flags);
	reply_spec(&rep, &req);
	n = pkt_build_mc(buf, FRAME_MAX, &rep, REQ_ID, 0, 1, text, len);
	assert_true(n > 0);
	return n;
}

/* --- running ------------------------------------------------------------------------------- */

static const char *reason_str(int reason)
{
	return reason == ROW_TX ? "XDP_TX" : kc_pass_reason_name((unsigned int)reason);
}

/* Runs in through the program once and checks the verdict, the output frame and the counters.
 * want == NULL: XDP_PASS for `reason`, output identical to input. */
static void check_run(struct env *env, const char *name, const uint8_t *in, size_t in_len,
		      int reason, const uint8_t *want, size_t want_len)
{
	static uint8_t out[FRAME_MAX];
	struct kc_kstats before, after;
	char why[256];
	int err;

	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)in_len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	if (!hb_manual)
		assert_int_equal(kc_heartbeat_beat(env->hb_fd), 0);
	assert_int_equal(kc_kstats_read(env->stats_fd, &before), 0);
	memset(out, 0xa5, sizeof(out));
	err = bpf_prog_test_run_opts(env->prog_fd, &o);
	if (err)
		fail_msg("%s: BPF_PROG_TEST_RUN: %s", name, strerror(-err));
	assert_int_equal(kc_kstats_read(env->stats_fd, &after), 0);

	if (reason == ROW_TX) {
		if (o.retval != XDP_TX) {
			int moved = -1;

			for (int r = 0; r < KC_PASS__MAX; r++)
				if (after.pass[r] != before.pass[r])
					moved = r;
			fail_msg("%s: verdict %u, want XDP_TX (pass reason %s)", name, o.retval,
				 moved < 0 ? "none" : kc_pass_reason_name((unsigned int)moved));
		}
		if (o.data_size_out != want_len || memcmp(out, want, want_len)) {
			pkt_diff(out, o.data_size_out, want, want_len, why, sizeof(why));
			fail_msg("%s: reply differs (got/want) %s", name, why);
		}
		if (pkt_verify(out, o.data_size_out, 1, why, sizeof(why)))
			fail_msg("%s: reply checksums: %s", name, why);
		assert_int_equal(after.hits, before.hits + 1);
		for (int r = 0; r < KC_PASS__MAX; r++)
			assert_int_equal(after.pass[r], before.pass[r]);
	} else {
		if (o.retval != XDP_PASS)
			fail_msg("%s: verdict %u, want XDP_PASS", name, o.retval);
		if (o.data_size_out != in_len || memcmp(out, in, in_len)) {
			pkt_diff(out, o.data_size_out, in, in_len, why, sizeof(why));
			fail_msg("%s: passed frame was modified (got/sent) %s", name, why);
		}
		assert_int_equal(after.hits, before.hits);
		for (int r = 0; r < KC_PASS__MAX; r++) {
			__u64 want_delta = r == reason ? 1 : 0;

			if (after.pass[r] - before.pass[r] != want_delta)
				fail_msg("%s: pass[%s] moved by %llu, want %llu", name,
					 kc_pass_reason_name((unsigned int)r),
					 (unsigned long long)(after.pass[r] - before.pass[r]),
					 (unsigned long long)want_delta);
		}
		assert_int_equal(after.misses - before.misses, reason == KC_PASS_MISS ? 1 : 0);
	}
	if (!quiet)
		print_message("    %-28s %-14s %4zu -> %4u bytes\n", name, reason_str(reason),
			      in_len, o.data_size_out);
}

/* Builds the request and (for XDP_TX) the expected reply from memcached text, and runs it. */
static void run_text(struct env *env, const char *name, unsigned int flags, const void *req,
		     size_t req_len, int reason, const void *reply, size_t reply_len)
{
	static uint8_t in[FRAME_MAX], want[FRAME_MAX];
	size_t in_len, want_len = 0;

	in_len = build_req(in, flags, req, req_len);
	if (reason == ROW_TX)
		want_len = build_reply(want, flags, reply, reply_len);
	check_run(env, name, in, in_len, reason, reason == ROW_TX ? want : NULL, want_len);
}

/* --- fixtures ------------------------------------------------------------------------------ */

static const char gamma_val[] = "g\r\n\0END\r\n"; /* values are opaque bytes */
#define GAMMA_LEN (sizeof(gamma_val) - 1)
static char big1[1000], big2[1000], over[1001];
static char key250[251];

/* Points kc_index's entry for key's hash at slot/gen (installed for another key): what the
 * program sees when two keys share a 64-bit hash, or when an index element was recycled. */
static void alias(struct env *env, const char *key, __u32 slot, __u64 gen)
{
	assert_int_equal(
	    kc_index_put(env->index_fd, INDEX_MASK, kc_key_hash(key, strlen(key)), slot, gen, 1),
	    0);
}

static void install_fixtures(struct env *env)
{
	__u64 now = kc_mono_ns(), h;
	struct kc_kref ref;
	__u32 foo_slot, slot;

	foo_slot = install(env, "foo", 3, 5, "bar", 3, 42, 0);
	install(env, "k\x01\ty", 4, 0, "ok", 2, 7, 0); /* memcaslap's keys hold such bytes */
	install_s(env, "alpha", 0, "one", 7);
	install_s(env, "beta", 1, "two-two", 8);
	install(env, "gamma", 5, 4294967295u, gamma_val, GAMMA_LEN, UINT64_MAX, 0);
	install_s(env, "empty", 0, "", 1);
	install_s(env, "cl\xc3\xa9", 3, "utf8", 2);
	install(env, "old", 3, 0, "stale", 5, 3, now - 1);
	install(env, "fresh", 5, 0, "new", 3, 4, now + 3600 * NSEC);
	memset(big1, 'x', sizeof(big1));
	memset(big2, 'y', sizeof(big2));
	memset(over, 'z', sizeof(over));
	install(env, "big1", 4, 0, big1, sizeof(big1), 5, 0);
	install(env, "big2", 4, 0, big2, sizeof(big2), 6, 0);
	install(env, "over", 4, 0, over, sizeof(over), 9, 0);
	memset(key250, 'k', 250);
	install(env, key250, 250, 250, "v250", 4, 250, 0);
	/* Keys ending just before, at and after the walk's 8-byte word boundaries. */
	install_s(env, "k7abcde", 7, "w7", 7);
	install_s(env, "k8abcdef", 8, "w8", 8);
	slot = install(env, "k9abcdefg", 9, 9, "w9", 2, 9, 0);
	/* Keys whose hash leads to a slot holding another key of the same length, differing in
	 * the partial last word or in a full word: must miss, never serve the slot's value. */
	alias(env, "k9abcdefX", slot, env->next_gen - 1);
	slot = install(env, "k16abcdefghijklm", 16, 16, "w16", 3, 16, 0);
	alias(env, "k16abcdefghijklX", slot, env->next_gen - 1);
	alias(env, "X16abcdefghijklm", slot, env->next_gen - 1);
	alias(env, "k16abcde", slot, env->next_gen - 1); /* a prefix */

	/* A recycled index element: "ghost" points at foo's slot and gen. */
	alias(env, "ghost", foo_slot, 1);
	alias(env, "fop", foo_slot, 1); /* same length, one byte off */
	/* An index entry whose gen no longer matches its slot (the slot was re-rendered). */
	install_s(env, "regen", 0, "x", 1);
	h = kc_key_hash("regen", 5);
	assert_int_equal(kc_index_get(env->index_fd, INDEX_MASK, h, &ref), 0);
	assert_int_equal(kc_index_put(env->index_fd, INDEX_MASK, h, ref.slot, ref.gen + 1000u, 1),
			 0);
}

/* --- the table ----------------------------------------------------------------------------- */

struct row {
	const char *name;
	unsigned int flags;
	const char *req;
	size_t req_len;
	int reason;
	const char *reply;
	size_t reply_len;
};

#define T(s)	s, sizeof(s) - 1
#define TX(s)	ROW_TX, s, sizeof(s) - 1
#define PASS(r) r, NULL, 0

static const char foo_reply[] = "VALUE foo 5 3\r\nbar\r\nEND\r\n";

static const struct row rows[] = {
    /* hits */
    {"ipv4_hit", 0, T("get foo\r\n"), TX("VALUE foo 5 3\r\nbar\r\nEND\r\n")},
    {"ipv6_hit", F_V6, T("get foo\r\n"), TX("VALUE foo 5 3\r\nbar\r\nEND\r\n")},
    {"vlan_hit", F_VLAN, T("get foo\r\n"), TX("VALUE foo 5 3\r\nbar\r\nEND\r\n")},
    {"vlan_ipv6_hit", F_VLAN | F_V6, T("get foo\r\n"), TX("VALUE foo 5 3\r\nbar\r\nEND\r\n")},
    {"multi3_hit", 0, T("get alpha beta gamma\r\n"),
     TX("VALUE alpha 0 3\r\none\r\nVALUE beta 1 7\r\ntwo-two\r\n"
	"VALUE gamma 4294967295 9\r\ng\r\n\0END\r\n\r\nEND\r\n")},
    {"multi3_hit_ipv6", F_V6, T("get gamma foo beta\r\n"),
     TX("VALUE gamma 4294967295 9\r\ng\r\n\0END\r\n\r\nVALUE foo 5 3\r\nbar\r\n"
	"VALUE beta 1 7\r\ntwo-two\r\nEND\r\n")},
    {"gets_cas", 0, T("gets foo gamma\r\n"),
     TX("VALUE foo 5 3 42\r\nbar\r\n"
	"VALUE gamma 4294967295 9 18446744073709551615\r\ng\r\n\0END\r\n\r\nEND\r\n")},
    {"gets_cas_vlan_ipv6", F_VLAN | F_V6, T("gets beta\r\n"),
     TX("VALUE beta 1 7 8\r\ntwo-two\r\nEND\r\n")},
    {"lf_only", 0, T("get foo\n"), TX("VALUE foo 5 3\r\nbar\r\nEND\r\n")},
    {"extra_spaces", 0, T("get  foo   alpha \r\n"),
     TX("VALUE foo 5 3\r\nbar\r\nVALUE alpha 0 3\r\none\r\nEND\r\n")},
    {"duplicate_key", 0, T("get foo foo\r\n"),
     TX("VALUE foo 5 3\r\nbar\r\nVALUE foo 5 3\r\nbar\r\nEND\r\n")},
    {"empty_value", 0, T("get empty\r\n"), TX("VALUE empty 0 0\r\n\r\nEND\r\n")},
    {"control_bytes_in_key", 0, T("get k\x01\ty\r\n"), TX("VALUE k\x01\ty 0 2\r\nok\r\nEND\r\n")},
    {"utf8_key", F_V6, T("get cl\xc3\xa9\r\n"), TX("VALUE cl\xc3\xa9 3 4\r\nutf8\r\nEND\r\n")},
    {"eth_padded_request", F_PAD60, T("get foo\r\n"), TX("VALUE foo 5 3\r\nbar\r\nEND\r\n")},
    {"request_without_udp_csum", F_NOCSUM, T("get foo\r\n"), TX("VALUE foo 5 3\r\nbar\r\nEND\r\n")},
    {"not_yet_expired", 0, T("get fresh\r\n"), TX("VALUE fresh 0 3\r\nnew\r\nEND\r\n")},

    /* misses: the whole request goes up, no partial reply */
    {"miss", 0, T("get nope\r\n"), PASS(KC_PASS_MISS)},
    {"multi3_one_miss", 0, T("get alpha nope gamma\r\n"), PASS(KC_PASS_MISS)},
    {"multi3_last_miss", F_V6, T("get alpha beta nope\r\n"), PASS(KC_PASS_MISS)},
    {"gets_one_miss", 0, T("gets foo nope\r\n"), PASS(KC_PASS_MISS)},
    {"expired", 0, T("get old\r\n"), PASS(KC_PASS_MISS)},
    {"value_over_max_value", 0, T("get over\r\n"), PASS(KC_PASS_MISS)},
    {"recycled_index_element", 0, T("get ghost\r\n"), PASS(KC_PASS_MISS)},
    /* Another key's 64-bit hash leading to a slot: the slot's key decides, a mismatch misses. */
    {"hash64_collision_one_byte", 0, T("get fop\r\n"), PASS(KC_PASS_MISS)},
    {"hash64_collision_last_word", 0, T("get k9abcdefX\r\n"), PASS(KC_PASS_MISS)},
    {"hash64_collision_word2", 0, T("get k16abcdefghijklX\r\n"), PASS(KC_PASS_MISS)},
    {"hash64_collision_word1", 0, T("get X16abcdefghijklm\r\n"), PASS(KC_PASS_MISS)},
    {"hash64_collision_prefix", 0, T("get k16abcde\r\n"), PASS(KC_PASS_MISS)},
    {"hash64_collision_then_hit", 0, T("get foo fop\r\n"), PASS(KC_PASS_MISS)},
    {"hash64_slot_key_still_served", 0, T("get k16abcdefghijklm k9abcdefg\r\n"),
     TX("VALUE k16abcdefghijklm 16 3\r\nw16\r\nVALUE k9abcdefg 9 2\r\nw9\r\nEND\r\n")},
    {"index_gen_mismatch", 0, T("get regen\r\n"), PASS(KC_PASS_MISS)},
    {"reply_over_mtu", 0, T("get big1 big2\r\n"), PASS(KC_PASS_TOO_BIG)},

    /* not ours, or not parseable as ours */
    {"ip_options", F_IPOPT, T("get foo\r\n"), PASS(KC_PASS_IP_OPTIONS)},
    {"ipv6_hop_by_hop", F_V6 | F_V6HBH, T("get foo\r\n"), PASS(KC_PASS_IP_OPTIONS)},
    {"ipv4_more_fragments", F_MF, T("get foo\r\n"), PASS(KC_PASS_FRAGMENT)},
    {"ipv4_fragment_offset", F_FRAGOFF, T("get foo\r\n"), PASS(KC_PASS_FRAGMENT)},
    {"ipv6_fragment", F_V6 | F_V6FRAG, T("get foo\r\n"), PASS(KC_PASS_FRAGMENT)},
    {"wrong_port", F_WRONGPORT, T("get foo\r\n"), PASS(KC_PASS_WRONG_PORT)},
    {"wrong_port_ipv6", F_V6 | F_WRONGPORT, T("get foo\r\n"), PASS(KC_PASS_WRONG_PORT)},
    {"tcp", F_TCP, T("get foo\r\n"), PASS(KC_PASS_NOT_UDP)},
    {"arp", F_ARP, T("0123456789012345678901234567"), PASS(KC_PASS_NOT_IP)},
    {"qinq_outer_tag", F_QINQ, T("get foo\r\n"), PASS(KC_PASS_NOT_IP)},
    {"multicast_dst", F_MCAST, T("get foo\r\n"), PASS(KC_PASS_NOT_UNICAST)},
    {"broadcast_mac", F_BCASTMAC, T("get foo\r\n"), PASS(KC_PASS_NOT_UNICAST)},
    {"source_port_0", F_SPORT0, T("get foo\r\n"), PASS(KC_PASS_NOT_UNICAST)},
    {"udp_len_mismatch", F_UDPLEN, T("get foo\r\n"), PASS(KC_PASS_MALFORMED)},
    {"frame_seq_1", F_SEQ1, T("get foo\r\n"), PASS(KC_PASS_FRAME_HDR)},
    {"frame_total_2", F_TOTAL2, T("get foo\r\n"), PASS(KC_PASS_FRAME_HDR)},
    {"cmd_set", 0, T("set foo 0 0 3\r\nbar\r\n"), PASS(KC_PASS_NOT_GET)},
    {"cmd_delete", 0, T("delete foo\r\n"), PASS(KC_PASS_NOT_GET)},
    {"cmd_gat", 0, T("gat 0 foo\r\n"), PASS(KC_PASS_NOT_GET)},
    {"cmd_upper_GET", 0, T("GET foo\r\n"), PASS(KC_PASS_NOT_GET)},
    {"cmd_getfoo", 0, T("getfoo\r\n"), PASS(KC_PASS_NOT_GET)},
    {"cmd_version", 0, T("version\r\n"), PASS(KC_PASS_NOT_GET)},
    {"cmd_meta_mg", 0, T("mg foo v\r\n"), PASS(KC_PASS_NOT_GET)},
    {"empty_text", 0, T(""), PASS(KC_PASS_NOT_GET)},
    {"get_no_key", 0, T("get\r\n"), PASS(KC_PASS_PARSE)},
    {"gets_no_key", 0, T("gets\r\n"), PASS(KC_PASS_PARSE)},
    {"get_space_no_key", 0, T("get \r\n"), PASS(KC_PASS_PARSE)},
    {"no_line_end", 0, T("get foo"), PASS(KC_PASS_PARSE)},
    {"two_commands", 0, T("get foo\r\nget alpha\r\n"), PASS(KC_PASS_PARSE)},
    {"cr_inside", 0, T("get foo\rbar\r\n"), PASS(KC_PASS_PARSE)},
    /* The daemon's tokenizer splits on spaces only: a tab is part of a key. */
    {"tab_in_key_not_resident", 0, T("get fo\to\r\n"), PASS(KC_PASS_MISS)},
    {"nul_after_line", 0, T("get foo\r\n\0"), PASS(KC_PASS_PARSE)},
    {"lf_cr", 0, T("get foo\n\r"), PASS(KC_PASS_PARSE)},
    /* The word-at-a-time walk: line ends inside the line stop it before the key's lookup. */
    {"cr_inside_after_missing_key", 0, T("get nope\rx\r\n"), PASS(KC_PASS_PARSE)},
    {"lf_inside_after_missing_key", 0, T("get nope\nfoo\r\n"), PASS(KC_PASS_PARSE)},
    {"word_boundary_keys", 0, T("get k7abcde k8abcdef k9abcdefg k16abcdefghijklm\r\n"),
     TX("VALUE k7abcde 7 2\r\nw7\r\nVALUE k8abcdef 8 2\r\nw8\r\n"
	"VALUE k9abcdefg 9 2\r\nw9\r\nVALUE k16abcdefghijklm 16 3\r\nw16\r\nEND\r\n")},
    {"word_boundary_keys_lf", 0, T("get k8abcdef k16abcdefghijklm\n"),
     TX("VALUE k8abcdef 8 2\r\nw8\r\nVALUE k16abcdefghijklm 16 3\r\nw16\r\nEND\r\n")},
    {"key_prefix_not_resident", 0, T("get k8abcde\r\n"), PASS(KC_PASS_MISS)},
    {"key_longer_not_resident", 0, T("get k8abcdefg\r\n"), PASS(KC_PASS_MISS)},
    {"long_space_runs", 0,
     T("get                                                                      foo"
       "                                                                         alpha"
       "                                                                         \r\n"),
     TX("VALUE foo 5 3\r\nbar\r\nVALUE alpha 0 3\r\none\r\nEND\r\n")},
    {"spaces_no_line_end", 0,
     T("get foo                                                                         "),
     PASS(KC_PASS_PARSE)},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];

		run_text(&E, r->name, r->flags, r->req, r->req_len, r->reason, r->reply,
			 r->reply_len);
	}
}

/* --- rows built in code -------------------------------------------------------------------- */

static void test_long_keys_and_values(void **state)
{
	char req[300], reply[1200];
	int n, m;

	(void)state;
	n = snprintf(req, sizeof(req), "get %s\r\n", key250);
	m = snprintf(reply, sizeof(reply), "VALUE %s 250 4\r\nv250\r\nEND\r\n", key250);
	run_text(&E, "key_250_bytes", 0, req, (size_t)n, ROW_TX, reply, (size_t)m);
	run_text(&E, "key_250_bytes_ipv6", F_V6, req, (size_t)n, ROW_TX, reply, (size_t)m);
	n = snprintf(req, sizeof(req), "get %sk\r\n", key250);
	run_text(&E, "key_251_bytes", 0, req, (size_t)n, KC_PASS_PARSE, NULL, 0);

	m = snprintf(reply, sizeof(reply), "VALUE big1 0 1000\r\n%.1000s\r\nEND\r\n", big1);
	run_text(&E, "value_1000_bytes", 0, T("get big1\r\n"), ROW_TX, reply, (size_t)m);
	run_text(&E, "value_1000_bytes_vlan_ipv6", F_VLAN | F_V6, T("get big1\r\n"), ROW_TX, reply,
		 (size_t)m);
}

static void test_short_frame_header(void **state)
{
	static uint8_t in[FRAME_MAX];
	struct pkt_spec s;
	size_t n;

	(void)state;
	base_spec(&s, 0);
	n = pkt_build(in, sizeof(in), &s, "\xbe\xef\0\0", 4);
	check_run(&E, "frame_header_4_bytes", in, n, KC_PASS_FRAME_HDR, NULL, 0);
	n = pkt_build(in, sizeof(in), &s, "", 0);
	check_run(&E, "udp_no_payload", in, n, KC_PASS_FRAME_HDR, NULL, 0);
}

static void test_stale_heartbeat(void **state)
{
	__u64 now = kc_mono_ns();

	(void)state;
	hb_manual = 1;
	heartbeat(&E, 0);
	run_text(&E, "heartbeat_never", 0, T("get foo\r\n"), KC_PASS_STALE, NULL, 0);
	heartbeat(&E, now - 2 * NSEC);
	run_text(&E, "heartbeat_2s_old", 0, T("get foo\r\n"), KC_PASS_STALE, NULL, 0);
	heartbeat(&E, now - NSEC - NSEC / 10);
	run_text(&E, "heartbeat_1.1s_old", F_V6, T("get foo\r\n"), KC_PASS_STALE, NULL, 0);
	heartbeat(&E, now + 10 * NSEC);
	run_text(&E, "heartbeat_in_future", 0, T("get foo\r\n"), KC_PASS_STALE, NULL, 0);
	heartbeat(&E, kc_mono_ns() + NSEC / 1000);
	run_text(&E, "heartbeat_1ms_ahead_is_skew", 0, T("get foo\r\n"), TX(foo_reply));
	heartbeat(&E, kc_mono_ns());
	run_text(&E, "heartbeat_fresh", 0, T("get foo\r\n"), TX(foo_reply));
	assert_int_equal(kc_heartbeat_stop(E.hb_fd), 0);
	run_text(&E, "heartbeat_stopped", 0, T("get foo\r\n"), KC_PASS_STALE, NULL, 0);
	hb_manual = 0;
}

/* Every prefix of a valid request, from 0 bytes to the whole frame. BPF_PROG_TEST_RUN refuses
 * XDP input shorter than an Ethernet header with EINVAL; from there on every prefix must pass
 * untouched, and only the whole frame is answered. */
static void truncations(unsigned int flags, const char *text, size_t text_len, const char *reply,
			size_t reply_len)
{
	static uint8_t in[FRAME_MAX], want[FRAME_MAX], out[FRAME_MAX];
	size_t full, want_len;
	char name[64];

	full = build_req(in, flags, text, text_len);
	want_len = build_reply(want, flags, reply, reply_len);
	for (size_t len = 0; len <= full; len++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len,
			    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

		if (len >= 14)
			break;
		assert_int_equal(bpf_prog_test_run_opts(E.prog_fd, &o), -EINVAL);
	}
	for (size_t len = 14; len < full; len++) {
		snprintf(name, sizeof(name), "truncated_%zu_of_%zu", len, full);
		/* which check stops it depends on where the cut falls: any reason, but a pass */
		{
			struct kc_kstats before, after;
			__u64 moved = 0;

			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len,
				    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
			assert_int_equal(kc_heartbeat_beat(E.hb_fd), 0);
			assert_int_equal(kc_kstats_read(E.stats_fd, &before), 0);
			assert_int_equal(bpf_prog_test_run_opts(E.prog_fd, &o), 0);
			assert_int_equal(kc_kstats_read(E.stats_fd, &after), 0);
			if (o.retval != XDP_PASS)
				fail_msg("%s: verdict %u, want XDP_PASS", name, o.retval);
			if (o.data_size_out != len || memcmp(out, in, len))
				fail_msg("%s: passed frame was modified", name);
			for (int r = 0; r < KC_PASS__MAX; r++)
				moved += after.pass[r] - before.pass[r];
			assert_int_equal(moved, 1);
			assert_int_equal(after.hits, before.hits);
		}
	}
	snprintf(name, sizeof(name), "whole_%zu_bytes", full);
	check_run(&E, name, in, full, ROW_TX, want, want_len);
	print_message("    %zu truncations of a %zu-byte frame: 0..13 EINVAL, 14..%zu XDP_PASS\n",
		      full + 1, full, full - 1);
}

static void test_truncations(void **state)
{
	(void)state;
	truncations(0, T("get foo\r\n"), T(foo_reply));
	truncations(F_VLAN | F_V6, T("gets foo beta\r\n"),
		    T("VALUE foo 5 3 42\r\nbar\r\nVALUE beta 1 7 8\r\ntwo-two\r\nEND\r\n"));
}

/* Every prefix of the request text in a consistent frame (IP and UDP lengths fixed up): none
 * of them is a complete request, so each must pass. */
static void test_text_prefixes(void **state)
{
	static const char text[] = "gets alpha beta\r\n";
	char name[64];

	(void)state;
	for (size_t len = 0; len < sizeof(text) - 1; len++) {
		snprintf(name, sizeof(name), "text_prefix_%zu", len);
		{
			static uint8_t in[FRAME_MAX], out[FRAME_MAX];
			size_t n = build_req(in, 0, text, len);

			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)n,
				    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
			assert_int_equal(kc_heartbeat_beat(E.hb_fd), 0);
			assert_int_equal(bpf_prog_test_run_opts(E.prog_fd, &o), 0);
			if (o.retval != XDP_PASS || o.data_size_out != n || memcmp(out, in, n))
				fail_msg("%s: want XDP_PASS and the frame untouched", name);
		}
	}
	run_text(&E, "text_whole", 0, T(text),
		 TX("VALUE alpha 0 3 7\r\none\r\nVALUE beta 1 7 8\r\ntwo-two\r\nEND\r\n"));
}

/* Random keys (1..250 bytes), binary values (0..1000 bytes: every offset parity), flags and
 * cas, fetched in random multi-gets over every L2/L3 combination. Expected replies are rendered
 * here with snprintf and compared byte for byte. Deterministic seed. */
#define RND_ENTRIES  300
#define RND_REQUESTS 2000

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

struct rnd_entry {
	char key[KC_KEY_MAX + 1];
	size_t klen;
	uint8_t val[KC_MAX_VALUE_DEFAULT];
	size_t vlen;
	__u32 flags;
	__u64 cas;
};

static void test_random_replies(void **state)
{
	static struct rnd_entry ent[RND_ENTRIES];
	static char req[2048], reply[8192];
	static const unsigned int l23[] = {0, F_V6, F_VLAN, F_VLAN | F_V6};
	unsigned int served = 0, too_big = 0;
	char name[48];

	(void)state;
	for (int i = 0; i < RND_ENTRIES; i++) {
		struct rnd_entry *e = &ent[i];
		int n = snprintf(e->key, sizeof(e->key), "r%d-", i);

		e->klen = (size_t)n + rnd() % (KC_KEY_MAX - (size_t)n + 1);
		for (size_t j = (size_t)n; j < e->klen; j++)
			e->key[j] = (char)(0x21 + rnd() % 94);
		/* half of them short, so that multi-gets often fit the MTU */
		e->vlen = rnd() % 2 ? rnd() % 40 : rnd() % (KC_MAX_VALUE_DEFAULT + 1);
		for (size_t j = 0; j < e->vlen; j++)
			e->val[j] = (uint8_t)rnd();
		e->flags = (__u32)rnd();
		e->cas = rnd() >> (rnd() % 64);
		install(&E, e->key, e->klen, e->flags, e->val, e->vlen, e->cas, 0);
	}

	quiet = 1;
	for (int r = 0; r < RND_REQUESTS; r++) {
		unsigned int flags = l23[rnd() % 4];
		int gets = (int)(rnd() % 2), nkeys = 1 + (int)(rnd() % 4);
		size_t n = 0, m = 0, limit = 1500 - (flags & F_V6 ? 40 : 20) - 8 - 8 - 5;

		n += (size_t)snprintf(req, sizeof(req), gets ? "gets" : "get");
		for (int k = 0; k < nkeys; k++) {
			struct rnd_entry *e = &ent[rnd() % RND_ENTRIES];

			req[n++] = ' ';
			memcpy(req + n, e->key, e->klen);
			n += e->klen;
			m += (size_t)snprintf(reply + m, sizeof(reply) - m, "VALUE %.*s %u %zu",
					      (int)e->klen, e->key, e->flags, e->vlen);
			if (gets)
				m += (size_t)snprintf(reply + m, sizeof(reply) - m, " %llu",
						      (unsigned long long)e->cas);
			memcpy(reply + m, "\r\n", 2);
			memcpy(reply + m + 2, e->val, e->vlen);
			memcpy(reply + m + 2 + e->vlen, "\r\n", 2);
			m += e->vlen + 4;
		}
		memcpy(req + n, "\r\n", 2);
		n += 2;
		snprintf(name, sizeof(name), "random_%d", r);
		if (m > limit) {
			run_text(&E, name, flags, req, n, KC_PASS_TOO_BIG, NULL, 0);
			too_big++;
			continue;
		}
		memcpy(reply + m, "END\r\n", 5);
		run_text(&E, name, flags, req, n, ROW_TX, reply, m + 5);
		served++;
	}
	quiet = 0;
	print_message("    %d random multi-gets: %u served byte-exact, %u too big (passed)\n",
		      RND_REQUESTS, served, too_big);
}

/* --- the collision rows -------------------------------------------------------------------- */

/* Keys that share a 64-bit hash with a resident key are the alias rows of the table. Here: keys
 * whose hashes differ but land in the same kc_index bucket. KC_INDEX_WAYS of them are all
 * resident and served side by side; one more finds no free way, is refused (kc_index_put:
 * -ENOSPC) and passes as a miss, never served another key's value; it fits once a way is
 * freed. */
#define COLL_TRIES (1u << 16)

/* KC_INDEX_WAYS + 1 keys "coll-NNNNNNN" of one bucket that holds nothing yet. */
static void find_bucket_keys(char keys[][32], __u32 *bucket)
{
	static __u32 count[INDEX_MASK + 1];
	struct kc_ibucket b;

	memset(count, 0, sizeof(count));
	for (__u32 i = 0; i < COLL_TRIES; i++) {
		char k[32];
		__u32 bi;

		snprintf(k, sizeof(k), "coll-%07u", i);
		bi = (__u32)kc_key_hash(k, strlen(k)) & INDEX_MASK;
		if (++count[bi] < KC_INDEX_WAYS + 1)
			continue;
		assert_int_equal(bpf_map_lookup_elem(E.index_fd, &bi, &b), 0);
		if (b.way[0].hash || b.way[1].hash || b.way[2].hash || b.way[3].hash)
			continue;
		*bucket = bi;
		for (__u32 j = 0, n = 0; j <= i && n < KC_INDEX_WAYS + 1; j++) {
			snprintf(k, sizeof(k), "coll-%07u", j);
			if (((__u32)kc_key_hash(k, strlen(k)) & INDEX_MASK) == bi)
				memcpy(keys[n++], k, sizeof(k));
		}
		return;
	}
	fail_msg("no empty bucket with %d keys among %u", KC_INDEX_WAYS + 1, COLL_TRIES);
}

static void test_collision(void **state)
{
	char keys[KC_INDEX_WAYS + 1][32], req[200], reply[400], val[16];
	struct kc_kentry e;
	__u32 bucket = 0, slot;
	int n, m;

	(void)state;
	find_bucket_keys(keys, &bucket);
	print_message("    bucket %u: %s %s %s %s and %s\n", bucket, keys[0], keys[1], keys[2],
		      keys[3], keys[4]);
	for (int i = 0; i < KC_INDEX_WAYS; i++) {
		snprintf(val, sizeof(val), "val-%d", i);
		install_s(&E, keys[i], (__u32)i, val, 100 + (__u64)i);
	}
	for (int i = 0; i < KC_INDEX_WAYS; i++) {
		n = snprintf(req, sizeof(req), "get %s\r\n", keys[i]);
		m = snprintf(reply, sizeof(reply), "VALUE %s %d 5\r\nval-%d\r\nEND\r\n", keys[i], i,
			     i);
		run_text(&E, "bucket_way_served", 0, req, (size_t)n, ROW_TX, reply, (size_t)m);
	}
	n = snprintf(req, sizeof(req), "get %s %s %s %s\r\n", keys[3], keys[2], keys[1], keys[0]);
	m = snprintf(reply, sizeof(reply),
		     "VALUE %s 3 5\r\nval-3\r\nVALUE %s 2 5\r\nval-2\r\nVALUE %s 1 5\r\nval-1\r\n"
		     "VALUE %s 0 5\r\nval-0\r\nEND\r\n",
		     keys[3], keys[2], keys[1], keys[0]);
	run_text(&E, "bucket_all_ways_one_get", 0, req, (size_t)n, ROW_TX, reply, (size_t)m);

	/* The fifth key: its slot is written, but no way takes it. */
	slot = E.next_slot++;
	assert_int_equal(
	    kc_entry_render(&e, keys[4], strlen(keys[4]), 4, "val-4", 5, 104, 0, E.next_gen), 0);
	assert_int_equal(bpf_map_update_elem(E.slots_fd, &slot, &e, BPF_ANY), 0);
	assert_int_equal(kc_index_put(E.index_fd, INDEX_MASK, kc_key_hash(keys[4], strlen(keys[4])),
				      slot, E.next_gen, 0),
			 -ENOSPC);
	n = snprintf(req, sizeof(req), "get %s\r\n", keys[4]);
	run_text(&E, "bucket_full_key_absent", 0, req, (size_t)n, KC_PASS_MISS, NULL, 0);
	n = snprintf(req, sizeof(req), "get %s %s\r\n", keys[0], keys[4]);
	run_text(&E, "bucket_full_multi_get", 0, req, (size_t)n, KC_PASS_MISS, NULL, 0);

	/* A freed way takes it; the others are untouched. */
	uninstall(&E, keys[1], strlen(keys[1]));
	n = snprintf(req, sizeof(req), "get %s\r\n", keys[1]);
	run_text(&E, "bucket_removed_key", 0, req, (size_t)n, KC_PASS_MISS, NULL, 0);
	assert_int_equal(kc_index_put(E.index_fd, INDEX_MASK, kc_key_hash(keys[4], strlen(keys[4])),
				      slot, E.next_gen++, 0),
			 0);
	n = snprintf(req, sizeof(req), "get %s %s\r\n", keys[4], keys[0]);
	m = snprintf(reply, sizeof(reply),
		     "VALUE %s 4 5\r\nval-4\r\nVALUE %s 0 5\r\nval-0\r\nEND\r\n", keys[4], keys[0]);
	run_text(&E, "bucket_freed_way", 0, req, (size_t)n, ROW_TX, reply, (size_t)m);
	for (int i = 0; i < KC_INDEX_WAYS + 1; i++)
		if (i != 1)
			uninstall(&E, keys[i], strlen(keys[i]));
}

/* Removing a key stops it being served at once; re-installing in a new slot serves the new
 * value. */
static void test_remove_and_replace(void **state)
{
	(void)state;
	install_s(&E, "swap", 1, "first", 1);
	run_text(&E, "installed", 0, T("get swap\r\n"), TX("VALUE swap 1 5\r\nfirst\r\nEND\r\n"));
	install_s(&E, "swap", 2, "second!", 2);
	run_text(&E, "replaced", 0, T("gets swap\r\n"),
		 TX("VALUE swap 2 7 2\r\nsecond!\r\nEND\r\n"));
	uninstall(&E, "swap", 4);
	run_text(&E, "removed", 0, T("get swap\r\n"), KC_PASS_MISS, NULL, 0);
}

/* A second program with a 9000-byte MTU: more keys than KC_MAX_KEYS, and a reply larger than the
 * frame the driver (here: BPF_PROG_TEST_RUN, one page) can hold. */
static void test_key_count_and_room(void **state)
{
	static char req[1024], reply[4096];
	struct env big;
	char err[256];
	size_t n = 0, m = 0;

	(void)state;
	if (env_open(&big, 9000, err, sizeof(err)))
		fail_msg("%s", err);
	install_s(&big, "a", 0, "", 0);
	memset(big1, 'x', sizeof(big1));
	install(&big, "b1", 2, 0, big1, 1000, 0, 0);
	install(&big, "b2", 2, 0, big1, 1000, 0, 0);
	install(&big, "b3", 2, 0, big1, 1000, 0, 0);
	install(&big, "b4", 2, 0, big1, 1000, 0, 0);

	n = (size_t)snprintf(req, sizeof(req), "get");
	for (int i = 0; i < 128; i++) {
		n += (size_t)snprintf(req + n, sizeof(req) - n, " a");
		m += (size_t)snprintf(reply + m, sizeof(reply) - m, "VALUE a 0 0\r\n\r\n");
	}
	m += (size_t)snprintf(reply + m, sizeof(reply) - m, "END\r\n");
	memcpy(req + n, "\r\n", 2);
	run_text(&big, "keys_128", 0, req, n + 2, ROW_TX, reply, m);
	memcpy(req + n, " a\r\n", 4);
	run_text(&big, "keys_129", 0, req, n + 4, KC_PASS_TOO_MANY_KEYS, NULL, 0);
	run_text(&big, "reply_larger_than_frame", 0, T("get b1 b2 b3 b4\r\n"), KC_PASS_NO_ROOM,
		 NULL, 0);
	env_close(&big);
}

/* XDP answers only packets sent to the daemon's --listen address (the server side of the rows
 * is 198.18.0.2 and 2001:2::2); anything else to the port goes up untouched. */
static void test_listen_address(void **state)
{
	static const uint8_t s4[4] = {198, 18, 0, 2}, o4[4] = {198, 18, 0, 9};
	static const uint8_t s6[16] = {0x20, 0x01, 0, 0x02, [15] = 2};
	static const struct {
		const char *name;
		__u8 mode;
		const void *addr;
		unsigned int flags;
		int reason;
	} cases[] = {
	    {"listen_v4_to_it", KC_ADDR_V4, s4, 0, ROW_TX},
	    {"listen_v4_vlan_to_it", KC_ADDR_V4, s4, F_VLAN, ROW_TX},
	    {"listen_v4_to_other", KC_ADDR_V4, o4, 0, KC_PASS_WRONG_ADDR},
	    {"listen_v4_ipv6_packet", KC_ADDR_V4, s4, F_V6, KC_PASS_WRONG_ADDR},
	    {"listen_v6_to_it", KC_ADDR_V6, s6, F_V6, ROW_TX},
	    {"listen_v6_ipv4_packet", KC_ADDR_V6, s6, 0, KC_PASS_WRONG_ADDR},
	    {"listen_any_ipv6", KC_ADDR_ANY, NULL, F_V6, ROW_TX},
	};
	struct env a;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (env_open_addr(&a, KC_MTU_DEFAULT, cases[i].mode, cases[i].addr, err,
				  sizeof(err)))
			fail_msg("%s", err);
		install_s(&a, "foo", 5, "bar", 42);
		if (cases[i].reason == ROW_TX)
			run_text(&a, cases[i].name, cases[i].flags, T("get foo\r\n"),
				 TX("VALUE foo 5 3\r\nbar\r\nEND\r\n"));
		else
			run_text(&a, cases[i].name, cases[i].flags, T("get foo\r\n"),
				 PASS(cases[i].reason));
		env_close(&a);
	}
}

/* The maps carry BTF for bpftool, names fit the kernel's 15 characters, and the counters
 * add up. */
static void test_maps_and_stats(void **state)
{
	struct bpf_map *maps[] = {E.skel->maps.kc_index, E.skel->maps.kc_slots,
				  E.skel->maps.kc_heartbeat, E.skel->maps.kc_stats,
				  E.skel->maps.kc_hits};
	int ncpu = libbpf_num_possible_cpus();
	__u64 passes = 0, slot_hits = 0, *per;
	struct kc_kstats st;

	(void)state;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		assert_int_equal(bpf_obj_get_info_by_fd(bpf_map__fd(maps[i]), &info, &len), 0);
		assert_true(info.btf_id != 0);
		assert_true(info.btf_key_type_id != 0);
		assert_true(info.btf_value_type_id != 0);
		assert_string_equal(info.name, bpf_map__name(maps[i]));
	}
	assert_int_equal(kc_kstats_read(E.stats_fd, &st), 0);
	for (int r = 0; r < KC_PASS__MAX; r++)
		passes += st.pass[r];
	assert_true(st.hits > 0);
	assert_true(st.key_hits >= st.hits);
	assert_int_equal(st.misses, st.pass[KC_PASS_MISS]);
	assert_true(st.expired >= 1);
	/* Every VALUE block served counted once against the slot it came from, in the row of
	 * the CPU that served it (CPU c, slot s at c * entries + s). */
	assert_true(ncpu > 0);
	per = calloc(1, sizeof(*per));
	assert_non_null(per);
	for (__u32 slot = 0; slot < E.next_slot; slot++) {
		for (int c = 0; c < ncpu; c++) {
			__u32 idx = (__u32)c * TEST_ENTRIES + slot;

			assert_int_equal(
			    bpf_map_lookup_elem(bpf_map__fd(E.skel->maps.kc_hits), &idx, per), 0);
			slot_hits += *per;
		}
	}
	free(per);
	assert_int_equal(slot_hits, st.key_hits);
	print_message(
	    "    counters: hits %llu key_hits %llu misses %llu expired %llu passes %llu\n",
	    (unsigned long long)st.hits, (unsigned long long)st.key_hits,
	    (unsigned long long)st.misses, (unsigned long long)st.expired,
	    (unsigned long long)passes);
}

static void test_rcu_sync(void **state)
{
	struct kc_rcu r;

	(void)state;
	assert_int_equal(kc_rcu_init(&r), 0);
	assert_int_equal(kc_rcu_sync(&r), 0);
	assert_int_equal(kc_rcu_sync(&r), 0);
	kc_rcu_close(&r);
}

static void test_render_contract(void **state)
{
	struct kc_kentry e;
	struct kc_key k;
	char big[KC_VALUE_MAX + 1];

	(void)state;
	memset(big, 'v', sizeof(big));
	assert_int_equal(kc_entry_render(&e, "k", 1, 0, big, KC_VALUE_MAX, 0, 0, 1), 0);
	assert_int_equal(kc_entry_render(&e, "k", 1, 0, big, KC_VALUE_MAX + 1, 0, 0, 1), -E2BIG);
	assert_int_equal(kc_entry_render(&e, "k", 1, 0, "v", 1, 0, 0, 0), -EINVAL);
	assert_int_equal(kc_key_init(&k, "", 0), -EINVAL);
	assert_int_equal(kc_key_init(&k, "a b", 3), -EINVAL);
	assert_int_equal(kc_key_init(&k, key250, 250), 0);
	memset(big, 'k', 251);
	assert_int_equal(kc_key_init(&k, big, 251), -EINVAL);
	assert_int_equal(kc_expire_ns(0, 1000, 5), 0);
	assert_int_equal(kc_expire_ns(-1, 1000, 5), 1);
	assert_int_equal(kc_expire_ns(10, 1000, 5), 5 + 10 * NSEC);
	assert_int_equal(kc_expire_ns(1700000000, 1700000000, 5), 1);
	assert_int_equal(kc_expire_ns(1700000060, 1700000000, 5), 5 + 60 * NSEC);
	assert_string_equal(kc_pass_reason_name(KC_PASS_MISS), "miss");
	assert_string_equal(kc_pass_reason_name(KC_PASS__MAX), "unknown");
}

static int group_setup(void **state)
{
	(void)state;
	install_fixtures(&E);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_contract),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_long_keys_and_values),
	    cmocka_unit_test(test_short_frame_header),
	    cmocka_unit_test(test_stale_heartbeat),
	    cmocka_unit_test(test_truncations),
	    cmocka_unit_test(test_text_prefixes),
	    cmocka_unit_test(test_random_replies),
	    cmocka_unit_test(test_collision),
	    cmocka_unit_test(test_remove_and_replace),
	    cmocka_unit_test(test_key_count_and_room),
	    cmocka_unit_test(test_listen_address),
	    cmocka_unit_test(test_maps_and_stats),
	    cmocka_unit_test(test_rcu_sync),
	};
	const char *req = getenv("KCACHE_REQUIRE_BPF");
	int required = req && strcmp(req, "1") == 0;
	char err[256];
	int ret;

	if (geteuid() != 0) {
		snprintf(err, sizeof(err), "needs root for BPF (euid %u)", (unsigned)geteuid());
		goto no_bpf;
	}
	if (env_open(&E, KC_MTU_DEFAULT, err, sizeof(err)))
		goto no_bpf;
	ret = cmocka_run_group_tests_name("bpf_cache", tests, group_setup, NULL);
	env_close(&E);
	return ret;

no_bpf:
	if (required) {
		fprintf(stderr, "bpf_cache: FAIL: %s (KCACHE_REQUIRE_BPF=1)\n", err);
		return 1;
	}
	fprintf(stderr, "bpf_cache: SKIP: %s (set KCACHE_REQUIRE_BPF=1 to make this fatal)\n", err);
	return 77;
}
