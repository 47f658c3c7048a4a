// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cache.bpf.c: the kernel hot-key tier. An XDP program that answers memcached UDP get/gets
 * requests from kc_index/kc_slots with XDP_TX when every key is resident, and passes everything
 * else up untouched. Layout and map contract: include/kcache/cache.h; how the daemon fills the
 * maps: user/kernel/cache_entry.h.
 *
 * The program runs in three phases, and only the last one writes to the packet:
 *   1. parse Ethernet/VLAN/IP/UDP, check the heartbeat and the memcached frame header;
 *   2. walk the request line byte by byte (bpf_loop), looking each key up as soon as it ends,
 *      validating the slot, and adding up the reply's length and checksum;
 *   3. only when every key hit and the reply fits: resize the frame, rewrite the headers, copy
 *      the pre-rendered fragments, store the checksums, XDP_TX.
 * Any "no" before phase 3 returns XDP_PASS with the frame exactly as it arrived.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <kcache/cache.h>
#include "parse.h"
#include "csum.h"

/* Keys per request served; a request with more passes (KC_PASS_TOO_MANY_KEYS), never truncated. */
#ifndef KC_MAX_KEYS
#define KC_MAX_KEYS 128
#endif
/* Longest request line parsed (a 1500-byte MTU allows 1464); longer ones pass. Power of two. */
#ifndef KC_REQ_MAX
#define KC_REQ_MAX 2048
#endif

#define KC_FRAME_HLEN 8 /* memcached UDP frame header */
/* Ethernet + VLAN + IPv6 + UDP + frame header: the most bytes before the request line. */
#define KC_HDRS_MAX  (KC_ETH_HLEN + KC_VLAN_HLEN + KC_IP6_HLEN + KC_UDP_HLEN + KC_FRAME_HLEN)
#define KC_END_LEN   5	    /* "END\r\n" */
#define KC_END_CSUM  0x935b /* sum of "END\r\n" at an even offset: 0x454e + 0x440d + 0x0a00 */
#define KC_REPLY_TTL 64
#define KC_WALKING   (-1) /* walk verdict: still reading the line */
#define KC_SERVE     100  /* walk verdict: the line ended and every key is resident */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Knobs, set by the loader between open and load (see struct kc_kconfig). */
const volatile struct kc_kconfig kc_cfg = {
    .port = KC_PORT_DEFAULT,
    .mtu = KC_MTU_DEFAULT,
    .max_value = KC_MAX_VALUE_DEFAULT,
    .hb_window_ns = KC_HB_WINDOW_NS_DEFAULT,
    .entries = KC_ENTRIES_DEFAULT,
    .ncpu = 1,
    .index_mask = KC_ENTRIES_DEFAULT - 1,
};

/* Resident keys: 4-way buckets by KC_HASH of the key (include/kcache/cache.h); the slot holds
 * the full key. kc_cfg.index_mask + 1 buckets. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KC_ENTRIES_DEFAULT);
	__type(key, __u32);
	__type(value, struct kc_ibucket);
} kc_index SEC(".maps");

/* Rendered entries, in slots the daemon allocates; same max_entries as kc_index. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KC_ENTRIES_DEFAULT);
	__type(key, __u32);
	__type(value, struct kc_kentry);
} kc_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kc_heartbeat);
} kc_heartbeat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kc_kstats);
} kc_stats SEC(".maps");

/* VALUE blocks served from each slot by each CPU, a row per CPU (kc_cfg.entries, kc_cfg.ncpu):
 * no atomics on the hot path, and no cache line two CPUs write. The daemon zeroes a slot's
 * counters before it publishes the slot, and reads them through mmap (no syscall, no copy)
 * to rank resident keys and for `kcachectl hot`. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KC_ENTRIES_DEFAULT);
	__type(key, __u32);
	__type(value, __u64);
} kc_hits SEC(".maps");

/* Walk state, shared by the main program and its bpf_loop callbacks. It lives in map memory on
 * purpose: the verifier tracks stack values exactly, so a key length or key count kept on the
 * stack would make it explore every value of it through the callback (BPF program is too
 * large); values loaded from a map are unknown scalars, and each use is bounds-checked anyway. */
