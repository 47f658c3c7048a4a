/* num.c: the decimal number parser. See num.h. */
#include "core/num.h"

#include <errno.h>
#include <string.h>

int kc_parse_u64n(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
	if (n > 20)
		return -ERANGE;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int kc_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return kc_parse_u64n(s, strlen(s), max, out);
}
