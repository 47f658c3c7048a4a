/* hot.c: count-min sketch with aging for the kernel tier's admission (see hot.h). */
#include "kernel/hot.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <xxhash.h>

#define ROWS	      4
#define MIN_WIDTH     1024
#define SAMPLE_FACTOR 10 /* halve after this many additions per counter of a row */
#define SATURATE      (UINT32_MAX / 2)

struct kc_hot {
	_Atomic uint32_t *row[ROWS];
	uint64_t mask; /* width - 1 */
	uint64_t sample;
	_Atomic uint64_t additions;
};

static uint64_t pow2_ceil(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

struct kc_hot *kc_hot_new(uint32_t keys)
{
	uint64_t width = pow2_ceil((uint64_t)keys * 4);
	struct kc_hot *h = calloc(1, sizeof(*h));

	if (!h)
		goto err;
	if (width < MIN_WIDTH)
		width = MIN_WIDTH;
	h->mask = width - 1;
	h->sample = SAMPLE_FACTOR * width;
	for (int r = 0; r < ROWS; r++) {
		h->row[r] = calloc(width, sizeof(*h->row[r]));
		if (!h->row[r])
			goto err_free;
	}
	return h;
err_free:
	kc_hot_free(h);
err:
	errno = ENOMEM;
	return NULL;
}

void kc_hot_free(struct kc_hot *h)
{
	if (!h)
		return;
	for (int r = 0; r < ROWS; r++)
		free(h->row[r]);
	free(h);
}

uint64_t kc_hot_hash(const void *key, size_t nkey)
{
	return XXH3_64bits(key, nkey);
}

/* Row r's counter: double hashing from the two halves of the 64-bit hash. */
static inline uint64_t index_of(const struct kc_hot *h, uint64_t hash, int r)
{
	uint64_t a = hash & 0xffffffffu, b = (hash >> 32) | 1;

	return (a + (uint64_t)r * b) & h->mask;
}

uint32_t kc_hot_add(struct kc_hot *h, uint64_t hash, uint32_t n)
{
	uint32_t est = UINT32_MAX;

	if (n > SATURATE)
		n = SATURATE;
	for (int r = 0; r < ROWS; r++) {
		_Atomic uint32_t *c = &h->row[r][index_of(h, hash, r)];
		uint32_t v = atomic_load_explicit(c, memory_order_relaxed);

		/* Saturate instead of wrapping; aging brings it down again. */
		if (v <= SATURATE)
			v = atomic_fetch_add_explicit(c, n, memory_order_relaxed) + n;
		if (v < est)
			est = v;
	}
	atomic_fetch_add_explicit(&h->additions, n, memory_order_relaxed);
	return est;
}

bool kc_hot_note(struct kc_hot *h, uint64_t hash)
{
	return kc_hot_add(h, hash, 1) >= KC_HOT_MIN;
}

uint32_t kc_hot_estimate(const struct kc_hot *h, uint64_t hash)
{
	uint32_t est = UINT32_MAX;

	for (int r = 0; r < ROWS; r++) {
		uint32_t v =
		    atomic_load_explicit(&h->row[r][index_of(h, hash, r)], memory_order_relaxed);

		if (v < est)
			est = v;
	}
	return est;
}

bool kc_hot_age(struct kc_hot *h)
{
	if (atomic_load_explicit(&h->additions, memory_order_relaxed) < h->sample)
		return false;
	for (int r = 0; r < ROWS; r++)
		for (uint64_t i = 0; i <= h->mask; i++) {
			uint32_t v = atomic_load_explicit(&h->row[r][i], memory_order_relaxed);

			if (v)
				atomic_store_explicit(&h->row[r][i], v / 2, memory_order_relaxed);
		}
	atomic_store_explicit(&h->additions, 0, memory_order_relaxed);
	return true;
}

size_t kc_hot_bytes(const struct kc_hot *h)
{
	return sizeof(*h) + ROWS * (h->mask + 1) * sizeof(uint32_t);
}
