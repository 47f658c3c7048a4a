/* cache_entry.h: the daemon's half of the kernel hot-key tier contract (include/kcache/cache.h).
 * Renders slots, builds keys, converts memcached expiry, stamps the heartbeat, reads counters,
 * and provides the RCU barrier that makes slot reuse safe. No state of its own, no locks: the
 * daemon is the only writer of the maps and serialises its writes (one thread or its own lock).
 *
 * Install or replace key K:
 *   1. take a free slot S: one that kc_index does not reference and that is not in quarantine;
 *   2. kc_entry_render(&e, K, ..., gen) with a fresh gen (a counter from 1, never reused), then
 *      bpf_map_update_elem(kc_slots_fd, &S, &e, BPF_ANY);
 *   3. kc_index_put(kc_index_fd, mask, kc_key_hash(K), S, gen, 0) (on failure S goes back to
 *      free; -EEXIST: another resident key has the same hash, -ENOSPC: K's bucket has no free
 *      way; either way K is refused);
 *   4. the slot K had before, if any, goes into quarantine.
 * Remove K, before acknowledging any write to it:
 *      kc_index_del(kc_index_fd, mask, kc_key_hash(K)) (-ENOENT is fine); K's slot goes into
 *      quarantine.
 *   When the delete returns, no XDP run that starts afterwards can serve K.
 * Quarantine: a program that found S before step 3 or the delete may still be copying from it.
 *   A quarantined slot becomes free only after kc_rcu_sync() has returned once since it entered
 *   quarantine; batch them (one sync per heartbeat tick, or when free slots run low).
 *   Never write to a slot that kc_index references: write a new slot and switch the reference.
 * Heartbeat: kc_heartbeat_beat() at least every hb_window / 4 (250 ms by default); the program
 *   stops serving hb_window after the last one, so a dead daemon stops the kernel tier within a
 *   second. kc_heartbeat_stop() on a clean shutdown stops it at once.
 * Knobs: skel->rodata->kc_cfg (struct kc_kconfig) between open and load, and
 *   bpf_map__set_max_entries() of kc_slots to --kernel-entries, of kc_index to
 *   kc_index_buckets(entries) (kc_cfg.index_mask is that minus 1). Pin kc_index,
 *   kc_slots, kc_stats and kc_heartbeat under --pin-path with bpf_map__set_pin_path() before load.
 */
#ifndef KC_CACHE_ENTRY_H
#define KC_CACHE_ENTRY_H

#include <stddef.h>
#include <kcache/cache.h>

#include "core/bpf_rcu.h"
#include "core/clock.h" /* kc_mono_ns: the clock of bpf_ktime_get_ns() */

/* Fills k with key[0..len) zero-padded. Returns 0, or -EINVAL if len is 0 or above KC_KEY_MAX,
 * or the key holds a byte the program never accepts in a request (control bytes, space, DEL). */
int kc_key_init(struct kc_key *k, const void *key, size_t len);

/* KC_HASH of key[0..len) (include/kcache/cache.h): its kc_index key. */
__u64 kc_key_hash(const void *key, size_t len);

/* kc_index buckets for entries resident keys: the power of two at or above entries (at least
 * 1), so that a bucket holds one key on average and seldom all KC_INDEX_WAYS. */
__u32 kc_index_buckets(__u32 entries);

/* kc_index (fd, with mask = buckets - 1): puts hash -> (slot, gen) into a way of its bucket by
 * rewriting the bucket with one map update. A way that already holds hash is overwritten only
 * with replace. Returns 0, -EEXIST (hash present, !replace), -ENOSPC (no free way), -EINVAL
 * (hash 0), or the map update's negative errno. The daemon is the only writer. */
int kc_index_put(int fd, __u32 mask, __u64 hash, __u32 slot, __u64 gen, int replace);

/* Clears the way holding hash. Returns 0, -ENOENT if none, or a negative errno. */
int kc_index_del(int fd, __u32 mask, __u64 hash);

/* Copies the way holding hash into *out. Returns 0, -ENOENT, or a negative errno. */
int kc_index_get(int fd, __u32 mask, __u64 hash, struct kc_kref *out);

/* Renders e for one item: "VALUE <key> <flags> <bytes>", " <cas>", "\r\n<data>\r\n" and their
 * checksums; every other byte zero. expire_ns is a CLOCK_MONOTONIC deadline (0 = never, see
 * kc_expire_ns()); gen must be unique, its low 32 bits non-zero. Returns 0, -EINVAL for a bad key
 * or gen 0, or -E2BIG when value_len exceeds KC_VALUE_MAX (the caller's --kernel-max-value is
 * lower). */
int kc_entry_render(struct kc_kentry *e, const void *key, size_t key_len, __u32 flags,
		    const void *value, size_t value_len, __u64 cas, __u64 expire_ns, __u64 gen);

/* The 16-bit one's-complement sum the slot stores for a piece (see struct kc_kentry). */
__u16 kc_entry_csum(const void *p, size_t len);

/* Converts a memcached exptime to a CLOCK_MONOTONIC deadline for kc_kentry.expire_ns:
 * 0 -> 0 (never); up to 30 days -> relative seconds; above -> absolute Unix time. Returns 1 (a
 * deadline already past) for a negative exptime or an absolute time not after now_unix. */
__u64 kc_expire_ns(__s64 exptime, __s64 now_unix, __u64 now_mono_ns);

/* Writes kc_mono_ns() (beat) or 0 (stop) to kc_heartbeat[0]. Return 0 or a negative errno. */
int kc_heartbeat_beat(int heartbeat_fd);
int kc_heartbeat_stop(int heartbeat_fd);

/* Sums kc_stats over all possible CPUs into *out. Returns 0 or a negative errno. */
int kc_kstats_read(int stats_fd, struct kc_kstats *out);

/* Label for an enum kc_pass_reason ("miss", "wrong_port", ...), or "unknown". */
const char *kc_pass_reason_name(unsigned int reason);

#endif
