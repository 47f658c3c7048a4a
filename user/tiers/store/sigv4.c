/* sigv4.c: AWS Signature Version 4 (see sigv4.h): canonical request -> string to sign ->
 * signing key (HMAC chain over date, region, service) -> signature. */
#include "tiers/store/sigv4.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/hex.h"

void kc_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

size_t kc_uri_encode(const char *in, size_t n, bool keep_slash, char *out, size_t outlen)
{
	static const char d[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
			     c == '~' || (keep_slash && c == '/');

		if (o + (plain ? 1 : 3) >= outlen)
			return (size_t)-1;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = d[c >> 4];
			out[o++] = d[c & 15];
		}
	}
	if (o >= outlen)
		return (size_t)-1;
	out[o] = 0;
	return o;
}

struct sb {
	char *p;
	size_t len, cap;
	bool over;
};

__attribute__((format(printf, 2, 3))) static void sb_add(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len)
		b->over = true;
	else
		b->len += (size_t)n;
}

/* out may be key: each step of the signing-key chain keys the next with the last result. */
static int hmac(const void *key, size_t nkey, const char *msg, unsigned char out[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = sizeof(md);

	if (!HMAC(EVP_sha256(), key, (int)nkey, (const unsigned char *)msg, strlen(msg), md, &n) ||
	    n != 32)
		return -EIO;
	memcpy(out, md, 32);
	return 0;
}

int kc_sigv4_authorization(const struct kc_sigv4 *r, char *out, size_t outlen)
{
	char creq[8192], sts[512], signed_hdrs[512], creq_hash[65], date[9], kbuf[128], sig[65];
	struct sb c = {creq, 0, sizeof(creq), false},
		  sh = {signed_hdrs, 0, sizeof(signed_hdrs), false};
	unsigned char k[32];
	int n;

	for (size_t i = 0; i < r->nhdrs; i++)
		sb_add(&sh, "%s%s", i ? ";" : "", r->hdrs[i].name);
	sb_add(&c, "%s\n%s\n%s\n", r->method, r->path, r->query);
	for (size_t i = 0; i < r->nhdrs; i++)
		sb_add(&c, "%s:%s\n", r->hdrs[i].name, r->hdrs[i].value);
	sb_add(&c, "\n%s\n%s", signed_hdrs, r->payload_hash);
	if (c.over || sh.over)
		return -ENOSPC;
	kc_sha256_hex(creq, c.len, creq_hash);

	memcpy(date, r->amz_date, 8);
	date[8] = 0;
	n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
		     r->amz_date, date, r->region, r->service, creq_hash);
	if (n < 0 || (size_t)n >= sizeof(sts))
		return -ENOSPC;
	n = snprintf(kbuf, sizeof(kbuf), "AWS4%s", r->secret_key);
	if (n < 0 || (size_t)n >= sizeof(kbuf))
		return -ENOSPC;
	if (hmac(kbuf, (size_t)n, date, k) || hmac(k, 32, r->region, k) ||
	    hmac(k, 32, r->service, k) || hmac(k, 32, "aws4_request", k) || hmac(k, 32, sts, k))
		return -EIO;
	OPENSSL_cleanse(kbuf, sizeof(kbuf));
	kc_hex_encode(k, 32, sig);
	n = snprintf(out, outlen,
		     "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request,SignedHeaders=%s,"
		     "Signature=%s",
		     r->access_key, date, r->region, r->service, signed_hdrs, sig);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}