struct kc_walk {
	__u64 now;
	__u32 pos;   /* request-line offset of the next token */
	__u32 len;   /* request-line length */
	__u32 klen;  /* bytes of the key just found */
	__u32 kpos;  /* its request-line offset */
	__u64 khash; /* its KC_HASH */
	__u32 nkeys;
	__u32 gets;    /* 1 for gets: VALUE lines carry the cas */
	__u32 blk_len; /* bytes of the VALUE blocks found so far */
	__u32 blk_sum; /* their checksum, offsets counted from the first block */
	__u32 limit;   /* most VALUE-block bytes that fit kc_cfg.mtu */
	__s32 verdict; /* KC_WALKING, KC_SERVE, or an enum kc_pass_reason */
	__u32 expired; /* the missing key was resident but expired */
	__u32 off;     /* emit: frame offset of the next block */
	__u32 err;     /* emit: a store failed */
};

/* Per-CPU working memory: too big for the 512-byte stack, and map memory gives the verifier
 * fixed bounds where packet memory would need a range check per access. XDP does not nest on a
 * CPU, so one copy per CPU is enough. */
struct kc_scratch {
	struct kc_walk w;
	__u32 slot[KC_MAX_KEYS]; /* slot of each key, in request order */
	/* the request line, copied out of the packet; +8 so that a word read stays inside */
	__u8 req[KC_REQ_MAX + 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kc_scratch);
} kc_scratch SEC(".maps");

/* bpf_loop context of the emit callback: the one thing that cannot live in map memory. */
struct kc_emit {
	struct xdp_md *ctx;
};

static __always_inline struct kc_scratch *kc_get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&kc_scratch, &zero);
}

static __always_inline int kc_pass(__u32 reason)
{
	__u32 zero = 0;
	struct kc_kstats *st = bpf_map_lookup_elem(&kc_stats, &zero);

	if (st && reason < KC_PASS__MAX)
		st->pass[reason]++;
	return XDP_PASS;
}

/* A key just ended: look it up, validate its slot, account for its VALUE block.
 * Returns 0 to keep walking, 1 with w->verdict set to stop. */
static __always_inline long kc_end_key(struct kc_walk *w, struct kc_scratch *s)
{
	struct kc_ibucket *b;
	struct kc_kentry *e;
	__u32 slot = 0, gen = 0, n, bi;
	__u64 nk, klen, kpos, h, d = 0;

	h = w->khash;
	bi = (__u32)h & kc_cfg.index_mask;
	b = bpf_map_lookup_elem(&kc_index, &bi);
	if (!b)
		goto miss;
		/* One cache line: the way holding the hash, if any. The daemon may be rewriting the
		 * bucket under us, and another key may share the hash: the slot's own key and gen
		 * below settle it, and any mismatch is a miss. */
#pragma unroll
	for (int j = 0; j < KC_INDEX_WAYS; j++) {
		if (b->way[j].hash == h) {
			slot = b->way[j].slot;
			gen = b->way[j].gen;
			break;
		}
	}
	e = bpf_map_lookup_elem(&kc_slots, &slot);
	if (!e || !gen || (__u32)e->gen != gen)
		goto miss;
	/* The full key, a word at a time against the request line: against the copy inside the
	 * slot's VALUE line (reply[6..]), which a hit reads next anyway, so the key costs no
	 * cache line of its own. Both sides are masked to the key's bytes. */
	klen = w->klen;
	kpos = w->kpos;
	barrier_var(klen);
	barrier_var(kpos);
	if (e->key_len != klen || klen > KC_KEY_MAX || kpos >= KC_REQ_MAX)
		goto miss;
#pragma unroll
	for (int j = 0; j < (KC_KEY_MAX + 7) / 8; j++) {
		__u64 off = kpos + j * 8, x;

		if (j * 8 >= klen)
			break;
		barrier_var(off);
		if (off >= KC_REQ_MAX)
			goto miss;
		x = *(__u64 *)&s->req[off] ^ *(__u64 *)&e->reply[6 + j * 8];
		if (klen - j * 8 < 8)
			x &= ~0ULL >> (64 - 8 * (klen - j * 8));
		d |= x;
	}
	if (d)
		goto miss;
	if (e->expire_ns && w->now >= e->expire_ns) {
		w->expired = 1;
		goto miss;
	}
	/* A slot that breaks the layout's bounds is never served. */
	if (e->value_len > kc_cfg.max_value || e->hdr_len < 7 + klen || e->hdr_len > KC_HDR_MAX ||
	    e->body_len < 4 || e->body_len > KC_BODY_MAX ||
	    (w->gets && (e->cas_len < 2 || e->cas_len > KC_CAS_MAX)))
		goto miss;

	nk = w->nkeys;
	if (nk >= KC_MAX_KEYS) {
		w->verdict = KC_PASS_TOO_MANY_KEYS;
		return 1;
	}
	n = w->blk_len;
	w->blk_sum += kc_csum_at(e->hdr_csum, n);
	n += e->hdr_len;
	if (w->gets) {
		w->blk_sum += kc_csum_at(e->cas_csum, n);
		n += e->cas_len;
	}
	w->blk_sum += kc_csum_at(e->body_csum, n);
	n += e->body_len;
	if (n > w->limit) {
		w->verdict = KC_PASS_TOO_BIG;
		return 1;
	}
	w->blk_len = n;
	s->slot[nk] = slot;
	w->nkeys = nk + 1;
	return 0;
miss:
	w->verdict = KC_PASS_MISS;
	return 1;
}

