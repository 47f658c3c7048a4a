/* parse.h: bounds-checked parsing of Ethernet (802.1Q/802.1ad tags), IPv4, IPv6, UDP and TCP
 * headers for XDP programs. BPF only; nothing here writes to the packet.
 *
 * Two parsers over shared IP checks (kc_ip4_ok, kc_ip6_ok):
 *   kc_parse_udp  the kernel tier's and the bench ceiling's (Ethernet by kc_parse_eth, at most
 *                 one 802.1Q tag): a whole, unfragmented UDP datagram without IPv4 options or
 *                 IPv6 extension headers, or a pass reason; what it passes goes up the stack;
 *   kc_parse_l4   the network policy's (Ethernet by kc_parse_tags, every tag the stack may
 *                 strip or hand to a VLAN device): the source address and the UDP/TCP ports of
 *                 anything the stack would deliver to a socket, IPv4 options, IPv6 extension
 *                 headers and first fragments included (docs/network-policy.md lists its
 *                 verdicts).
 *
 * Lengths are taken from the IP header, never from the frame: a frame may carry Ethernet padding
 * (a minimal frame is 60 bytes) or be shorter than its headers claim, and both must be told apart
 * from the datagram itself.
 */
#ifndef KC_BPF_PARSE_H
#define KC_BPF_PARSE_H

#include <kcache/cache.h>
#include <kcache/policy.h> /* KC_POL_V6_EXT_MAX */

#define KC_ETH_P_IP	0x0800
#define KC_ETH_P_IPV6	0x86DD
#define KC_ETH_P_8021Q	0x8100
#define KC_ETH_P_8021AD 0x88A8
#define KC_ETH_P_QINQ1	0x9100 /* pre-802.1ad QinQ outer tag */
#define KC_IPPROTO_UDP	17
#define KC_IPPROTO_TCP	6
#define KC_IP_MF_OFFSET 0x3fff /* MF flag and fragment offset */
#define KC_ETH_HLEN	14
#define KC_VLAN_HLEN	4
#define KC_IP4_HLEN	20
#define KC_IP6_HLEN	40
#define KC_UDP_HLEN	8
#define KC_IP_OFFSET	0x1fff /* fragment offset alone */

/* Where the headers of a datagram are. Offsets are from the start of the frame. */
struct kc_pkt {
	__u32 l3_off;	/* 14, or 4 more per VLAN tag */
	__u32 l4_off;	/* UDP (or, kc_parse_l4, TCP) header */
	__u32 udp_len;	/* kc_parse_udp: UDP header + payload, as both IP and UDP agree */
	__u32 v6;	/* 1 for IPv6 */
	__u32 l2_mcast; /* destination MAC is multicast or broadcast */
	__u32 l3_mcast; /* destination or source IP is not unicast */
	__u16 sport;	/* host order */
	__u16 dport;	/* host order */
	__u8 proto;	/* kc_parse_l4: KC_IPPROTO_UDP or KC_IPPROTO_TCP */
	__u8 pad[3];
	__u32 saddr[4];	 /* kc_parse_l4: source address, network order; IPv4 in saddr[0] */
	__u32 frame_len; /* kc_parse_l4: bpf_xdp_get_buff_len(), asked once */
};

/* IPv6 next-header values that are extension headers: such packets are not parsed further. */
static __always_inline int kc_ipv6_is_ext(__u8 nh)
{
	switch (nh) {
	case 0:	  /* hop-by-hop */
	case 43:  /* routing */
	case 50:  /* ESP */
	case 51:  /* AH */
	case 60:  /* destination options */
	case 135: /* mobility */
	case 139: /* HIP */
	case 140: /* shim6 */
	case 253: /* experiments */
	case 254:
		return 1;
	}
	return 0;
}

/* Ethernet and at most one 802.1Q tag. Sets p->l2_mcast, *off to the L3 header and *proto to
 * the ethertype behind the tag. Returns -1, or KC_PASS_NOT_IP for a runt frame. */
