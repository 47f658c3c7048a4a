/* selfval.h: values that prove themselves whole, for the store stress tests (unit and
 * integration): [u32 length][u32 seed][bytes derived from seed], 8 to 8 + span - 1 bytes.
 * A torn, truncated or mixed-up value fails selfval_ok. Header only: no libkcache, no cmocka. */
#ifndef KC_TEST_SELFVAL_H
#define KC_TEST_SELFVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Writes the value of seed into buf (room for 8 + span bytes); returns its length. */
static inline size_t selfval_make(unsigned char *buf, uint32_t seed, uint32_t span)
{
	uint32_t len = 8 + seed % span;

	memcpy(buf, &len, 4);
	memcpy(buf + 4, &seed, 4);
	for (uint32_t i = 8; i < len; i++)
		buf[i] = (unsigned char)(seed * 31 + i * 17);
	return len;
}

static inline bool selfval_ok(const unsigned char *v, size_t n, uint32_t span)
{
	uint32_t len, seed;

	if (n < 8)
		return false;
	memcpy(&len, v, 4);
	memcpy(&seed, v + 4, 4);
	if (len != n || len != 8 + seed % span)
		return false;
	for (uint32_t i = 8; i < len; i++)
		if (v[i] != (unsigned char)(seed * 31 + i * 17))
			return false;
	return true;
}

#endif