/* The word-at-a-time walk takes the lowest byte of a loaded word as the first in memory. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kc_walk_tok assumes a little-endian BPF target"
#endif

#define KC_ONES	  0x0101010101010101ULL
#define KC_HIGHS  0x8080808080808080ULL
#define KC_SPACES 0x2020202020202020ULL
#define KC_CRS	  0x0d0d0d0d0d0d0d0dULL
#define KC_LFS	  0x0a0a0a0a0a0a0a0aULL

/* SWAR: the high bit of each zero byte of x. Exact up to the first zero byte (lowest address,
 * little-endian); bytes after it may be flagged spuriously, so only the lowest flag counts. */
static __always_inline __u64 kc_zero_bytes(__u64 x)
{
	return (x - KC_ONES) & ~x & KC_HIGHS;
}

/* Index (0..7) of the lowest non-zero byte of x, which must not be 0 (BPF has no ctz). */
static __always_inline __u32 kc_first_byte(__u64 x)
{
	__u32 n = 0;

	if (!(x & 0xffffffffULL)) {
		n += 4;
		x >>= 32;
	}
	if (!(x & 0xffffULL)) {
		n += 2;
		x >>= 16;
	}
	if (!(x & 0xffULL))
		n += 1;
	return n;
}

/* bpf_loop callback over the request line after "get "/"gets ": each call consumes one token at
 * w->pos, eight bytes at a time: a run of spaces (up to 64 bytes per call), one key (found,
 * hashed and looked up in one call), or the line's end. Accepts what memcached's tokenizer
 * accepts for a storable key: keys separated by runs of spaces, the line ended by "\n" or
 * "\r\n" as its last bytes. Anything else stops the walk with a pass reason. s->req holds 8
 * bytes past KC_REQ_MAX so that a word read at any offset below KC_REQ_MAX stays inside it;
 * bytes at or past w->len are stale and only ever compared against w->len. */
