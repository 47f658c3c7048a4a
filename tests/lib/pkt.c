/* pkt.c: canned packets and an independent checksum verifier (see pkt.h). Written from the RFCs
 * (791, 768, 8200, 1071), sharing nothing with bpf/ or user/. */
#include "pkt.h"

#include <stdio.h>
#include <string.h>

#define ETH_HLEN 14

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint16_t pkt_csum(const void *data, size_t len, uint32_t init)
{
	const uint8_t *b = data;
	uint64_t sum = init;

	for (size_t i = 0; i < len; i++)
		sum += (i & 1) ? b[i] : (uint32_t)b[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Sum of the UDP pseudo-header (RFC 768 / RFC 8200 8.1). */
static uint32_t pseudo_sum(int v6, const uint8_t *src, const uint8_t *dst, uint32_t udp_len)
{
	size_t alen = v6 ? 16 : 4;

	return pkt_csum(src, alen, 0) + pkt_csum(dst, alen, 0) + 17 + (udp_len >> 16) +
	       (udp_len & 0xffff);
}

size_t pkt_build(uint8_t *buf, size_t cap, const struct pkt_spec *s, const void *payload,
		 size_t len)
{
	uint8_t proto = s->proto ? s->proto : 17;
	size_t off = 0, l3, ext = 0, l4, total;
	uint8_t ttl = s->ttl ? s->ttl : 64;

	if (s->n_tags < 0 || s->n_tags > PKT_TAGS_MAX)
		return 0;
	total = ETH_HLEN + (s->vlan ? 4 : 0) + (size_t)s->n_tags * 4 + len;
	if (!s->raw_ethertype)
		total += (s->v6 ? 40 : 20 + s->ip_opt_len) + (proto == 17 ? 8 : 0) +
			 (s->v6 && s->v6_ext ? 8 : 0);
	if (total > cap || (s->pad_to && s->pad_to > cap))
		return 0;
	memset(buf, 0, s->pad_to > total ? s->pad_to : total);

	memcpy(buf, s->dst_mac, 6);
	memcpy(buf + 6, s->src_mac, 6);
	off = 12;
	if (s->vlan) {
		put16(buf + off, s->vlan_tpid ? s->vlan_tpid : 0x8100);
		put16(buf + off + 2, s->vlan_tci);
		off += 4;
	}
	for (int i = 0; i < s->n_tags; i++) {
		put16(buf + off, s->tags[i].tpid);
		put16(buf + off + 2, s->tags[i].tci);
		off += 4;
	}
	put16(buf + off, s->raw_ethertype ? s->raw_ethertype : s->v6 ? 0x86dd : 0x0800);
	off += 2;
	l3 = off;
	if (s->raw_ethertype) {
		memcpy(buf + off, payload, len);
		return s->pad_to > total ? s->pad_to : total;
	}

	if (s->v6) {
		uint32_t w = 6u << 28 | (uint32_t)s->tos << 20 | (s->flow_label & 0xfffff);
		size_t plen = (s->v6_ext ? 8 : 0) + (proto == 17 ? 8 : 0) + len;

		put16(buf + l3, (uint16_t)(w >> 16));
		put16(buf + l3 + 2, (uint16_t)w);
		put16(buf + l3 + 4, (uint16_t)plen);
		buf[l3 + 7] = ttl;
		memcpy(buf + l3 + 8, s->src_ip, 16);
		memcpy(buf + l3 + 24, s->dst_ip, 16);
		l4 = l3 + 40;
		if (s->v6_ext == 44) {
			buf[l3 + 6] = 44;
			buf[l4] = proto;
			put16(buf + l4 + 2, 1); /* offset 0, M set */
			put16(buf + l4 + 4, 0x1234);
			put16(buf + l4 + 6, 0x5678);
			ext = 8;
		} else if (s->v6_ext) {
			buf[l3 + 6] = 0; /* hop-by-hop, one PadN option filling 6 bytes */
			buf[l4] = proto;
			buf[l4 + 1] = 0;
			buf[l4 + 2] = 1;
			buf[l4 + 3] = 4;
			ext = 8;
		} else {
			buf[l3 + 6] = proto;
		}
		l4 += ext;
	} else {
		size_t ihl = 20 + s->ip_opt_len;

		buf[l3] = (uint8_t)(0x40 | (ihl / 4));
		buf[l3 + 1] = s->tos;
		put16(buf + l3 + 2, (uint16_t)(ihl + (proto == 17 ? 8 : 0) + len));
		put16(buf + l3 + 4, s->ip_id);
		put16(buf + l3 + 6, s->frag_off);
		buf[l3 + 8] = ttl;
		buf[l3 + 9] = proto;
		memcpy(buf + l3 + 12, s->src_ip, 4);
		memcpy(buf + l3 + 16, s->dst_ip, 4);
		for (size_t i = 0; i < s->ip_opt_len; i++)
			buf[l3 + 20 + i] = i + 1 < s->ip_opt_len ? 1 : 0; /* NOPs, then EOL */
		put16(buf + l3 + 10, (uint16_t)~pkt_csum(buf + l3, ihl, 0));
		l4 = l3 + ihl;
	}

	if (proto != 17) {
		memcpy(buf + l4, payload, len);
	} else {
		uint32_t ulen = (uint32_t)(8 + len);
		uint16_t c;

		put16(buf + l4, s->sport);
		put16(buf + l4 + 2, s->dport);
		put16(buf + l4 + 4, (uint16_t)ulen);
		if (len)
			memcpy(buf + l4 + 8, payload, len);
		if (!(s->no_udp_csum && !s->v6)) {
			c = (uint16_t)~pkt_csum(buf + l4, ulen,
						pseudo_sum(s->v6, s->src_ip, s->dst_ip, ulen));
			put16(buf + l4 + 6, c ? c : 0xffff);
		}
	}
	return s->pad_to > total ? s->pad_to : total;
}

size_t pkt_build_mc(uint8_t *buf, size_t cap, const struct pkt_spec *s, uint16_t req_id,
		    uint16_t seq, uint16_t total, const void *text, size_t len)
{
	uint8_t payload[9000];

	if (len + 8 > sizeof(payload))
		return 0;
	put16(payload, req_id);
	put16(payload + 2, seq);
	put16(payload + 4, total);
	put16(payload + 6, 0);
	if (len)
		memcpy(payload + 8, text, len);
	return pkt_build(buf, cap, s, payload, len + 8);
}

void pkt_spec_reverse(struct pkt_spec *out, const struct pkt_spec *req)
{
	*out = *req;
	memcpy(out->dst_mac, req->src_mac, 6);
	memcpy(out->src_mac, req->dst_mac, 6);
	memcpy(out->dst_ip, req->src_ip, 16);
	memcpy(out->src_ip, req->dst_ip, 16);
	out->sport = req->dport;
	out->dport = req->sport;
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(why, whylen, __VA_ARGS__);                                                \
		return -1;                                                                         \
	} while (0)

int pkt_verify(const uint8_t *f, size_t len, int require_udp_csum, char *why, size_t whylen)
{
	size_t l3 = ETH_HLEN, l4, alen;
	uint16_t type, ulen, c;
	uint32_t l4_len;
	int v6;

	if (len < ETH_HLEN)
		FAIL("frame of %zu bytes", len);
	type = get16(f + 12);
	if (type == 0x8100) {
		if (len < 18)
			FAIL("truncated VLAN tag");
		type = get16(f + 16);
		l3 = 18;
	}
	if (type == 0x0800) {
		size_t ihl;
		uint16_t tot;

		v6 = 0;
		if (len < l3 + 20)
			FAIL("truncated IPv4 header");
		ihl = (size_t)(f[l3] & 0xf) * 4;
		tot = get16(f + l3 + 2);
		if ((f[l3] >> 4) != 4 || ihl != 20)
			FAIL("IPv4 version/ihl byte 0x%02x", f[l3]);
		if (tot < 28 || l3 + tot != len)
			FAIL("IPv4 total length %u, frame has %zu after L2", tot, len - l3);
		if (pkt_csum(f + l3, ihl, 0) != 0xffff)
			FAIL("IPv4 header checksum 0x%04x wrong", get16(f + l3 + 10));
		if (f[l3 + 9] != 17)
			FAIL("IPv4 protocol %u", f[l3 + 9]);
		l4 = l3 + ihl;
		l4_len = tot - (uint32_t)ihl;
	} else if (type == 0x86dd) {
		v6 = 1;
		if (len < l3 + 40)
			FAIL("truncated IPv6 header");
		if ((f[l3] >> 4) != 6 || f[l3 + 6] != 17)
			FAIL("IPv6 version %u next header %u", f[l3] >> 4, f[l3 + 6]);
		l4 = l3 + 40;
		l4_len = get16(f + l3 + 4);
		if (l4 + l4_len != len)
			FAIL("IPv6 payload length %u, frame has %zu after it", l4_len, len - l4);
	} else {
		FAIL("ethertype 0x%04x", type);
	}
	if (l4_len < 8)
		FAIL("no room for a UDP header");
	ulen = get16(f + l4 + 4);
	if (ulen != l4_len)
		FAIL("UDP length %u, IP says %u", ulen, l4_len);
	c = get16(f + l4 + 6);
	if (c == 0) {
		if (v6 || require_udp_csum)
			FAIL("UDP checksum is 0");
		return 0;
	}
	alen = v6 ? 16 : 4;
	if (pkt_csum(f + l4, ulen,
		     pseudo_sum(v6, f + l3 + (v6 ? 8 : 12), f + l3 + (v6 ? 8 : 12) + alen, ulen)) !=
	    0xffff)
		FAIL("UDP checksum 0x%04x wrong", c);
	return 0;
}

void pkt_diff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, char *out,
	      size_t outlen)
{
	size_t i = 0, n = alen < blen ? alen : blen, o;
	int w;

	while (i < n && a[i] == b[i])
		i++;
	w = snprintf(out, outlen, "lengths %zu/%zu, first difference at %zu:", alen, blen, i);
	o = w > 0 ? (size_t)w : 0;
	for (size_t j = i; j < i + 16 && o < outlen; j++) {
		w = snprintf(out + o, outlen - o, " %02x/%02x", j < alen ? a[j] : 0xffu,
			     j < blen ? b[j] : 0xffu);
		o += w > 0 ? (size_t)w : 0;
	}
}
