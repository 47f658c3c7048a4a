/* sigv4.h: AWS Signature Version 4 for the S3 backend (user/tiers/store/store_s3.c): the canonical
 * request, the string to sign and the Authorization header, with OpenSSL's SHA-256 and HMAC-SHA256.
 * Pure functions: no I/O, no clock (the caller passes the date), so they are tested on AWS's
 * published examples. */
#ifndef KC_SIGV4_H
#define KC_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* A signed header: name in lowercase, value trimmed. */
struct kc_sigv4_hdr {
	const char *name, *value;
};

struct kc_sigv4 {
	const char *method; /* "GET", "PUT", ... */
	const char *path;   /* the canonical URI, already encoded: kc_uri_encode(..., true) */
	const char *query;  /* the canonical query string, sorted and encoded; "" for none */
	/* Sorted by name; must hold host, x-amz-content-sha256 and x-amz-date (and
	 * x-amz-security-token with temporary credentials). */
	const struct kc_sigv4_hdr *hdrs;
	size_t nhdrs;
	const char *payload_hash; /* hex SHA-256 of the body, as sent in x-amz-content-sha256 */
	const char *amz_date;	  /* "YYYYMMDDTHHMMSSZ", as sent in x-amz-date */
	const char *region, *service, *access_key, *secret_key;
};

/* Writes the value of the Authorization header into out. Returns 0, or -ENOSPC when out or the
 * internal canonical-request buffer is too small, or -EIO when OpenSSL fails. */
int kc_sigv4_authorization(const struct kc_sigv4 *r, char *out, size_t outlen);

/* Lowercase hex SHA-256 of data. */

/* The x-amz-date form of t: "YYYYMMDDTHHMMSSZ" (UTC). */
void kc_amz_date(time_t t, char out[17]);

/* URI-encodes in[0..n) the way SigV4 wants: every byte except A-Z a-z 0-9 - . _ ~ (and '/'
 * when keep_slash) as %XX in uppercase hex. Returns the length written (NUL excluded), or
 * (size_t)-1 when out is too small. */
size_t kc_uri_encode(const char *in, size_t n, bool keep_slash, char *out, size_t outlen);

#endif