static long kc_walk_tok(__u32 i, void *arg)
{
	struct kc_scratch *s = kc_get_scratch();
	struct kc_walk *w;
	__u64 at, off, word, m, d, e, len, h;
	__u8 c;

	if (!s)
		return 1;
	w = &s->w;
	/* 64-bit offsets: a 32-bit one is re-zero-extended after the check and loses its bounds */
	at = w->pos;
	len = w->len;
	barrier_var(at);
	if (at >= KC_REQ_MAX || at >= len)
		goto parse; /* the line never ended */
	c = s->req[at];
	if (c == ' ') {
#pragma unroll
		for (int j = 0; j < 8; j++) {
			off = at;
			barrier_var(off);
			if (off >= KC_REQ_MAX)
				break;
			word = *(__u64 *)&s->req[off] ^ KC_SPACES;
			if (word) {
				at = off + kc_first_byte(word);
				break;
			}
			at = off + 8;
		}
		w->pos = at; /* past len: the next call says parse */
		return 0;
	}
	if (c == '\n' || c == '\r') {
		if (c == '\n' && at + 1 != len)
			goto parse;
		if (c == '\r') {
			if (at + 2 != len || at + 1 >= KC_REQ_MAX || s->req[at + 1] != '\n')
				goto parse;
		}
		w->verdict = w->nkeys ? KC_SERVE : KC_PASS_PARSE;
		return 1;
	}
	/* Any other byte starts a key, as in the daemon's tokenizer (which splits on spaces only):
	 * memcaslap's keys, for one, hold control bytes. Find its end (space, CR or LF) a word at a
	 * time, hashing the words as we go (the last one masked to the key's bytes). */
	if (w->nkeys >= KC_MAX_KEYS) {
		w->verdict = KC_PASS_TOO_MANY_KEYS;
		return 1;
	}
	h = KC_HASH_INIT;
	d = KC_REQ_MAX; /* no end found */
#pragma unroll
	for (int j = 0; j < (KC_KEY_MAX + 8) / 8; j++) {
		off = at + j * 8;
		barrier_var(off);
		if (off >= KC_REQ_MAX)
			break;
		word = *(__u64 *)&s->req[off];
		m = kc_zero_bytes(word ^ KC_SPACES) | kc_zero_bytes(word ^ KC_CRS) |
		    kc_zero_bytes(word ^ KC_LFS);
		if (m) {
			__u32 b = kc_first_byte(m);

			d = j * 8 + b;
			if (b)
				h = kc_hash_word(h, word & (~0ULL >> (64 - 8 * b)));
			break;
		}
		h = kc_hash_word(h, word);
	}
	e = at + d;
	if (d > KC_KEY_MAX || e >= len || e >= KC_REQ_MAX)
		goto parse; /* a key too long, or a line that never ended */
	c = s->req[e];
	/* A line end inside the line is a parse error before any lookup, as byte by byte. */
	if (c == '\n' && e + 1 != len)
		goto parse;
	if (c == '\r') {
		if (e + 2 != len || e + 1 >= KC_REQ_MAX || s->req[e + 1] != '\n')
			goto parse;
	}
	w->pos = e;
	w->klen = d;
	w->kpos = at;
	w->khash = kc_hash_final(h, d);
	return kc_end_key(w, s);
parse:
	w->verdict = KC_PASS_PARSE;
	return 1;
}

/* bpf_loop callback: copies the VALUE block of key i to the frame at w->off. */
static long kc_emit_key(__u32 i, void *arg)
{
	struct xdp_md *ctx = ((struct kc_emit *)arg)->ctx;
	struct kc_scratch *s = kc_get_scratch();
	struct kc_kentry *e;
	struct kc_walk *w;
	__u64 k = i, n, h, t, c, *hits;
	__u32 slot, cpu, idx;

	if (!s)
		return 1;
	w = &s->w;
	barrier_var(k); /* one zero-extended copy, so the check below bounds the index used */
	if (k >= KC_MAX_KEYS)
		goto fail;
	slot = s->slot[k];
	e = bpf_map_lookup_elem(&kc_slots, &slot);
	if (!e)
		goto fail;
	h = e->hdr_len;
	n = e->body_len;
	barrier_var(h);
	barrier_var(n);
	if (h < 1 || h > KC_HDR_MAX || n < 1 || n > KC_BODY_MAX)
		goto fail;
	if (!w->gets) {
		/* VALUE line and body are adjacent in the slot: one copy. */
		t = h + n;
		barrier_var(t);
		if (t < 2 || t > KC_HDR_MAX + KC_BODY_MAX ||
		    bpf_xdp_store_bytes(ctx, w->off, e->reply, t))
			goto fail;
		w->off += t;
	} else {
		c = e->cas_len;
		barrier_var(c);
		if (c < 1 || c > KC_CAS_MAX || bpf_xdp_store_bytes(ctx, w->off, e->reply, h) ||
		    bpf_xdp_store_bytes(ctx, w->off + h, e->cas, c) ||
		    bpf_xdp_store_bytes(ctx, w->off + h + c, e->reply + h, n))
			goto fail;
		w->off += h + c + n;
	}
	cpu = bpf_get_smp_processor_id();
	if (cpu < kc_cfg.ncpu) {
		idx = cpu * kc_cfg.entries + slot;
		hits = bpf_map_lookup_elem(&kc_hits, &idx);
		if (hits)
			*hits += 1;
	}
	return 0;
fail:
	w->err = 1;
	return 1;
}

