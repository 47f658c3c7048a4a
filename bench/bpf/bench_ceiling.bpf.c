// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bench_ceiling.bpf.c: the ceiling of bench/udp-get.sh. An XDP program that answers every
 * memcached UDP "get <key>\r\n" to kb_port with a fixed 300-byte value, by XDP_TX, without any
 * lookup: what the kernel tier (cache.bpf.c) would cost if finding the value were free. Anything
 * else passes.
 *
 * It does the work every XDP reply must do, the way cache.bpf.c does it: parse the headers,
 * resize the frame, swap addresses and ports, write the reply, and give it a valid UDP checksum
 * (the client's kernel checks it). The reply names the requested key, so a client matches it to
 * its request as it would a real one: "VALUE <key> 0 300\r\n<300 bytes>\r\nEND\r\n".
 *
 * Bench use only: one key per request, the line ending in "\r\n" (a multi-key get would be
 * answered as if its keys were one). Loaded by iproute2 (`ip link set dev X xdp obj ... sec
 * xdp`), so kb_port keeps its default unless a libbpf loader sets it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"
#include "csum.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* memcached UDP port answered (host order). */
const volatile __u16 kb_port = 11211;

#define KB_FRAME_HLEN	 8
#define KB_KEY_MAX	 250
#define KB_TTL		 64
#define KB_VALUE_HDR_SUM 0xe7b6 /* "VALUE " at an even offset: 0x5641 + 0x4c55 + 0x4520 */

#define D10  "0123456789"
#define D100 D10 D10 D10 D10 D10 D10 D10 D10 D10 D10
static const char value_hdr[8] = "VALUE ";
/* What follows the key; 315 bytes, then a zero that pads it to a multiple of 4 for csum_diff. */
static const char suffix[316] = " 0 300\r\n" D100 D100 D100 "\r\nEND\r\n";
#define KB_SUFFIX_LEN 315

/* Replies sent, per CPU (bpftool map dump name kb_ceil_stats). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} kb_ceil_stats SEC(".maps");

/* Sum of suffix[] in the big-endian word domain of csum.h, computed on first use. */
__u32 suffix_sum;

/* bpf_csum_diff sums 32-bit words as the CPU loads them; folded, that is the big-endian sum
 * with its two bytes swapped on a little-endian CPU. */
static __always_inline __u16 kb_be_sum(__s64 wsum)
{
	__u16 s = kc_csum_fold((__u32)wsum);

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	s = (__u16)((s >> 8) | (s << 8));
#endif
	return s;
}

SEC("xdp")
int kb_ceiling(struct xdp_md *ctx)
{
	__u8 key[KB_KEY_MAX + 2] = {};
	struct kc_pkt p = {};
	void *data, *data_end;
	struct ethhdr *eth;
	struct udphdr *udp;
	__be16 *frame;
	__u32 text_off, text_len, klen, udp_len, sum, l3, l4;
	__u8 head[4], tail[2], mac[6];
	__u64 *cnt;
	__u32 zero = 0;

	if (kc_parse_udp(ctx, &p) >= 0 || p.dport != kb_port || p.l2_mcast || p.l3_mcast ||
	    p.sport == 0 || p.udp_len < KC_UDP_HLEN + KB_FRAME_HLEN + 7)
		return XDP_PASS;
	text_off = p.l4_off + KC_UDP_HLEN + KB_FRAME_HLEN;
	text_len = p.udp_len - KC_UDP_HLEN - KB_FRAME_HLEN;
	klen = text_len - 6; /* "get " key "\r\n" */
	if (klen < 1 || klen > KB_KEY_MAX)
		return XDP_PASS;
	barrier_var(klen); /* keep the bounded copy: the verifier needs it for the helpers */
	if (bpf_xdp_load_bytes(ctx, text_off, head, 4) ||
	    bpf_xdp_load_bytes(ctx, text_off + text_len - 2, tail, 2) || head[0] != 'g' ||
	    head[1] != 'e' || head[2] != 't' || head[3] != ' ' || tail[0] != '\r' ||
	    tail[1] != '\n')
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (p.l4_off > KC_ETH_HLEN + KC_VLAN_HLEN + KC_IP6_HLEN)
		return XDP_PASS;
	frame = data + p.l4_off + KC_UDP_HLEN;
	if ((void *)(frame + 4) > data_end || frame[1] != 0 || frame[2] != bpf_htons(1))
		return XDP_PASS;
	if (bpf_xdp_load_bytes(ctx, text_off + 4, key, klen))
		return XDP_PASS;

	udp_len = KC_UDP_HLEN + KB_FRAME_HLEN + 6 + klen + KB_SUFFIX_LEN;
	if (bpf_xdp_adjust_tail(ctx, (int)(p.l4_off + udp_len) - (int)bpf_xdp_get_buff_len(ctx)))
		return XDP_PASS;

	/* Headers: as kc_rewrite_headers() in cache.bpf.c. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	l3 = p.l3_off;
	l4 = p.l4_off;
	if (l3 > KC_ETH_HLEN + KC_VLAN_HLEN || l4 > l3 + KC_IP6_HLEN)
		return XDP_ABORTED;
	udp = data + l4;
	frame = (void *)(udp + 1);
	if ((void *)(eth + 1) > data_end || (void *)(frame + 4) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(mac, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, mac, 6);
	sum = KC_IPPROTO_UDP + udp_len;
	if (p.v6) {
		struct ipv6hdr *ip6 = data + l3;
		struct in6_addr a;

		if ((void *)(ip6 + 1) > data_end)
			return XDP_ABORTED;
		a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		ip6->payload_len = bpf_htons(udp_len);
		ip6->hop_limit = KB_TTL;
		sum += kc_csum_words((const __be16 *)&ip6->saddr, 16);
	} else {
		struct iphdr *ip = data + l3;
		__be32 a;

		if ((void *)(ip + 1) > data_end)
			return XDP_ABORTED;
		a = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = a;
		ip->tot_len = bpf_htons(KC_IP4_HLEN + udp_len);
		ip->ttl = KB_TTL;
		ip->frag_off = bpf_htons(0x4000);
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
	frame[1] = 0;
	frame[2] = bpf_htons(1);
	frame[3] = 0;
	sum += bpf_ntohs(frame[0]) + 1;

	/* Payload: "VALUE " key suffix. */
	if (bpf_xdp_store_bytes(ctx, text_off, (void *)value_hdr, 6) ||
	    bpf_xdp_store_bytes(ctx, text_off + 6, key, klen) ||
	    bpf_xdp_store_bytes(ctx, text_off + 6 + klen, (void *)suffix, KB_SUFFIX_LEN))
		return XDP_ABORTED;
	if (!suffix_sum)
		suffix_sum = kb_be_sum(bpf_csum_diff(NULL, 0, (__be32 *)suffix, sizeof(suffix), 0));
	sum += KB_VALUE_HDR_SUM;
	sum += kb_be_sum(bpf_csum_diff(NULL, 0, (__be32 *)key, (klen + 3) & 0xfc, 0));
	sum += kc_csum_at((__u16)suffix_sum, 6 + klen);

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end)
		return XDP_ABORTED;
	udp->check = bpf_htons(kc_csum_udp_final(sum));

	cnt = bpf_map_lookup_elem(&kb_ceil_stats, &zero);
	if (cnt)
		(*cnt)++;
	return XDP_TX;
}
