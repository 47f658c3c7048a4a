/* hex.h: lowercase hexadecimal, the one encoder and decoder every job uses (store addresses,
 * SigV4 signatures, the audit chain's MACs). No state, no locks. */
#ifndef KC_HEX_H
#define KC_HEX_H

#include <stddef.h>

/* Writes the n bytes of in as 2n lowercase hex digits and a NUL at out (2n + 1 bytes). */
void kc_hex_encode(const void *in, size_t n, char *out);

/* Reads exactly 2n hex digits at s into n bytes at out. Lowercase only (what kc_hex_encode
 * writes): 'A'-'F' and any other byte are refused. Returns 0, or -EINVAL with out partly
 * written. s need not be NUL-terminated. */
int kc_hex_decode(const char *s, size_t n, void *out);

/* SHA-256 of n bytes at data, as 64 hex digits and a NUL at out. */
void kc_sha256_hex(const void *data, size_t n, char out[65]);

#endif
