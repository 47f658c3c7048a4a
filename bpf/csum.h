/* csum.h: Internet checksum arithmetic for BPF programs (RFC 1071). BPF only.
 *
 * Sums are kept as plain numbers in the "big-endian word" domain: every 16-bit word is read as
 * the number its two bytes spell in network order (so values loaded from the packet go through
 * bpf_ntohs first), and a 32-bit accumulator collects them with the carries folded at the end.
 * A piece of data summed as if it started at an even offset contributes its sum byte-swapped
 * when it actually sits at an odd offset: that is what lets kcache add pre-computed sums of
 * reply fragments at whatever offset they land.
 */
#ifndef KC_BPF_CSUM_H
#define KC_BPF_CSUM_H

/* Folds a 32-bit accumulator into 16 bits. Twice: the first fold can itself carry
 * (0xffff + 0xffff -> 0x1fffe -> 0xffff), which a single fold would drop. */
static __always_inline __u16 kc_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* The contribution of a piece whose even-offset sum is piece_sum when it starts at offset off. */
static __always_inline __u32 kc_csum_at(__u16 piece_sum, __u32 off)
{
	if (off & 1)
		return (__u32)(((piece_sum & 0xff) << 8) | (piece_sum >> 8));
	return piece_sum;
}

/* The value for a UDP checksum field (host order): the complement of the folded sum, with 0
 * sent as 0xffff because 0 means "no checksum" (and is invalid for IPv6). */
static __always_inline __u16 kc_csum_udp_final(__u32 sum)
{
	__u16 c = (__u16)~kc_csum_fold(sum);

	return c ? c : 0xffff;
}

/* Sum of n big-endian words starting at p; n is a compile-time constant at every call site. */
static __always_inline __u32 kc_csum_words(const __be16 *p, int n)
{
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < n; i++)
		sum += bpf_ntohs(p[i]);
	return sum;
}

#endif
