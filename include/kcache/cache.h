/* cache.h: data layout of the kernel hot-key tier, shared by bpf/cache.bpf.c and the daemon.
 *
 * Layout only: fixed-width types, explicit padding, a size assert on every struct that crosses the
 * kernel boundary. Map definitions stay in bpf/; rendering and the install/remove protocol live in
 * user/kernel/cache_entry.h.
 *
 * Maps (all BTF-typed; the loader pins them under <pin-path>/, e.g. /sys/fs/bpf/kcache/kc_index):
 *
 *   kc_index      ARRAY  __u32 bucket  -> struct kc_ibucket  which keys are resident, and where
 *   kc_slots      ARRAY  __u32 slot    -> struct kc_kentry   pre-rendered reply fragments
 *   kc_heartbeat  ARRAY  __u32 0       -> struct kc_heartbeat the daemon's liveness stamp
 *   kc_stats      PERCPU_ARRAY __u32 0 -> struct kc_kstats   counters, one copy per CPU
 *   kc_hits       ARRAY  __u32 cpu * entries + slot -> __u64 VALUE blocks served from each slot
 *                 by each CPU; BPF_F_MMAPABLE, so the daemon reads it as memory, no syscall
 *
 * Why two maps: values are written once into daemon-owned slots that are never rewritten while a
 * program could be reading them (see the protocol in user/kernel/cache_entry.h); the index only
 * maps a key's 64-bit hash (KC_HASH below) to (slot, gen), and the program re-checks the full key
 * and gen in the slot before serving: two keys with the same hash can never be served each other's
 * value (the other one misses). The daemon installs at most one resident key per hash and counts
 * the keys it refuses for that (kcache_kernel_hash_collisions_total).
 *
 * Why the index is an array of 4-way buckets (struct kc_ibucket), not a BPF hash map: a lookup
 * is one cache line at a known address. The kernel's hash map costs two dependent cache misses
 * (bucket head, then element) and jhash on top; with 100k resident keys under bench/udp-get.sh
 * its lookup was the largest single cost of a hit. The bucket is the hash's low bits
 * (kc_cfg.index_mask); a key whose bucket has no free way is not installed (counted as a
 * collision): no resident entry is ever overwritten by another key's.
 */
#ifndef KCACHE_CACHE_H
#define KCACHE_CACHE_H

#if !defined(__bpf__) && !defined(__BPF__)
#include <linux/types.h>
#endif

#include "limits.h" /* KC_KEY_MAX */

/* Largest value the slot layout can hold. The --kernel-max-value knob may only lower it: raising
 * it changes struct kc_kentry and needs both the BPF object and the daemon rebuilt. */
#define KC_VALUE_MAX 1024
/* "VALUE " key " " flags(u32) " " bytes(u32): 6 + 250 + 1 + 10 + 1 + 10 = 278, rounded up. */
#define KC_HDR_MAX 280
/* "\r\n" data "\r\n" */
#define KC_BODY_MAX (KC_VALUE_MAX + 4)
/* " " cas(u64): 1 + 20, rounded up. */
#define KC_CAS_MAX 24
/* Default number of resident keys (kc_slots max_entries; kc_hits has that many per CPU, kc_index
 * that many buckets); the loader overrides it with bpf_map__set_max_entries() before load
 * (--kernel-entries), and sets kc_cfg.entries, ncpu and index_mask to match. */
#define KC_ENTRIES_DEFAULT 65536

/* A key as a slot stores it: length plus bytes, zero-padded to the full array (the program
 * compares it a word at a time). `char` so bpftool prints it as text. */
struct kc_key {
	__u32 len; /* 1..KC_KEY_MAX */
	char data[KC_KEY_MAX];
	__u8 pad[2]; /* zero */
};
_Static_assert(sizeof(struct kc_key) == 256, "kc_key layout");

/* KC_HASH: the kc_index key of a key of len bytes. Over the bytes as native-order 64-bit words,
 * the last one zero-padded: h = KC_HASH_INIT; h = kc_hash_word(h, w) for each word;
 * kc_hash_final(h, len). The program computes it while it scans the request line; the daemon
 * with kc_key_hash() (user/kernel/cache_entry.h). Not keyed: a client that crafts colliding keys
 * only keeps the second one out of the kernel tier (it is served by the daemon). */
#define KC_HASH_INIT 0x27d4eb2f165667c5ULL
#define KC_HASH_P1   0x9e3779b185ebca87ULL /* xxHash64's primes: one word is mixed as in XXH64 */
#define KC_HASH_P2   0xc2b2ae3d27d4eb4fULL
#define KC_HASH_P4   0x85ebca77c2b2ae63ULL

