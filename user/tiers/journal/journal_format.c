/* journal_format.c: encoding and parsing of journal records (layout in docs/journal.md).
 * Integers are little-endian; the header carries a checksum of itself, so that a length is
 * trusted before a payload is read, and one of the payload (both XXH3-64).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <xxhash.h>

#include "tiers/journal/journal.h"
#include "tiers/journal/journal_format.h"
#include "core/log.h"

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static int payload_len(uint8_t type)
{
	switch (type) {
	case KC_JR_ACK:
	case KC_JR_DEAD:
	case KC_JR_REPLAY:
		return 0;
	case KC_JR_FAIL:
		return 4;
	default:
		return -1; /* variable */
	}
}

static int check_write(const unsigned char *p, struct kc_jview *v, char *err, size_t errlen)
{
	v->op = p[0];
	v->attempts = get32(p + 4);
	v->ver = get64(p + 8);
	if (p[1] || p[2] || p[3]) {
		kc_errf(err, errlen, "nonzero padding");
		return -EBADMSG;
	}
	if (v->op != KC_JSET && v->op != KC_JDEL) {
		kc_errf(err, errlen, "unknown op %u", v->op);
		return -EBADMSG;
	}
	if (v->nkey == 0 || v->nkey > KC_JKEY_MAX) {
		kc_errf(err, errlen, "key length %u outside 1..%u", v->nkey, KC_JKEY_MAX);
		return -EBADMSG;
	}
	if (v->nblob > KC_JBLOB_MAX) {
		kc_errf(err, errlen, "blob length %u above %u", v->nblob, KC_JBLOB_MAX);
		return -EBADMSG;
	}
	return 0;
}

static int parse_payload(const unsigned char *p, uint32_t len, struct kc_jview *v, char *err,
			 size_t errlen)
{
	uint64_t want;
	int fixed = payload_len(v->type);

	if (fixed >= 0) {
		if (len != (uint32_t)fixed) {
			kc_errf(err, errlen, "type %u with %u payload bytes, not %d", v->type, len,
				fixed);
			return -EBADMSG;
		}
		if (v->type == KC_JR_FAIL)
			v->attempts = get32(p);
		return 0;
	}
	if (v->type == KC_JR_APPEND) {
		if (len < KC_JR_APPEND_FIXED) {
			kc_errf(err, errlen, "APPEND payload of %u bytes", len);
			return -EBADMSG;
		}
		v->nkey = get32(p + 16);
		v->nblob = get32(p + 20);
		want = (uint64_t)KC_JR_APPEND_FIXED + v->nkey + v->nblob;
	} else {
		if (len < KC_JR_LETTER_FIXED) {
			kc_errf(err, errlen, "LETTER payload of %u bytes", len);
			return -EBADMSG;
		}
		v->when = (int64_t)get64(p + 16);
		v->nkey = get32(p + 24);
		v->nblob = get32(p + 28);
		v->nwhy = get32(p + 32);
		if (get32(p + 36)) {
			kc_errf(err, errlen, "nonzero padding");
			return -EBADMSG;
		}
		if (v->nwhy > KC_JR_WHY_MAX) {
			kc_errf(err, errlen, "reason of %u bytes", v->nwhy);
			return -EBADMSG;
		}
		want = (uint64_t)KC_JR_LETTER_FIXED + v->nkey + v->nblob + v->nwhy;
	}
	if (want != len) {
		kc_errf(err, errlen, "payload of %u bytes, its fields say %llu", len,
			(unsigned long long)want);
		return -EBADMSG;
	}
	if (check_write(p, v, err, errlen)) /* op, attempts, ver: the first 16 bytes of both */
		return -EBADMSG;
	p += v->type == KC_JR_APPEND ? KC_JR_APPEND_FIXED : KC_JR_LETTER_FIXED;
	v->key = (const char *)p;
	v->blob = (const char *)p + v->nkey;
	v->why = v->type == KC_JR_LETTER ? (const char *)p + v->nkey + v->nblob : NULL;
	return 0;
}