static __always_inline int kc_parse_eth(void *data, void *data_end, struct kc_pkt *p, __u32 *off,
					__u16 *proto)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return KC_PASS_NOT_IP;
	p->l2_mcast = eth->h_dest[0] & 1;
	*proto = bpf_ntohs(eth->h_proto);
	*off = KC_ETH_HLEN;
	if (*proto == KC_ETH_P_8021Q) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return KC_PASS_NOT_IP;
		*proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		*off += KC_VLAN_HLEN;
	}
	p->l3_off = *off;
	return -1;
}

/* An IPv4 header the stack would accept: version 4, IHL >= 5, a total length that covers the
 * header and fits the frame. */
static __always_inline int kc_ip4_ok(const struct iphdr *ip, __u32 frame_len, __u32 off)
{
	__u8 vihl = *(const __u8 *)ip;
	__u32 tot = bpf_ntohs(ip->tot_len);

	return (vihl >> 4) == 4 && (vihl & 0xf) >= 5 && tot >= (__u32)(vihl & 0xf) * 4 &&
	       tot <= frame_len - off;
}

/* An IPv6 header whose payload fits the frame. */
static __always_inline int kc_ip6_ok(const struct ipv6hdr *ip6, __u32 frame_len, __u32 off)
{
	return (*(const __u8 *)ip6 >> 4) == 6 &&
	       bpf_ntohs(ip6->payload_len) <= frame_len - off - KC_IP6_HLEN;
}

/* Fills p for a UDP datagram. Returns -1 on success, or the enum kc_pass_reason that stops it. */
static __always_inline int kc_parse_udp(struct xdp_md *ctx, struct kc_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* a helper, not data_end - data: pointer subtraction needs CAP_PERFMON */
	__u32 frame_len = (__u32)bpf_xdp_get_buff_len(ctx);
	struct udphdr *udp;
	__u32 off, l4_len;
	__u16 proto;
	int r;

	r = kc_parse_eth(data, data_end, p, &off, &proto);
	if (r >= 0)
		return r;

	if (proto == KC_ETH_P_IP) {
		struct iphdr *ip = data + off;

		if ((void *)(ip + 1) > data_end || !kc_ip4_ok(ip, frame_len, off))
			return KC_PASS_MALFORMED;
		if ((*(__u8 *)ip & 0xf) != 5)
			return KC_PASS_IP_OPTIONS;
		if (ip->frag_off & bpf_htons(KC_IP_MF_OFFSET))
			return KC_PASS_FRAGMENT;
		if (ip->protocol != KC_IPPROTO_UDP)
			return KC_PASS_NOT_UDP;
		/* 224/4 multicast, 240/4 reserved and broadcast, 0/8 "this network" */
		p->l3_mcast = (bpf_ntohl(ip->daddr) >> 28) >= 0xe ||
			      (bpf_ntohl(ip->saddr) >> 28) >= 0xe ||
			      (bpf_ntohl(ip->saddr) >> 24) == 0;
		p->v6 = 0;
		off += KC_IP4_HLEN;
		l4_len = bpf_ntohs(ip->tot_len) - KC_IP4_HLEN;
	} else if (proto == KC_ETH_P_IPV6) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > data_end || !kc_ip6_ok(ip6, frame_len, off))
			return KC_PASS_MALFORMED;
		if (ip6->nexthdr == 44)
			return KC_PASS_FRAGMENT;
		if (kc_ipv6_is_ext(ip6->nexthdr))
			return KC_PASS_IP_OPTIONS;
		if (ip6->nexthdr != KC_IPPROTO_UDP)
			return KC_PASS_NOT_UDP;
		/* ff00::/8 multicast either way, or the unspecified source :: */
		p->l3_mcast = ip6->daddr.in6_u.u6_addr8[0] == 0xff ||
			      ip6->saddr.in6_u.u6_addr8[0] == 0xff ||
			      (ip6->saddr.in6_u.u6_addr32[0] | ip6->saddr.in6_u.u6_addr32[1] |
			       ip6->saddr.in6_u.u6_addr32[2] | ip6->saddr.in6_u.u6_addr32[3]) == 0;
		p->v6 = 1;
		off += KC_IP6_HLEN;
		l4_len = bpf_ntohs(ip6->payload_len);
	} else {
		return KC_PASS_NOT_IP;
	}

	/* off is 34, 38, 54 or 58: the verifier sees a bounded variable offset. */
	udp = data + off;
	if ((void *)(udp + 1) > data_end || l4_len < KC_UDP_HLEN)
		return KC_PASS_MALFORMED;
	/* A UDP length shorter than the IP payload is legal but odd; the stack trims it. */
	if (bpf_ntohs(udp->len) != l4_len)
		return KC_PASS_MALFORMED;
	p->l4_off = off;
	p->udp_len = l4_len;
	p->sport = bpf_ntohs(udp->source);
	p->dport = bpf_ntohs(udp->dest);
	return -1;
}