static inline __u64 kc_hash_word(__u64 h, __u64 w)
{
	w *= KC_HASH_P2;
	w = (w << 31) | (w >> 33);
	w *= KC_HASH_P1;
	h ^= w;
	return ((h << 27) | (h >> 37)) * KC_HASH_P1 + KC_HASH_P4;
}

static inline __u64 kc_hash_final(__u64 h, __u64 len)
{
	h ^= len;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* One way of a kc_index bucket: where a resident key's reply fragment lives. */
struct kc_kref {
	__u64 hash; /* KC_HASH of the key; 0 marks a free way (a key hashing to 0 is never
		       installed) */
	__u32 slot; /* index into kc_slots */
	__u32 gen;  /* the low 32 bits of kc_slots[slot].gen, never 0; else the key is absent */
};
_Static_assert(sizeof(struct kc_kref) == 16, "kc_kref layout");

#define KC_INDEX_WAYS 4

/* kc_index value: bucket hash & kc_cfg.index_mask, one 64-byte cache line. The daemon rewrites
 * a whole bucket with one map update; a reader that sees a way half-written finds a gen that
 * does not match the slot's, or a slot holding another key, and misses. */
struct kc_ibucket {
	struct kc_kref way[KC_INDEX_WAYS];
};
_Static_assert(sizeof(struct kc_ibucket) == 64, "kc_ibucket layout");

/* kc_slots value: one resident key, rendered as the reply bytes memcached would send.
 *
 *   get:  reply[0, hdr_len + body_len)          "VALUE k 5 3" "\r\nbar\r\n"
 *   gets: reply[0, hdr_len) | cas | reply[hdr_len, hdr_len + body_len)
 *                                               "VALUE k 5 3" " 42" "\r\nbar\r\n"
 *
 * Everything a hit reads sits at the front, in one run of cache lines: the fields, the cas, the
 * VALUE line (whose bytes 6 .. 6 + key_len are the key the program compares) and the data. On
 * the bench workload (a 32-byte key, a 300-byte value) that is 7 adjacent lines from the
 * slot's start, which the hardware prefetcher streams; the slots are far too many to stay in
 * cache. `key` repeats the key at the end for bpftool; the program does not read it.
 *
 * Each piece carries its 16-bit one's-complement sum (RFC 1071, big-endian words, the piece
 * starting at an even offset, an odd last byte padded with zero, folded, not inverted) so the
 * program builds the UDP checksum of a reply without reading the bytes back. */
struct kc_kentry {
	__u64 gen;	 /* unique, non-zero, one per rendering; 0 marks a free slot */
	__u64 expire_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) deadline; 0 = never expires */
	__u32 value_len; /* data bytes, <= KC_VALUE_MAX */
	__u16 key_len;	 /* 1..KC_KEY_MAX: the key is reply[6, 6 + key_len) */
	__u16 hdr_len;	 /* 7 + key_len..KC_HDR_MAX: "VALUE <key> <flags> <bytes>" */
	__u16 body_len;	 /* value_len + 4: "\r\n<data>\r\n" */
	__u16 cas_len;	 /* 2..KC_CAS_MAX, leading space included */
	__u16 hdr_csum;
	__u16 body_csum;
	__u16 cas_csum;
	__u8 pad0[6]; /* zero */
	char cas[KC_CAS_MAX];
	char reply[KC_HDR_MAX + KC_BODY_MAX]; /* the VALUE line, then the body right after it */
	__u8 pad1[4];			      /* zero */
	struct kc_key key;		      /* the key again, zero-padded, for bpftool map dump */
};
_Static_assert(sizeof(struct kc_kentry) == 1632, "kc_kentry layout");
_Static_assert(sizeof(struct kc_kentry) % 8 == 0, "kc_kentry alignment");
_Static_assert(__builtin_offsetof(struct kc_kentry, reply) == 64, "kc_kentry reply offset");

/* kc_heartbeat value. The program serves only while now - mono_ns < kc_cfg.hb_window_ns,
 * where now is bpf_ktime_get_ns() (CLOCK_MONOTONIC). 0 means "do not serve". */
struct kc_heartbeat {
	__u64 mono_ns;
};
_Static_assert(sizeof(struct kc_heartbeat) == 8, "kc_heartbeat layout");

/* Why a packet went up with XDP_PASS. Stable numbers: the daemon exports them as metric labels
 * (names in user/kernel/cache_entry.c). Checked in this order; the first that applies is counted.
 */
