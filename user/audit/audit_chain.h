/* audit_chain.h: the audit stream's tamper evidence: every record is one JSON line
 *
 *   {"v":1,"seq":N,"prev":"<64 hex>",<the record's own members>,"mac":"<64 hex>"}
 *
 * where mac = HMAC-SHA-256(key, prev_mac (32 raw bytes) || canonical bytes) and the canonical
 * bytes are the line's bytes from its '{' up to (not including) ',"mac":"'. prev is the mac
 * of record N-1 (all zeros before the first record of a chain). Each output (file, stdout,
 * Redis stream) carries its own chain; a file's chain continues across rotations and restarts.
 * Producers must never reformat a line: the bytes are the record.
 *
 * Not thread-safe: one chain belongs to one sink thread.
 */
#ifndef KC_AUDIT_CHAIN_H
#define KC_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define KC_AUDIT_MAC_LEN 32
#define KC_AUDIT_KEY_MIN 32   /* bytes; shorter keys are refused */
#define KC_AUDIT_KEY_MAX 1024 /* bytes read from the key file */

struct kc_audit_key {
	unsigned char k[KC_AUDIT_KEY_MAX];
	size_t len;
};

struct kc_audit_chain {
	uint64_t seq; /* of the last record sealed, 0 before the first */
	unsigned char prev[KC_AUDIT_MAC_LEN];
	const struct kc_audit_key *key;
};

/* Reads a key file: it must be a regular file no one but its owner can read or write (mode
 * 0600 or stricter) and hold at least KC_AUDIT_KEY_MIN bytes (used as they are, a trailing
 * newline included). Returns 0, or -errno with a message in err. */
int kc_audit_key_load(const char *path, struct kc_audit_key *key, char *err, size_t errlen);

/* Appends one sealed line (with '\n') to out: seq = chain->seq + 1, prev = chain->prev, then
 * members (the record's own `"name":value,...` text, no braces), then the mac. Advances the
 * chain only via kc_audit_chain_commit(), so that a record the sink could not write leaves
 * the chain as it was. Returns 0 or -ENOMEM. mac receives the new mac. */
int kc_audit_chain_seal(const struct kc_audit_chain *c, const char *members, size_t len,
			struct kc_buf *out, unsigned char mac[KC_AUDIT_MAC_LEN]);
void kc_audit_chain_commit(struct kc_audit_chain *c, const unsigned char mac[KC_AUDIT_MAC_LEN]);

/* Parses a sealed line (no trailing newline needed): its seq, prev and mac, and whether the
 * mac is right for key. Returns 0 if the line has the chain's shape (whatever the mac), or
 * -EINVAL. *canon_len receives the length of the canonical bytes. */
int kc_audit_chain_parse(const char *line, size_t len, uint64_t *seq,
			 unsigned char prev[KC_AUDIT_MAC_LEN], unsigned char mac[KC_AUDIT_MAC_LEN],
			 size_t *canon_len);
bool kc_audit_chain_mac_ok(const struct kc_audit_key *key, const char *line, size_t canon_len,
			   const unsigned char prev[KC_AUDIT_MAC_LEN],
			   const unsigned char mac[KC_AUDIT_MAC_LEN]);

/* Restores a chain from the last complete line of a file (a restart or rotation continues
 * the chain). Returns 0 (c->seq = 0 when the file is missing or empty), or -EINVAL when
 * its last line is not a chain record. */
int kc_audit_chain_resume(struct kc_audit_chain *c, const char *path);

/* kcachectl audit verify: checks the files (rotated files in any order; a file whose name
 * ends in ".checkpoint" is an anchor, the latest checkpoint record the daemon kept beside
 * the log, which the chain must reach). Writes a report to out ("OK: N records, seq A..B" or
 * "FAIL: seq N: reason"). Returns 0 when the chain is intact, 1 at the first bad record,
 * or -errno (unreadable key or file) with a message in err. */
int kc_audit_verify(const char *keyfile, char **files, int nfiles, char *out, size_t outlen,
		    char *err, size_t errlen);

#endif