/* kc_parse_l4's outcomes. */
enum kc_l4_result {
	KC_L4_PORTS = -1,  /* p->proto, ports, source address and l4_off are set */
	KC_L4_SKIP = 0,	   /* nothing a socket would receive as UDP/TCP with ports: not IP, a
			    * header the stack drops (truncated, inconsistent lengths), another
			    * protocol, ESP, or a fragment after the first */
	KC_L4_INVALID = 1, /* more tags, or IPv6 extension headers longer or deeper, than the
			    * program walks */
};

/* Furthest L4 header offset walked: Ethernet, the tags, IPv6 and 256 bytes of extension
 * headers (IPv4 with options ends by 90). */
#define KC_L4_OFF_MAX (KC_ETH_HLEN + KC_POL_VLAN_MAX * KC_VLAN_HLEN + KC_IP6_HLEN + 256)

/* The TPIDs the policy walks as tags. Linux strips 802.1Q and 802.1ad tags with VID 0 (priority
 * tags) and delivers what is behind them, and hands a tag with a VID to that VLAN's device if
 * one exists (which a socket bound to any address hears); 0x9100 it leaves alone, but some
 * hardware strips it, and walking it costs a legitimate frame nothing. */
static __always_inline int kc_eth_is_tag(__u16 proto)
{
	return proto == KC_ETH_P_8021Q || proto == KC_ETH_P_8021AD || proto == KC_ETH_P_QINQ1;
}

/* The policy's Ethernet: walks up to KC_POL_VLAN_MAX tags of any VID, so that every IPv4 or
 * IPv6 packet the stack could deliver, behind whatever tags, is classified by its own headers.
 * Sets p->l2_mcast, p->l3_off, *off to the L3 header and *proto to the ethertype behind the
 * tags. Returns -1; KC_L4_SKIP for a frame that ends inside its tags (the stack drops it);
 * KC_L4_INVALID for one still tagged after KC_POL_VLAN_MAX of them. */
static __always_inline int kc_parse_tags(void *data, void *data_end, struct kc_pkt *p, __u32 *off,
					 __u16 *proto)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return KC_L4_SKIP;
	p->l2_mcast = eth->h_dest[0] & 1;
	*proto = bpf_ntohs(eth->h_proto);
	*off = KC_ETH_HLEN;
#pragma unroll
	for (int i = 0; i < KC_POL_VLAN_MAX; i++) {
		struct vlan_hdr *vh;

		if (!kc_eth_is_tag(*proto))
			break;
		vh = data + *off;
		if ((void *)(vh + 1) > data_end)
			return KC_L4_SKIP;
		*proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		*off += KC_VLAN_HLEN;
	}
	if (kc_eth_is_tag(*proto))
		return KC_L4_INVALID;
	p->l3_off = *off;
	return -1;
}

