/* parse.h: bounds-checked parsing of Ethernet (one optional 802.1Q tag), IPv4, IPv6 and UDP
 * headers for XDP programs. BPF only; nothing here writes to the packet.
 *
 * Lengths are taken from the IP header, never from the frame: a frame may carry Ethernet padding
 * (a minimal frame is 60 bytes) or be shorter than its headers claim, and both must be told apart
 * from the datagram itself.
 */
#ifndef KC_BPF_PARSE_H
#define KC_BPF_PARSE_H

#include <kcache/cache.h>

#define KC_ETH_P_IP	0x0800
#define KC_ETH_P_IPV6	0x86DD
#define KC_ETH_P_8021Q	0x8100
#define KC_IPPROTO_UDP	17
#define KC_IP_MF_OFFSET 0x3fff /* MF flag and fragment offset */
#define KC_ETH_HLEN	14
#define KC_VLAN_HLEN	4
#define KC_IP4_HLEN	20
#define KC_IP6_HLEN	40
#define KC_UDP_HLEN	8

/* Where the headers of a UDP datagram are. Offsets are from the start of the frame. */
struct kc_pkt {
	__u32 l3_off;	/* 14, or 18 behind a VLAN tag */
	__u32 l4_off;	/* UDP header */
	__u32 udp_len;	/* UDP header + payload, as both the IP and UDP headers agree */
	__u32 v6;	/* 1 for IPv6 */
	__u32 l2_mcast; /* destination MAC is multicast or broadcast */
	__u32 l3_mcast; /* destination or source IP is not unicast */
	__u16 sport;	/* host order */
	__u16 dport;	/* host order */
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

/* Fills p for a UDP datagram. Returns -1 on success, or the enum kc_pass_reason that stops it. */
static __always_inline int kc_parse_udp(struct xdp_md *ctx, struct kc_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* a helper, not data_end - data: pointer subtraction needs CAP_PERFMON */
	__u32 frame_len = (__u32)bpf_xdp_get_buff_len(ctx);
	struct ethhdr *eth = data;
	struct udphdr *udp;
	__u32 off = KC_ETH_HLEN, l4_len;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return KC_PASS_NOT_IP;
	p->l2_mcast = eth->h_dest[0] & 1;
	proto = bpf_ntohs(eth->h_proto);
	if (proto == KC_ETH_P_8021Q) {
		struct vlan_hdr *vh = (void *)(eth + 1);

		if ((void *)(vh + 1) > data_end)
			return KC_PASS_NOT_IP;
		proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		off += KC_VLAN_HLEN;
	}
	p->l3_off = off;

	if (proto == KC_ETH_P_IP) {
		struct iphdr *ip = data + off;
		__u8 vihl;
		__u32 tot;

		if ((void *)(ip + 1) > data_end)
			return KC_PASS_MALFORMED;
		vihl = *(__u8 *)ip;
		tot = bpf_ntohs(ip->tot_len);
		if ((vihl >> 4) != 4 || (vihl & 0xf) < 5 || tot < (__u32)(vihl & 0xf) * 4 ||
		    tot > frame_len - off)
			return KC_PASS_MALFORMED;
		if ((vihl & 0xf) != 5)
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
		l4_len = tot - KC_IP4_HLEN;
	} else if (proto == KC_ETH_P_IPV6) {
		struct ipv6hdr *ip6 = data + off;
		__u32 plen;

		if ((void *)(ip6 + 1) > data_end)
			return KC_PASS_MALFORMED;
		plen = bpf_ntohs(ip6->payload_len);
		if ((*(__u8 *)ip6 >> 4) != 6 || plen > frame_len - off - KC_IP6_HLEN)
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
		l4_len = plen;
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

#endif
