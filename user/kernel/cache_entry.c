/* cache_entry.c: rendering and upkeep of kernel hot-key tier entries (see cache_entry.h). */
#include "kernel/cache_entry.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bpf_pin.h"

/* memcached: an exptime above this many seconds is an absolute Unix time */
#define KC_REL_EXPTIME_MAX (60 * 60 * 24 * 30)
#define KC_NSEC		   1000000000ULL

/* What the XDP parser takes as a key byte: everything the daemon's tokenizer keeps in one key
 * except CR (which it strips only at the end of a line). */
static int key_byte_ok(unsigned char c)
{
	return c != ' ' && c != '\r' && c != '\n';
}

int kc_key_init(struct kc_key *k, const void *key, size_t len)
{
	const unsigned char *p = key;

	if (len == 0 || len > KC_KEY_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!key_byte_ok(p[i]))
			return -EINVAL;
	}
	memset(k, 0, sizeof(*k));
	k->len = (__u32)len;
	memcpy(k->data, key, len);
	return 0;
}

__u64 kc_key_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	__u64 h = KC_HASH_INIT;

	for (size_t i = 0; i < len; i += 8) {
		__u64 w = 0;

		/* the host's byte order, as the program loads the words */
		memcpy(&w, p + i, len - i < 8 ? len - i : 8);
		h = kc_hash_word(h, w);
	}
	return kc_hash_final(h, len);
}

__u32 kc_index_buckets(__u32 entries)
{
	__u32 n = 1;

	while (n < entries && n < (1u << 31))
		n <<= 1;
	return n;
}

/* The way of b holding hash, or -1. */
static int way_of(const struct kc_ibucket *b, __u64 hash)
{
	for (int i = 0; i < KC_INDEX_WAYS; i++)
		if (b->way[i].hash == hash)
			return i;
	return -1;
}

int kc_index_put(int fd, __u32 mask, __u64 hash, __u32 slot, __u64 gen, int replace)
{
	__u32 bi = (__u32)hash & mask;
	struct kc_ibucket b;
	int w;

	if (!hash || !(__u32)gen)
		return -EINVAL;
	if (bpf_map_lookup_elem(fd, &bi, &b))
		return -errno;
	w = way_of(&b, hash);
	if (w >= 0 && !replace)
		return -EEXIST;
	if (w < 0)
		w = way_of(&b, 0);
	if (w < 0)
		return -ENOSPC;
	b.way[w] = (struct kc_kref){.hash = hash, .slot = slot, .gen = (__u32)gen};
	return bpf_map_update_elem(fd, &bi, &b, BPF_ANY) ? -errno : 0;
}

/* Reads hash's bucket into b and sets *bi to its index; returns hash's way in it, or -ENOENT. */
static int find(int fd, __u32 mask, __u64 hash, struct kc_ibucket *b, __u32 *bi)
{
	int w;

	*bi = (__u32)hash & mask;
	if (!hash)
		return -ENOENT;
	if (bpf_map_lookup_elem(fd, bi, b))
		return -errno;
	w = way_of(b, hash);
	return w < 0 ? -ENOENT : w;
}

int kc_index_del(int fd, __u32 mask, __u64 hash)
{
	struct kc_ibucket b;
	__u32 bi;
	int w = find(fd, mask, hash, &b, &bi);

	if (w < 0)
		return w;
	memset(&b.way[w], 0, sizeof(b.way[w]));
	return bpf_map_update_elem(fd, &bi, &b, BPF_ANY) ? -errno : 0;
}

int kc_index_get(int fd, __u32 mask, __u64 hash, struct kc_kref *out)
{
	struct kc_ibucket b;
	__u32 bi;
	int w = find(fd, mask, hash, &b, &bi);

	if (w < 0)
		return w;
	*out = b.way[w];
	return 0;
}

