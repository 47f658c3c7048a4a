/* num.h: the one decimal number parser, on the model of memcached's safe_strtoull but stricter:
 * 1 to 20 ASCII digits and nothing else (no sign, no space before or after, no "0x"), leading
 * zeros allowed within the 20. Used by the config, both policy files, the memcached protocol, the
 * memory tier's incr/decr, the Redis URL and Sentinel replies, and the journal's segment names.
 * A caller with a narrower rule (a prefix length of at most 3 digits) checks it before calling.
 * No state, no locks. */
#ifndef KC_NUM_H
#define KC_NUM_H

#include <stddef.h>
#include <stdint.h>

/* Parses the n bytes at s (no NUL needed) as a decimal number of at most max into *out.
 * Returns 0; -EINVAL when n is 0 or a byte is not a digit; -ERANGE when there are more than 20
 * digits or the value exceeds max (or UINT64_MAX). *out is written only on success. */
int kc_parse_u64n(const char *s, size_t n, uint64_t max, uint64_t *out);

/* kc_parse_u64n over the NUL-terminated string s. */
int kc_parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
