/* base64.c: see base64.h. */
#include "core/base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t kc_base64_encode(const void *in, size_t n, char *out)
{
	const uint8_t *p = in;
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
	}
	return o;
}

static int digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t kc_base64_decode(const char *s, size_t n, void *out)
{
	uint8_t *o = out;
	size_t len = 0;

	if (n == 0 || n % 4)
		return 0;
	/* Reads a whole quad before writing its bytes, so decoding in place is safe. */
	for (size_t i = 0; i < n; i += 4) {
		int d[4];
		size_t pad = 0;

		for (int j = 0; j < 4; j++) {
			char c = s[i + (size_t)j];

			if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || s[i + 3] == '=')) {
				d[j] = 0;
				pad++;
				continue;
			}
			d[j] = digit(c);
			if (d[j] < 0 || pad)
				return 0;
		}
		uint32_t v = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 |
			     (uint32_t)d[3];

		o[len++] = (uint8_t)(v >> 16);
		if (pad < 2)
			o[len++] = (uint8_t)(v >> 8);
		if (pad < 1)
			o[len++] = (uint8_t)v;
	}
	return len;
}
