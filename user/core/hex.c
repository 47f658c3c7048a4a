/* hex.c: lowercase hexadecimal. See hex.h. */
#include "core/hex.h"

#include <errno.h>
#include <openssl/sha.h>

void kc_hex_encode(const void *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

int kc_hex_decode(const char *s, size_t n, void *out)
{
	unsigned char *o = out;

	for (size_t i = 0; i < 2 * n; i++) {
		int c = (unsigned char)s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -EINVAL;
		if (i % 2 == 0)
			o[i / 2] = (unsigned char)(v << 4);
		else
			o[i / 2] |= (unsigned char)v;
	}
	return 0;
}

void kc_sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, n, md);
	kc_hex_encode(md, sizeof(md), out);
}