/* Recognises the command. Returns 0 for get, 1 for gets (*pos = first byte after the command
 * word and its space), or the pass reason. */
static __always_inline int kc_command(const __u8 *r, __u32 len, __u32 *pos)
{
	if (len >= 4 && r[0] == 'g' && r[1] == 'e' && r[2] == 't') {
		if (r[3] == ' ') {
			*pos = 4;
			return 0;
		}
		if (len >= 5 && r[3] == 's' && r[4] == ' ') {
			*pos = 5;
			return 1;
		}
		/* "get\r\n", "gets\n": a get without keys, which memcached answers with ERROR */
		if (r[3] == '\r' || r[3] == '\n' ||
		    (r[3] == 's' && len >= 5 && (r[4] == '\r' || r[4] == '\n')))
			return -KC_PASS_PARSE;
	}
	return -KC_PASS_NOT_GET;
}

/* Phase 3, headers: swap MACs, addresses and ports, set lengths, TTL and the frame header.
 * Returns the UDP checksum accumulated over the pseudo-header and both UDP/frame headers, or -1
 * if the frame is not where phase 1 left it (cannot happen). */
static __always_inline __s64 kc_rewrite_headers(struct xdp_md *ctx, const struct kc_pkt *p,
						__u32 udp_len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 l3 = p->l3_off, l4 = p->l4_off, sum;
	struct udphdr *udp;
	__be16 *frame;
	__u8 mac[6];

	if (l3 > KC_ETH_HLEN + KC_VLAN_HLEN || l4 > l3 + KC_IP6_HLEN)
		return -1;
	udp = data + l4;
	frame = (void *)(udp + 1);
	if ((void *)(eth + 1) > data_end || (void *)(frame + 4) > data_end)
		return -1;
	__builtin_memcpy(mac, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, mac, 6);

	sum = KC_IPPROTO_UDP + udp_len;
	if (p->v6) {
		struct ipv6hdr *ip6 = data + l3;
		struct in6_addr a;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		ip6->payload_len = bpf_htons(udp_len);
		ip6->hop_limit = KC_REPLY_TTL;
		ip6->flow_lbl[0] &= ~0x30; /* ECN belongs to the request's path, not ours */
		sum += kc_csum_words((const __be16 *)&ip6->saddr, 16);
	} else {
		struct iphdr *ip = data + l3;
		__be32 a;

		if ((void *)(ip + 1) > data_end)
			return -1;
		a = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = a;
		ip->tot_len = bpf_htons(KC_IP4_HLEN + udp_len);
		ip->ttl = KC_REPLY_TTL;
		ip->tos &= ~0x3;
		ip->frag_off = bpf_htons(0x4000); /* DF: the reply was sized to the MTU */
		ip->check = 0;
		ip->check = bpf_htons((__u16)~kc_csum_fold(kc_csum_words((const __be16 *)ip, 10)));
		sum += kc_csum_words((const __be16 *)&ip->saddr, 4);
	}

	{
		__be16 port = udp->source;

		udp->source = udp->dest;
		udp->dest = port;
	}
	udp->len = bpf_htons(udp_len);
	udp->check = 0;
	sum += bpf_ntohs(udp->source) + bpf_ntohs(udp->dest) + udp_len;
	/* frame: request id kept, sequence 0 of 1 datagrams, reserved 0 */
	frame[1] = 0;
	frame[2] = bpf_htons(1);
	frame[3] = 0;
	sum += bpf_ntohs(frame[0]) + 1;
	return sum;
}

/* Phase 3, last step: the UDP checksum field. */
static __always_inline int kc_store_udp_csum(struct xdp_md *ctx, const struct kc_pkt *p, __u32 sum)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l4 = p->l4_off;
	struct udphdr *udp;

	if (l4 > KC_ETH_HLEN + KC_VLAN_HLEN + KC_IP6_HLEN)
		return -1;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end)
		return -1;
	udp->check = bpf_htons(kc_csum_udp_final(sum));
	return 0;
}

