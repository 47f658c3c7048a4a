/* store_idx.h: the directory store's in-memory index: object address -> size and recency, in
 * LRU order, with running totals. A plain data structure: it takes no lock;
 * user/tiers/store/store_dir.c holds its mutex around every call. */
#ifndef KC_STORE_IDX_H
#define KC_STORE_IDX_H

#include <stdbool.h>
#include <stdint.h>

#define KC_ADDR_LEN 32 /* a binary SHA-256 */

struct kc_sidx;

/* Returns NULL (errno ENOMEM) when out of memory. */
struct kc_sidx *kc_sidx_new(void);
void kc_sidx_free(struct kc_sidx *x);

/* Adds addr, or replaces it, as the most recently used object; stamp is the last access time as
 * stored on disk (ns). Returns 0, or -ENOMEM (the index is unchanged). */
int kc_sidx_set(struct kc_sidx *x, const uint8_t *addr, uint64_t size, int64_t stamp);
/* Removes addr; returns whether it was there, and its size in *size. */
bool kc_sidx_remove(struct kc_sidx *x, const uint8_t *addr, uint64_t *size);
bool kc_sidx_has(struct kc_sidx *x, const uint8_t *addr);
/* Makes addr the most recently used. Returns true when addr is there and its stored stamp is at
 * least persist_ns older than now; the stamp is then set to now, and the caller writes it to
 * disk (so that recency survives a restart without a write on every read). */
bool kc_sidx_touch(struct kc_sidx *x, const uint8_t *addr, int64_t now, int64_t persist_ns);
/* Removes the least recently used object into addr/size; false when empty. */
bool kc_sidx_pop_lru(struct kc_sidx *x, uint8_t *addr, uint64_t *size);
/* Orders the whole LRU list by stamp, oldest first: after loading from disk in any order.
 * Returns 0 or -ENOMEM (the order is then left as it was). */
int kc_sidx_sort(struct kc_sidx *x);
uint64_t kc_sidx_objects(const struct kc_sidx *x);
uint64_t kc_sidx_bytes(const struct kc_sidx *x);

#endif
