/* pct.h: URL %-escapes, for the URL parsers (redis_url.c, store_s3url.c). */
#ifndef KC_PCT_H
#define KC_PCT_H

#include <stddef.h>

static inline int kc_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte that the escape "%XX" at s[i] (s[i] == '%') stands for, or -1 if s[0..n) has no two
 * hex digits after it. */
static inline int kc_pct_escape(const char *s, size_t n, size_t i)
{
	int hi = i + 2 < n ? kc_hexval(s[i + 1]) : -1;
	int lo = i + 2 < n ? kc_hexval(s[i + 2]) : -1;

	return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

#endif