__u16 kc_entry_csum(const void *p, size_t len)
{
	const unsigned char *b = p;
	__u64 sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (__u32)(b[i] << 8 | b[i + 1]);
	if (i < len)
		sum += (__u32)b[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

int kc_entry_render(struct kc_kentry *e, const void *key, size_t key_len, __u32 flags,
		    const void *value, size_t value_len, __u64 cas, __u64 expire_ns, __u64 gen)
{
	char num[48], *body;
	int n, err;

	if ((__u32)gen == 0) /* kc_index keeps the low 32 bits, 0 there is "absent" */
		return -EINVAL;
	if (value_len > KC_VALUE_MAX)
		return -E2BIG;
	memset(e, 0, sizeof(*e));
	err = kc_key_init(&e->key, key, key_len);
	if (err)
		return err;
	e->gen = gen;
	e->expire_ns = expire_ns;
	e->value_len = (__u32)value_len;

	/* "VALUE " key " " flags " " bytes: at most 6 + 250 + 22 bytes, within KC_HDR_MAX */
	memcpy(e->reply, "VALUE ", 6);
	memcpy(e->reply + 6, key, key_len);
	n = snprintf(num, sizeof(num), " %" PRIu32 " %zu", flags, value_len);
	if (n < 0 || 6 + key_len + (size_t)n > KC_HDR_MAX)
		return -EINVAL;
	memcpy(e->reply + 6 + key_len, num, (size_t)n);
	e->key_len = (__u16)key_len;
	e->hdr_len = (__u16)(6 + key_len + (size_t)n);

	n = snprintf(num, sizeof(num), " %" PRIu64, (uint64_t)cas);
	if (n < 0 || (size_t)n > KC_CAS_MAX)
		return -EINVAL;
	memcpy(e->cas, num, (size_t)n);
	e->cas_len = (__u16)n;

	/* The body right after the VALUE line: a get's VALUE block is one copy. */
	body = e->reply + e->hdr_len;
	memcpy(body, "\r\n", 2);
	if (value_len)
		memcpy(body + 2, value, value_len);
	memcpy(body + 2 + value_len, "\r\n", 2);
	e->body_len = (__u16)(value_len + 4);

	e->hdr_csum = kc_entry_csum(e->reply, e->hdr_len);
	e->cas_csum = kc_entry_csum(e->cas, e->cas_len);
	e->body_csum = kc_entry_csum(body, e->body_len);
	return 0;
}

__u64 kc_expire_ns(__s64 exptime, __s64 now_unix, __u64 now_mono_ns)
{
	__u64 rel;

	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return 1;
	if (exptime <= KC_REL_EXPTIME_MAX) {
		rel = (__u64)exptime;
	} else {
		if (exptime <= now_unix)
			return 1;
		rel = (__u64)(exptime - now_unix);
	}
	return now_mono_ns + rel * KC_NSEC;
}

static int heartbeat_write(int fd, __u64 ns)
{
	struct kc_heartbeat hb = {.mono_ns = ns};
	__u32 zero = 0;

	return bpf_map_update_elem(fd, &zero, &hb, BPF_ANY) ? -errno : 0;
}

int kc_heartbeat_beat(int heartbeat_fd)
{
	return heartbeat_write(heartbeat_fd, kc_mono_ns());
}

int kc_heartbeat_stop(int heartbeat_fd)
{
	return heartbeat_write(heartbeat_fd, 0);
}

int kc_kstats_read(int stats_fd, struct kc_kstats *out)
{
	struct kc_kstats *per;
	__u32 zero = 0;
	int ncpu, err = 0;

	per = kc_percpu_read(stats_fd, &zero, sizeof(*per), &ncpu, &err);
	if (!per)
		return err;
	memset(out, 0, sizeof(*out));
	for (int c = 0; c < ncpu; c++) {
		out->hits += per[c].hits;
		out->key_hits += per[c].key_hits;
		out->misses += per[c].misses;
		out->expired += per[c].expired;
		out->tx_bytes += per[c].tx_bytes;
		for (int r = 0; r < KC_PASS__MAX; r++)
			out->pass[r] += per[c].pass[r];
	}
	free(per);
	return 0;
}

static const char *const pass_names[KC_PASS__MAX] = {
    [KC_PASS_NOT_IP] = "not_ip",
    [KC_PASS_MALFORMED] = "malformed",
    [KC_PASS_IP_OPTIONS] = "ip_options",
    [KC_PASS_FRAGMENT] = "fragment",
    [KC_PASS_NOT_UDP] = "not_udp",
    [KC_PASS_WRONG_PORT] = "wrong_port",
    [KC_PASS_NOT_UNICAST] = "not_unicast",
    [KC_PASS_STALE] = "stale_heartbeat",
    [KC_PASS_FRAME_HDR] = "frame_header",
    [KC_PASS_NOT_GET] = "not_get",
    [KC_PASS_PARSE] = "parse",
    [KC_PASS_TOO_MANY_KEYS] = "too_many_keys",
    [KC_PASS_MISS] = "miss",
    [KC_PASS_TOO_BIG] = "too_big",
    [KC_PASS_NO_ROOM] = "no_room",
    [KC_PASS_WRONG_ADDR] = "wrong_addr",
};

const char *kc_pass_reason_name(unsigned int reason)
{
	if (reason >= KC_PASS__MAX || !pass_names[reason])
		return "unknown";
	return pass_names[reason];
}