ssize_t kc_journal_parse_record(const void *buf, size_t n, struct kc_jview *v, char *err,
				size_t errlen)
{
	const unsigned char *p = buf;
	uint32_t len;

	memset(v, 0, sizeof(*v));
	if (n < KC_JR_HDR)
		return 0;
	if (get32(p) != KC_JR_MAGIC) {
		kc_errf(err, errlen, "bad magic %08x", get32(p));
		return -EBADMSG;
	}
	if ((uint32_t)XXH3_64bits(p, 20) != get32(p + 20)) {
		kc_errf(err, errlen, "header checksum mismatch");
		return -EBADMSG;
	}
	v->type = p[4];
	v->id = get64(p + 8);
	len = get32(p + 16);
	if (p[5] || p[6] || p[7]) {
		kc_errf(err, errlen, "nonzero header padding");
		return -EBADMSG;
	}
	if (v->type < KC_JR_APPEND || v->type > KC_JR_REPLAY) {
		kc_errf(err, errlen, "unknown record type %u", v->type);
		return -EBADMSG;
	}
	if (v->id == 0) {
		kc_errf(err, errlen, "record id 0");
		return -EBADMSG;
	}
	if (len > KC_JR_PAYLOAD_MAX) {
		kc_errf(err, errlen, "payload length %u above %u", len, KC_JR_PAYLOAD_MAX);
		return -EBADMSG;
	}
	if (n - KC_JR_HDR < len)
		return 0;
	if (XXH3_64bits(p + KC_JR_HDR, len) != get64(p + 24)) {
		kc_errf(err, errlen, "payload checksum mismatch");
		return -EBADMSG;
	}
	if (parse_payload(p + KC_JR_HDR, len, v, err, errlen))
		return -EBADMSG;
	return (ssize_t)(KC_JR_HDR + len);
}

int kc_journal_put_record(struct kc_buf *b, const struct kc_jview *v)
{
	uint64_t len = 0;
	uint32_t nwhy = 0;
	unsigned char *h, *p;
	size_t off;
	int fixed = payload_len(v->type);

	if (v->type < KC_JR_APPEND || v->type > KC_JR_REPLAY || v->id == 0)
		return -EINVAL;
	if (fixed < 0) {
		if (v->nkey == 0 || v->nkey > KC_JKEY_MAX || v->nblob > KC_JBLOB_MAX ||
		    (v->op != KC_JSET && v->op != KC_JDEL))
			return -EINVAL;
		if (v->type == KC_JR_LETTER && v->why)
			nwhy = v->nwhy > KC_JR_WHY_MAX ? KC_JR_WHY_MAX : v->nwhy;
		len = (v->type == KC_JR_APPEND ? KC_JR_APPEND_FIXED : KC_JR_LETTER_FIXED) +
		      (uint64_t)v->nkey + v->nblob + nwhy;
	} else {
		len = (uint64_t)fixed;
	}
	if (kc_buf_reserve(b, KC_JR_HDR + len))
		return -ENOMEM;
	h = (unsigned char *)b->data + b->len;
	p = h + KC_JR_HDR;
	off = fixed >= 0		? (size_t)fixed
	      : v->type == KC_JR_APPEND ? KC_JR_APPEND_FIXED
					: KC_JR_LETTER_FIXED;
	memset(h, 0, KC_JR_HDR + off); /* header and fixed fields: padding stays zero */
	if (v->type == KC_JR_FAIL)
		put32(p, v->attempts);
	if (fixed < 0) {
		p[0] = v->op;
		put32(p + 4, v->attempts);
		put64(p + 8, v->ver);
		if (v->type == KC_JR_APPEND) {
			put32(p + 16, v->nkey);
			put32(p + 20, v->nblob);
		} else {
			put64(p + 16, (uint64_t)v->when);
			put32(p + 24, v->nkey);
			put32(p + 28, v->nblob);
			put32(p + 32, nwhy);
		}
		memcpy(p + off, v->key, v->nkey);
		if (v->nblob)
			memcpy(p + off + v->nkey, v->blob, v->nblob);
		if (nwhy)
			memcpy(p + off + v->nkey + v->nblob, v->why, nwhy);
	}
	put32(h, KC_JR_MAGIC);
	h[4] = v->type;
	put64(h + 8, v->id);
	put32(h + 16, (uint32_t)len);
	put32(h + 20, (uint32_t)XXH3_64bits(h, 20));
	put64(h + 24, XXH3_64bits(p, len));
	b->len += KC_JR_HDR + len;
	return 0;
}

size_t kc_journal_resync(const void *buf, size_t n, size_t off)
{
	const unsigned char *p = buf;
	size_t from = off + 1;
	struct kc_jview v;
	char why[8];

	if (off >= n)
		return n;
	/* A sound header still knows its record's length: skip the record whole, so that bytes
	 * inside its payload (a client's value) are never taken for records. */
	if (n - off >= KC_JR_HDR && get32(p + off) == KC_JR_MAGIC &&
	    (uint32_t)XXH3_64bits(p + off, 20) == get32(p + off + 20) &&
	    get32(p + off + 16) <= n - off - KC_JR_HDR)
		from = off + KC_JR_HDR + get32(p + off + 16);
	for (; from + KC_JR_HDR <= n; from++)
		if (get32(p + from) == KC_JR_MAGIC &&
		    kc_journal_parse_record(p + from, n - from, &v, why, sizeof(why)) > 0)
			return from;
	return n;
}
