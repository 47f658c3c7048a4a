/* prefix.c: IPv4 and IPv6 source prefixes: parsing, text, containment (contract: prefix.h). */
#include "core/prefix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/num.h"

void kc_prefix_text(const struct kc_prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->v6 ? AF_INET6 : AF_INET, p->a, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->len);
}

int kc_prefix_parse(const char *s, struct kc_prefix *out, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t len;
	unsigned max;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr))
		goto bad;
	memcpy(addr, s, alen);
	addr[alen] = 0;
	if (inet_pton(AF_INET, addr, out->a) == 1) {
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->a) == 1) {
		out->v6 = 1;
		max = 128;
	} else {
		goto bad;
	}
	len = max;
	/* The length: 1 to 3 decimal digits. */
	if (slash && (strlen(slash + 1) > 3 || kc_parse_u64(slash + 1, 255, &len)))
		goto bad;
	if (len > max) {
		kc_errf(err, errlen, "prefix: length %llu is more than %u in '%s'",
			(unsigned long long)len, max, s);
		return -EINVAL;
	}
	out->len = (uint8_t)len;
	for (unsigned bit = (unsigned)len; bit < max; bit++)
		if (out->a[bit / 8] & (0x80 >> (bit % 8))) {
			struct kc_prefix net = *out;
			char t[64];

			for (unsigned b = (unsigned)len; b < max; b++)
				net.a[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
			kc_prefix_text(&net, t, sizeof(t));
			kc_errf(err, errlen, "prefix: '%s' has host bits set (the network is %s)",
				s, t);
			return -EINVAL;
		}
	return 0;
bad:
	kc_errf(err, errlen,
		"prefix: expected an IPv4 or IPv6 prefix such as 198.18.0.0/24 or 2001:db8::/32, "
		"got '%s'",
		s);
	return -EINVAL;
}

bool kc_prefix_contains(const struct kc_prefix *a, const struct kc_prefix *b)
{
	unsigned full = a->len / 8, rest = a->len % 8;

	if (a->v6 != b->v6 || a->len > b->len)
		return false;
	if (memcmp(a->a, b->a, full))
		return false;
	return !rest || ((a->a[full] ^ b->a[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}
