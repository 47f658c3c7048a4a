/* journal_format.h: the journal's record format (docs/journal.md): how records are encoded, and
 * a parser that trusts none of the bytes it is given, shared by the journal and its fuzz target
 * (tests/fuzz/fuzz_journal.c). No I/O and no state here.
 */
#ifndef KC_JOURNAL_FORMAT_H
#define KC_JOURNAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "tiers/journal/journal.h"

#define KC_JR_MAGIC	   0x314a434bu /* "KCJ1" as little-endian bytes */
#define KC_JR_HDR	   32	       /* header bytes before the payload */
#define KC_JR_APPEND_FIXED 24	       /* APPEND payload before key and blob */
#define KC_JR_LETTER_FIXED 40	       /* LETTER payload before key, blob and why */
#define KC_JR_WHY_MAX	   127
/* No valid payload is larger: a LETTER of the largest key, blob and reason. */
#define KC_JR_PAYLOAD_MAX (KC_JR_LETTER_FIXED + KC_JKEY_MAX + KC_JBLOB_MAX + KC_JR_WHY_MAX)

enum kc_jrtype {
	KC_JR_APPEND = 1, /* segment: a write (id, op, ver, attempts, key, blob) */
	KC_JR_ACK = 2,	  /* segment: entry id flushed or superseded */
	KC_JR_FAIL = 3,	  /* segment: entry id failed, attempts so far */
	KC_JR_DEAD = 4,	  /* segment: entry id became a dead letter (its LETTER is in dead.log) */
	KC_JR_LETTER = 5, /* dead.log: a dead letter, the whole write and why */
	KC_JR_REPLAY = 6, /* dead.log: dead letter id left (replayed or superseded) */
};

/* A parsed record; pointers point into the parsed buffer. Fields a type lacks are zero. */
struct kc_jview {
	uint8_t type;
	uint64_t id;
	uint8_t op;
	uint32_t attempts;
	uint64_t ver;
	int64_t when;
	const char *key, *blob, *why;
	uint32_t nkey, nblob, nwhy;
};

/* Parses the record at the start of buf[0..n). Returns its size (> 0) with *v filled; 0 when buf
 * is shorter than a header, or holds a valid header whose payload goes past n (a torn record when
 * buf ends at end of file); -EBADMSG with the reason in err when the bytes are no valid record. */
ssize_t kc_journal_parse_record(const void *buf, size_t n, struct kc_jview *v, char *err,
				size_t errlen);

/* Where reading may go on after the bad or torn record at buf[off]: the offset of the next
 * valid record (one that kc_journal_parse_record() takes whole), or n when none follows. When
 * the header at off is sound (its checksum covers the length) the search starts behind its
 * payload, which is never looked into: a value's bytes cannot pass for records there. */
size_t kc_journal_resync(const void *buf, size_t n, size_t off);

/* Appends one encoded record of v->type for v->id (and the fields its type carries) to b.
 * v->key must be 1..KC_JKEY_MAX bytes for APPEND and LETTER; a why longer than KC_JR_WHY_MAX
 * is cut. Returns 0, -EINVAL for a record the parser would refuse, or -ENOMEM. */
int kc_journal_put_record(struct kc_buf *b, const struct kc_jview *v);

/* Bytes kc_journal_put_record() appends for an APPEND of these sizes. */
static inline size_t kc_journal_append_size(size_t nkey, size_t nblob)
{
	return KC_JR_HDR + KC_JR_APPEND_FIXED + nkey + nblob;
}

#endif
