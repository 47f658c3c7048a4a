/* base64.h: standard base64 (RFC 4648 alphabet, '=' padding), as memcached's meta protocol uses
 * it for binary keys (the b flag). No state, no locks. */
#ifndef KC_BASE64_H
#define KC_BASE64_H

#include <stddef.h>

/* Bytes kc_base64_encode writes for n input bytes (no NUL). */
#define KC_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* Writes the n bytes of in as KC_BASE64_LEN(n) base64 characters at out (no NUL); returns
 * that length. */
size_t kc_base64_encode(const void *in, size_t n, char *out);

/* Decodes the n characters at s (a multiple of 4, padded) into out, which holds at least
 * n / 4 * 3 bytes; out may be s itself. Returns the decoded length, or 0 if s is empty or not
 * valid base64 (out may then be partly written). */
size_t kc_base64_decode(const char *s, size_t n, void *out);

#endif