/* The policy's parser: fills p->frame_len, proto, sport, dport, l4_off, v6, saddr behind up
 * to KC_POL_VLAN_MAX tags (kc_parse_tags). IPv4 options are skipped and IPv6 extension headers
 * walked (hop-by-hop, routing, destination options, fragment, AH); a first fragment is parsed
 * by its L4 header, later fragments are skipped (the stack cannot reassemble them without the
 * first, which the policy saw). */
static __always_inline int kc_parse_l4(struct xdp_md *ctx, struct kc_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 frame_len = (__u32)bpf_xdp_get_buff_len(ctx);
	struct udphdr *l4;
	__u32 off, end;
	__u16 proto;
	__u8 nh;
	int r;

	p->frame_len = frame_len;
	r = kc_parse_tags(data, data_end, p, &off, &proto);
	if (r >= 0)
		return r;
	if (proto == KC_ETH_P_IP) {
		struct iphdr *ip = data + off;
		__u32 ihl;

		if ((void *)(ip + 1) > data_end || !kc_ip4_ok(ip, frame_len, off))
			return KC_L4_SKIP;
		if (ip->frag_off & bpf_htons(KC_IP_OFFSET))
			return KC_L4_SKIP;
		nh = ip->protocol;
		ihl = (*(__u8 *)ip & 0xf) * 4;
		p->v6 = 0;
		p->saddr[0] = ip->saddr;
		end = off + bpf_ntohs(ip->tot_len);
		off += ihl;
	} else if (proto == KC_ETH_P_IPV6) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > data_end || !kc_ip6_ok(ip6, frame_len, off))
			return KC_L4_SKIP;
		p->v6 = 1;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		nh = ip6->nexthdr;
		end = off + KC_IP6_HLEN + bpf_ntohs(ip6->payload_len);
		off += KC_IP6_HLEN;
#pragma unroll
		for (int i = 0; i < KC_POL_V6_EXT_MAX; i++) {
			__u8 *h;

			if (nh == KC_IPPROTO_UDP || nh == KC_IPPROTO_TCP)
				break;
			if (nh != 0 && nh != 43 && nh != 60 && nh != 44 && nh != 51)
				return KC_L4_SKIP; /* ESP, ICMPv6, no next header, ... */
			if (off > KC_L4_OFF_MAX)
				return KC_L4_INVALID;
			h = data + off;
			if ((void *)(h + 8) > data_end)
				return KC_L4_SKIP; /* truncated: the stack drops it */
			if (nh == 44) {
				/* fragment header: offset in the high 13 bits of bytes 2-3 */
				if ((h[2] << 8 | h[3]) & 0xfff8)
					return KC_L4_SKIP;
				off += 8;
			} else if (nh == 51) {
				off += ((__u32)h[1] + 2) * 4;
			} else {
				off += ((__u32)h[1] + 1) * 8;
			}
			nh = h[0];
		}
		/* still inside the chain after KC_POL_V6_EXT_MAX headers */
		if (nh == 0 || nh == 43 || nh == 60 || nh == 44 || nh == 51)
			return KC_L4_INVALID;
	} else {
		return KC_L4_SKIP;
	}
	if (nh != KC_IPPROTO_UDP && nh != KC_IPPROTO_TCP)
		return KC_L4_SKIP;
	if (off > KC_L4_OFF_MAX)
		return KC_L4_INVALID;
	/* Both headers begin with the two ports; 8 bytes (a UDP header, a first fragment's
	 * least) must be inside the datagram and the frame. */
	l4 = data + off;
	if ((void *)(l4 + 1) > data_end || off + KC_UDP_HLEN > end)
		return KC_L4_SKIP;
	p->proto = nh;
	p->l4_off = off;
	p->sport = bpf_ntohs(l4->source);
	p->dport = bpf_ntohs(l4->dest);
	return KC_L4_PORTS;
}

#endif
