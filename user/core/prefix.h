/* prefix.h: an IPv4 or IPv6 source prefix, as config (--allow) and the network policy write
 * them. Data and pure functions only; no locks. */
#ifndef KC_CORE_PREFIX_H
#define KC_CORE_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A source prefix. Host bits are always zero. */
struct kc_prefix {
	uint8_t v6;
	uint8_t len;   /* 0..32 or 0..128 */
	uint8_t a[16]; /* network order; IPv4 in a[0..3], the rest zero */
};

/* Parses "198.18.0.0/24", "2001:db8::/32" or a bare address. Returns 0, or -EINVAL with what
 * was expected in err (bad address, length out of range, host bits set). */
int kc_prefix_parse(const char *s, struct kc_prefix *out, char *err, size_t errlen);

/* Writes p as "198.18.0.0/24" into buf (64 bytes is enough). */
void kc_prefix_text(const struct kc_prefix *p, char *buf, size_t len);

/* True when a contains b (same family, a no longer than b, b's first a->len bits equal). */
bool kc_prefix_contains(const struct kc_prefix *a, const struct kc_prefix *b);

#endif
