/* pkt.h: canned packets for BPF_PROG_TEST_RUN tests, and an independent checksum verifier.
 *
 * The builders write Ethernet (optionally 802.1Q/802.1ad tags) + IPv4/IPv6 + UDP frames with
 * correct lengths and checksums; knobs produce the odd cases (IP options, fragments, extension
 * headers, other protocols, Ethernet padding). The verifier re-parses a frame and recomputes every
 * checksum with a plain byte-wise one's-complement sum that shares no code with the BPF side.
 * Pure C: no libbpf, no cmocka.
 */
#ifndef KC_TEST_PKT_H
#define KC_TEST_PKT_H

#include <stddef.h>
#include <stdint.h>

/* Tags pkt_spec.tags can stack. */
#define PKT_TAGS_MAX 8

struct pkt_spec {
	int v6;
	int vlan; /* one 802.1Q tag with vlan_tci */
	uint16_t vlan_tci;
	uint16_t vlan_tpid; /* 0: 0x8100 (set 0x88a8 for an 802.1ad outer tag) */
	int n_tags; /* more tags after that one (or alone), outermost first; <= PKT_TAGS_MAX */
	struct {
		uint16_t tpid, tci; /* written as given: 0x8100, 0x88a8, 0x9100, anything */
	} tags[PKT_TAGS_MAX];
	uint16_t raw_ethertype; /* non-zero: no IP at all, payload follows Ethernet (e.g. ARP) */
	uint8_t dst_mac[6], src_mac[6];
	uint8_t src_ip[16], dst_ip[16]; /* IPv4 uses the first 4 bytes */
	uint16_t sport, dport;
	uint8_t ttl; /* or hop limit; 0 means 64 */
	uint8_t tos; /* or traffic class */
	uint16_t ip_id;
	uint16_t frag_off;   /* IPv4 flags + fragment offset, host order */
	uint32_t flow_label; /* IPv6, 20 bits */
	uint8_t proto;	     /* 0: UDP (17) */
	size_t ip_opt_len;   /* IPv4 options (multiple of 4, NOPs + EOL) */
	int v6_ext; /* IPv6 extension header before UDP: 0 none, 44 fragment, 0x100 hop-by-hop */
	int no_udp_csum; /* leave the UDP checksum 0 (IPv4 only) */
	size_t pad_to;	 /* zero-pad the frame to this length (e.g. 60) */
};

/* Writes a frame carrying payload as the UDP payload (or, with proto != 17, as the L4 bytes).
 * Returns its length, or 0 when cap is too small or n_tags is out of range. */
size_t pkt_build(uint8_t *buf, size_t cap, const struct pkt_spec *s, const void *payload,
		 size_t len);

/* Same, with the 8-byte memcached UDP frame header in front of text. */
size_t pkt_build_mc(uint8_t *buf, size_t cap, const struct pkt_spec *s, uint16_t req_id,
		    uint16_t seq, uint16_t total, const void *text, size_t len);

/* The spec of the reply to req: MACs, addresses and ports swapped, everything else copied. */
void pkt_spec_reverse(struct pkt_spec *out, const struct pkt_spec *req);

/* Folded (not inverted) one's-complement sum of len bytes, big-endian words, plus init. */
uint16_t pkt_csum(const void *data, size_t len, uint32_t init);

/* Parses frame (Ethernet, one optional 802.1Q tag: not the stacks n_tags builds, IPv4 without
 * options or IPv6 without extension headers, UDP) and checks: lengths agree with the frame, IPv4
 * header checksum, UDP checksum (required non-zero when require_udp_csum or IPv6). Returns 0, or -1
 * with why filled in. */
int pkt_verify(const uint8_t *frame, size_t len, int require_udp_csum, char *why, size_t whylen);

/* Hex dump of the first differing region of two buffers into out, for assertion messages. */
void pkt_diff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, char *out,
	      size_t outlen);

#endif
