/* hot.h: key popularity for the kernel hot-key tier: a count-min sketch with aging.
 *
 * Four rows of 32-bit counters; a key's estimate is the smallest of its four counters, so it
 * can only over-count (by the keys it collides with), never under-count. Every counter is
 * halved once the additions since the last halving reach a sample of ten per counter of a
 * row (TinyLFU's reset), so popularity fades and a key that was hot an hour ago does not keep
 * a newly hot one out.
 *
 * Threads: kc_hot_add() and kc_hot_estimate() from any thread (relaxed atomics, no lock: a
 * count lost to a concurrent halving is noise in an estimate). kc_hot_age() from one thread
 * at a time (the daemon's main thread).
 */
#ifndef KC_HOT_H
#define KC_HOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kc_hot;

/* A sketch for a population of about `keys` keys worth telling apart (the kernel tier's
 * size; rows are 4 * keys wide, at least 1024). Returns NULL with errno = ENOMEM. */
struct kc_hot *kc_hot_new(uint32_t keys);
/* NULL is allowed. */
void kc_hot_free(struct kc_hot *h);

/* The hash every other call takes: XXH3 of the key bytes. */
uint64_t kc_hot_hash(const void *key, size_t nkey);

/* Counts n requests for the key and returns its new estimate. */
uint32_t kc_hot_add(struct kc_hot *h, uint64_t hash, uint32_t n);

/* The key's estimated recent request count. */
uint32_t kc_hot_estimate(const struct kc_hot *h, uint64_t hash);

/* Halves every counter if the sample is full. Returns true if it did. */
bool kc_hot_age(struct kc_hot *h);

/* Requests within the sketch's window before a key is worth offering to the kernel tier: one
 * request is no evidence of popularity (a one-hit wonder, a scan). */
#define KC_HOT_MIN 2

/* Counts one request for the key; true if its estimate has reached KC_HOT_MIN, so the kernel
 * tier may offer it for admission. Any thread, as kc_hot_add. */
bool kc_hot_note(struct kc_hot *h, uint64_t hash);

/* TinyLFU's admission rule (kernel/cache.c's admit): once the kernel tier is full, a candidate
 * whose estimate is `cand` displaces a resident whose estimate is `victim` only if it is
 * strictly more frequent; a tie keeps the resident (no churn between equals). */
static inline bool kc_hot_admits(uint32_t cand, uint32_t victim)
{
	return cand > victim;
}

/* Bytes the sketch occupies. */
size_t kc_hot_bytes(const struct kc_hot *h);

#endif