/* Is the packet addressed to where the daemon listens? Reads the address with a helper: the
 * IP header's offset is not a constant. */
static __always_inline int kc_addr_ok(struct xdp_md *ctx, const struct kc_pkt *p)
{
	__u32 a[4];

	if (kc_cfg.addr_mode == KC_ADDR_V4)
		return !p->v6 && !bpf_xdp_load_bytes(ctx, p->l3_off + 16, a, 4) &&
		       a[0] == kc_cfg.addr4;
	if (kc_cfg.addr_mode == KC_ADDR_V6)
		return p->v6 && !bpf_xdp_load_bytes(ctx, p->l3_off + 24, a, 16) &&
		       a[0] == kc_cfg.addr6[0] && a[1] == kc_cfg.addr6[1] &&
		       a[2] == kc_cfg.addr6[2] && a[3] == kc_cfg.addr6[3];
	return 1;
}

/* Grows the frame by grow bytes at its front and moves the hdr_len bytes of headers down to
 * the new start; the old headers and request line become reply space. For drivers that give a
 * small frame next to no tailroom (veth copies it into a buffer sized to it) while XDP always
 * has headroom. Returns 0, or -1 with the frame as it was. */
static __always_inline int kc_grow_head(struct xdp_md *ctx, struct kc_scratch *s, __u32 hdr_len,
					__u32 grow)
{
	__u32 n = hdr_len;

	barrier_var(n);
	if (n < 1 || n > KC_HDRS_MAX || grow > KC_REQ_MAX)
		return -1;
	/* The request line is no longer needed: its copy is the bounce buffer. */
	if (bpf_xdp_load_bytes(ctx, 0, s->req, n) || bpf_xdp_adjust_head(ctx, -(int)grow))
		return -1;
	if (bpf_xdp_store_bytes(ctx, 0, s->req, n)) {
		bpf_xdp_adjust_head(ctx, (int)grow); /* nothing was written: as it came */
		return -1;
	}
	return 0;
}

