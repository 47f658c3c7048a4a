/* fuzz_journal.c: libFuzzer target for the journal's record parser
 * (user/tiers/journal/journal_format.c), walking the input as a segment or dead.log is walked at
 * open: once as given, and once with each record's checksums made right first, so that mutations
 * reach the field checks behind them. A bad record is stepped over as the loader does
 * (kc_journal_resync). Invariants: a record's size never exceeds what was given; the resync point
 * is the first valid record behind the bad one (or the end); every pointer in a parsed record lies
 * inside it; a refusal has a reason; and a parsed record encodes back to exactly the same bytes
 * (the format has no two spellings, so a record cannot mean one thing to the parser and another to
 * the writer). */
#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "tiers/journal/journal_format.h"

static int inside(const char *p, size_t n, const uint8_t *buf, size_t len)
{
	return (const uint8_t *)p >= buf && (const uint8_t *)p + n <= buf + len;
}

/* Sets the checksums of the record at p, as far as its bytes go. */
static void fix(uint8_t *p, size_t n)
{
	uint32_t len, h;
	uint64_t s;

	if (n < KC_JR_HDR)
		return;
	memcpy(&len, p + 16, 4);
	len = le32toh(len);
	h = htole32((uint32_t)XXH3_64bits(p, 20));
	memcpy(p + 20, &h, 4);
	if (len <= n - KC_JR_HDR) {
		s = htole64(XXH3_64bits(p + KC_JR_HDR, len));
		memcpy(p + 24, &s, 8);
	}
}

/* The resync point is past off, no further than size, and the first place where a whole valid
 * record starts, when the search went byte by byte (a sound header makes it start behind that
 * record's payload instead). */
static void check_resync(const uint8_t *data, size_t size, size_t off, size_t next)
{
	struct kc_jview v;
	char err[160];
	size_t from = off + 1;
	uint32_t len, magic, h;

	if (next <= off || next > size)
		__builtin_trap();
	if (next < size &&
	    kc_journal_parse_record(data + next, size - next, &v, err, sizeof(err)) <= 0)
		__builtin_trap();
	if (size - off >= KC_JR_HDR) {
		memcpy(&magic, data + off, 4);
		memcpy(&h, data + off + 20, 4);
		memcpy(&len, data + off + 16, 4);
		len = le32toh(len);
		if (le32toh(magic) == KC_JR_MAGIC &&
		    le32toh(h) == (uint32_t)XXH3_64bits(data + off, 20) &&
		    len <= size - off - KC_JR_HDR)
			from = off + KC_JR_HDR + len; /* a sound header: its payload is skipped */
	}
	if (next < from && next != size)
		__builtin_trap();
	for (size_t p = from; p < next && p + KC_JR_HDR <= size; p++)
		if (kc_journal_parse_record(data + p, size - p, &v, err, sizeof(err)) > 0)
			__builtin_trap();
}

static void walk(uint8_t *data, size_t size, int fixing)
{
	static struct kc_buf b;
	size_t off = 0;

	while (off < size) {
		struct kc_jview v;
		char err[160] = "";
		ssize_t r;

		if (fixing)
			fix(data + off, size - off);
		r = kc_journal_parse_record(data + off, size - off, &v, err, sizeof(err));

		if (r < 0 && !err[0])
			__builtin_trap();
		if (r <= 0) { /* torn or bad: the loader resynchronises, so do we */
			size_t next = kc_journal_resync(data, size, off);

			check_resync(data, size, off, next);
			off = next;
			continue;
		}
		if ((size_t)r > size - off)
			__builtin_trap();
		if (v.type == KC_JR_APPEND || v.type == KC_JR_LETTER) {
			if (!inside(v.key, v.nkey, data + off, (size_t)r) ||
			    !inside(v.blob, v.nblob, data + off, (size_t)r) ||
			    (v.why && !inside(v.why, v.nwhy, data + off, (size_t)r)))
				__builtin_trap();
		}
		b.len = b.off = 0;
		if (kc_journal_put_record(&b, &v) || b.len != (size_t)r ||
		    memcmp(b.data, data + off, (size_t)r))
			__builtin_trap();
		off += (size_t)r;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	walk(copy, size, 0);
	memcpy(copy, data, size);
	walk(copy, size, 1);
	free(copy);
	return 0;
}