enum kc_pass_reason {
	KC_PASS_NOT_IP = 0,	/* not IPv4/IPv6 behind at most one 802.1Q tag, or runt frame */
	KC_PASS_MALFORMED = 1,	/* IP/UDP header truncated or lengths inconsistent */
	KC_PASS_IP_OPTIONS = 2, /* IPv4 options or IPv6 extension headers */
	KC_PASS_FRAGMENT = 3,	/* IPv4 MF/offset, IPv6 fragment header */
	KC_PASS_NOT_UDP = 4,
	KC_PASS_WRONG_PORT = 5,	 /* UDP, but not to kc_cfg.port */
	KC_PASS_NOT_UNICAST = 6, /* multicast/broadcast destination or source, or source port 0 */
	KC_PASS_STALE = 7,	 /* daemon heartbeat older than the window, or never set */
	KC_PASS_FRAME_HDR = 8,	 /* no 8-byte memcached UDP header, or not datagram 0 of 1 */
	KC_PASS_NOT_GET = 9,	 /* another command */
	KC_PASS_PARSE = 10, /* get/gets line we do not accept: no key, bad byte, long key, ... */
	KC_PASS_TOO_MANY_KEYS = 11,
	KC_PASS_MISS = 12,    /* a key is absent or expired */
	KC_PASS_TOO_BIG = 13, /* the reply would exceed kc_cfg.mtu */
	KC_PASS_NO_ROOM = 14, /* the frame has room for the reply neither after nor before it */
	/* Checked right after KC_PASS_WRONG_PORT (numbered last to keep the others stable): to
	 * the port, but not to the address the daemon listens on (kc_cfg.addr_mode). */
	KC_PASS_WRONG_ADDR = 15,
	KC_PASS__MAX = 16,
};

/* kc_stats value, per CPU: the daemon sums over CPUs. (kc_kstats: metrics.h has kc_stats.) */
struct kc_kstats {
	__u64 hits;		  /* requests answered with XDP_TX */
	__u64 key_hits;		  /* VALUE blocks in those replies */
	__u64 misses;		  /* get/gets requests passed because a key was absent or expired */
	__u64 expired;		  /* ... of those, the missing key was resident but expired */
	__u64 tx_bytes;		  /* UDP payload bytes of the replies */
	__u64 pass[KC_PASS__MAX]; /* every XDP_PASS, by enum kc_pass_reason */
};
_Static_assert(sizeof(struct kc_kstats) == 8 * 21, "kc_kstats layout");

/* Read-only knobs: `const volatile struct kc_kconfig kc_cfg` in the program's .rodata. The loader
 * sets skel->rodata->kc_cfg between open and load; the verifier then treats them as constants. */
struct kc_kconfig {
	__u16 port;	/* memcached UDP port, host order (--port, default 11211) */
	__u8 addr_mode; /* enum kc_addr_mode: which destination address is answered */
	__u8 pad0;
	__u32 mtu;	    /* largest reply IP packet, IP header included (default 1500) */
	__u32 max_value;    /* serve values of at most this many bytes (--kernel-max-value) */
	__u32 addr4;	    /* KC_ADDR_V4: the IPv4 address, network byte order */
	__u64 hb_window_ns; /* stop serving this long after the last heartbeat (default 1 s) */
	__u32 addr6[4];	    /* KC_ADDR_V6: the IPv6 address, network byte order */
	/* kc_hits: CPU c counts slot s at c * entries + s (max_entries = entries * ncpu). CPUs
	 * at or above ncpu count nothing. Row by CPU: two CPUs serving one hot key never write
	 * to the same cache line. */
	__u32 entries;	  /* kc_slots max_entries */
	__u32 ncpu;	  /* libbpf_num_possible_cpus() */
	__u32 index_mask; /* kc_index max_entries - 1 (a power of two, kc_index_buckets()) */
	__u32 pad1;
};
_Static_assert(sizeof(struct kc_kconfig) == 56, "kc_kconfig layout");

/* The daemon's --listen, so that XDP never answers where the daemon would not: a daemon bound
 * to 127.0.0.1 with XDP on eth0 must not serve the network. */
enum kc_addr_mode {
	KC_ADDR_ANY = 0, /* 0.0.0.0 or :: */
	KC_ADDR_V4 = 1,	 /* only IPv4 packets to addr4 */
	KC_ADDR_V6 = 2,	 /* only IPv6 packets to addr6 */
};

#define KC_PORT_DEFAULT		11211
#define KC_MTU_DEFAULT		1500
#define KC_MAX_VALUE_DEFAULT	1000
#define KC_HB_WINDOW_NS_DEFAULT 1000000000ULL
/* A heartbeat stamped up to this far ahead of the program's clock is fresh: the daemon's
 * clock_gettime(CLOCK_MONOTONIC) and bpf_ktime_get_ns() differ by about a millisecond on
 * this VM. Further ahead, the stamp is garbage and counts as stale. */
#define KC_HB_SKEW_NS 50000000ULL

#endif