SEC("xdp")
int kc_cache(struct xdp_md *ctx)
{
	struct kc_emit em = {.ctx = ctx};
	struct kc_pkt p = {};
	struct kc_walk *w;
	struct kc_heartbeat *hb;
	struct kc_scratch *s;
	struct kc_kstats *st;
	__u32 zero = 0, text_off, text_len, ip_hlen, reply_len, pos = 0;
	int grow;
	__u64 now;
	void *data, *data_end;
	__be16 *frame;
	__s64 sum;
	int r;

	/* Phase 1: headers. */
	r = kc_parse_udp(ctx, &p);
	if (r >= 0)
		return kc_pass(r);
	if (p.dport != kc_cfg.port)
		return kc_pass(KC_PASS_WRONG_PORT);
	if (!kc_addr_ok(ctx, &p))
		return kc_pass(KC_PASS_WRONG_ADDR);
	if (p.l2_mcast || p.l3_mcast || p.sport == 0)
		return kc_pass(KC_PASS_NOT_UNICAST);

	/* Serve only while the daemon is alive: it stamps kc_heartbeat with CLOCK_MONOTONIC, the
	 * clock bpf_ktime_get_ns() reads. A stamp slightly ahead is clock skew between the two
	 * readers (KC_HB_SKEW_NS); one far in the future counts as stale. */
	now = bpf_ktime_get_ns();
	hb = bpf_map_lookup_elem(&kc_heartbeat, &zero);
	if (!hb || !hb->mono_ns)
		return kc_pass(KC_PASS_STALE);
	if (hb->mono_ns > now ? hb->mono_ns - now > KC_HB_SKEW_NS
			      : now - hb->mono_ns >= kc_cfg.hb_window_ns)
		return kc_pass(KC_PASS_STALE);

	if (p.udp_len < KC_UDP_HLEN + KC_FRAME_HLEN)
		return kc_pass(KC_PASS_FRAME_HDR);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (p.l4_off > KC_ETH_HLEN + KC_VLAN_HLEN + KC_IP6_HLEN)
		return kc_pass(KC_PASS_MALFORMED);
	frame = data + p.l4_off + KC_UDP_HLEN;
	if ((void *)(frame + 4) > data_end)
		return kc_pass(KC_PASS_MALFORMED);
	/* A request is one datagram: sequence 0 of 1. */
	if (frame[1] != 0 || frame[2] != bpf_htons(1))
		return kc_pass(KC_PASS_FRAME_HDR);

	/* Phase 2: the request line. */
	text_off = p.l4_off + KC_UDP_HLEN + KC_FRAME_HLEN;
	text_len = p.udp_len - KC_UDP_HLEN - KC_FRAME_HLEN;
	if (text_len == 0)
		return kc_pass(KC_PASS_NOT_GET);
	s = kc_get_scratch();
	if (!s)
		return kc_pass(KC_PASS_PARSE);
	{
		__u32 n = text_len < KC_REQ_MAX ? text_len : KC_REQ_MAX;

		barrier_var(n);
		if (n < 1 || n > KC_REQ_MAX || bpf_xdp_load_bytes(ctx, text_off, s->req, n))
			return kc_pass(KC_PASS_MALFORMED);
	}
	r = kc_command(s->req, text_len, &pos);
	if (r < 0)
		return kc_pass(-r);
	if (text_len > KC_REQ_MAX)
		return kc_pass(KC_PASS_PARSE);

	ip_hlen = p.v6 ? KC_IP6_HLEN : KC_IP4_HLEN;
	if (kc_cfg.mtu < ip_hlen + KC_UDP_HLEN + KC_FRAME_HLEN + KC_END_LEN)
		return kc_pass(KC_PASS_TOO_BIG);
	w = &s->w;
	__builtin_memset(w, 0, sizeof(*w));
	w->now = now;
	w->limit = kc_cfg.mtu - (ip_hlen + KC_UDP_HLEN + KC_FRAME_HLEN + KC_END_LEN);
	w->gets = r;
	w->pos = pos;
	w->len = text_len;
	w->verdict = KC_WALKING;
	bpf_loop(text_len - pos, kc_walk_tok, NULL, 0);
	if (w->verdict != KC_SERVE) {
		if (w->verdict == KC_PASS_MISS) {
			st = bpf_map_lookup_elem(&kc_stats, &zero);
			if (st) {
				st->misses++;
				st->expired += w->expired;
			}
		}
		/* A line that never ended is as unparseable as a bad one. */
		return kc_pass(w->verdict == KC_WALKING ? KC_PASS_PARSE : (__u32)w->verdict);
	}

	/* Phase 3: every key is resident and the reply fits. Resize first, at the tail or else at
	 * the front: if the driver has no room either way the frame is untouched and can go up. */
	reply_len = KC_UDP_HLEN + KC_FRAME_HLEN + w->blk_len + KC_END_LEN;
	grow = (int)(p.l4_off + reply_len) - (int)bpf_xdp_get_buff_len(ctx);
	if (bpf_xdp_adjust_tail(ctx, grow) &&
	    (grow <= 0 || kc_grow_head(ctx, s, text_off, (__u32)grow)))
		return kc_pass(KC_PASS_NO_ROOM);

	/* From here the frame is being rewritten; the failures below cannot happen short of a
	 * daemon breaking the slot protocol, and are made loud (xdp:xdp_exception) by ABORTED. */
	sum = kc_rewrite_headers(ctx, &p, reply_len);
	if (sum < 0)
		return XDP_ABORTED;
	w->off = text_off;
	bpf_loop(w->nkeys, kc_emit_key, &em, 0);
	if (w->err || w->off != text_off + w->blk_len)
		return XDP_ABORTED;
	{
		char end[KC_END_LEN] = {'E', 'N', 'D', '\r', '\n'};

		if (bpf_xdp_store_bytes(ctx, w->off, end, KC_END_LEN))
			return XDP_ABORTED;
	}
	sum += w->blk_sum + kc_csum_at(KC_END_CSUM, w->blk_len);
	if (kc_store_udp_csum(ctx, &p, (__u32)sum))
		return XDP_ABORTED;

	st = bpf_map_lookup_elem(&kc_stats, &zero);
	if (st) {
		st->hits++;
		st->key_hits += w->nkeys;
		st->tx_bytes += reply_len - KC_UDP_HLEN;
	}
	return XDP_TX;
}
