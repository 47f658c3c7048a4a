/* store_s3url.c: parsing s3://bucket/prefix?endpoint=...&region=...&path_style=..&insecure=..
 * into struct kc_s3_url (store_int.h). Separate from the requests (store_s3.c) so that every
 * malformed spec is tested without a network. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/num.h"
#include "core/pct.h"
#include "tiers/store/store_int.h"

#define PFX "store: s3 URL: "

/* Percent-decodes in[0..n) into out (outlen bytes with the NUL). */
static int pct_decode(const char *in, size_t n, char *out, size_t outlen, const char *what,
		      char *err, size_t errlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (c == '%') {
			int v = kc_pct_escape(in, n, i);

			if (v < 0) {
				kc_errf(err, errlen, PFX "%s: bad %%-escape", what);
				return -EINVAL;
			}
			c = (char)v;
			i += 2;
		}
		if ((unsigned char)c < 0x20 || c == 0x7f) {
			kc_errf(err, errlen, PFX "%s: control character", what);
			return -EINVAL;
		}
		if (o + 1 >= outlen) {
			kc_errf(err, errlen, PFX "%s: longer than %zu bytes", what, outlen - 1);
			return -EINVAL;
		}
		out[o++] = c;
	}
	out[o] = 0;
	return 0;
}

/* Bucket names as S3 allows them: 3..63 of [a-z0-9.-], a letter or digit at each end. */
static int check_bucket(const char *b, char *err, size_t errlen)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63) {
		kc_errf(err, errlen, PFX "bucket \"%s\": must be 3 to 63 characters", b);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && ((c != '-' && c != '.') || i == 0 || i == n - 1)) {
			kc_errf(err, errlen,
				PFX "bucket \"%s\": only a-z, 0-9, '-' and '.' (not at either end)",
				b);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_bool(const char *name, const char *v, bool *out, char *err, size_t errlen)
{
	if (!strcmp(v, "1") || !strcmp(v, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "0") || !strcmp(v, "false")) {
		*out = false;
		return 0;
	}
	kc_errf(err, errlen, PFX "%s=%s: expected 0, 1, true or false", name, v);
	return -EINVAL;
}

/* scheme://host[:port] with nothing after but an optional '/'. */
static int check_endpoint(char *e, char *err, size_t errlen)
{
	char *host, *end;
	size_t n;

	if (!strncmp(e, "http://", 7))
		host = e + 7;
	else if (!strncmp(e, "https://", 8))
		host = e + 8;
	else {
		kc_errf(err, errlen, PFX "endpoint \"%s\": must start with http:// or https://", e);
		return -EINVAL;
	}
	n = strlen(e);
	if (n && e[n - 1] == '/')
		e[--n] = 0;
	end = host + strcspn(host, "/?#@ ");
	if (*end) {
		kc_errf(err, errlen, PFX "endpoint \"%s\": only scheme://host[:port] is allowed",
			e);
		return -EINVAL;
	}
	if (host == end || *host == ':') {
		kc_errf(err, errlen, PFX "endpoint \"%s\": missing host", e);
		return -EINVAL;
	}
	char *colon = strrchr(host, ':');

	if (colon && !strchr(colon, ']')) {
		uint64_t port;

		if (kc_parse_u64(colon + 1, 65535, &port) || port == 0) {
			kc_errf(err, errlen, PFX "endpoint \"%s\": bad port", e);
			return -EINVAL;
		}
	}
	return 0;
}

static int set_option(struct kc_s3_url *u, const char *name, const char *val, unsigned *seen,
		      char *err, size_t errlen)
{
	static const char *const names[] = {"endpoint", "region", "path_style", "insecure"};
	int i;

	for (i = 0; i < 4 && strcmp(name, names[i]); i++)
		;
	if (i == 4) {
		kc_errf(err, errlen,
			PFX "unknown option \"%s\" (endpoint, region, path_style, insecure)", name);
		return -EINVAL;
	}
	if (*seen & 1u << i) {
		kc_errf(err, errlen, PFX "option \"%s\" given twice", name);
		return -EINVAL;
	}
	*seen |= 1u << i;
	switch (i) {
	case 0:
		if (pct_decode(val, strlen(val), u->endpoint, sizeof(u->endpoint), "endpoint", err,
			       errlen))
			return -EINVAL;
		return check_endpoint(u->endpoint, err, errlen);
	case 1:
		if (!*val || strlen(val) >= sizeof(u->region) ||
		    strspn(val, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(val)) {
			kc_errf(err, errlen, PFX "region \"%s\": expected a name like us-east-1",
				val);
			return -EINVAL;
		}
		strcpy(u->region, val);
		return 0;
	case 2:
		return parse_bool(name, val, &u->path_style, err, errlen);
	default:
		return parse_bool(name, val, &u->insecure, err, errlen);
	}
}

int kc_s3_url_parse(const char *url, struct kc_s3_url *u, char *err, size_t errlen)
{
	const char *p, *q, *env;
	char opts[1024], *save = NULL, *tok;
	unsigned seen = 0;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "s3://", 5)) {
		kc_errf(err, errlen, PFX "\"%s\" does not start with s3://", url);
		return -EINVAL;
	}
	p = url + 5;
	n = strcspn(p, "/?");
	if (n == 0) {
		kc_errf(err, errlen, PFX "missing bucket (s3://bucket/prefix)");
		return -EINVAL;
	}
	if (n >= sizeof(u->bucket)) {
		kc_errf(err, errlen, PFX "bucket name longer than 63 characters");
		return -EINVAL;
	}
	memcpy(u->bucket, p, n);
	if (check_bucket(u->bucket, err, errlen))
		return -EINVAL;
	p += n;
	q = strchr(p, '?');
	if (*p == '/') {
		p++;
		n = q ? (size_t)(q - p) : strlen(p);
		if (pct_decode(p, n, u->prefix, sizeof(u->prefix) - 1, "prefix", err, errlen))
			return -EINVAL;
		n = strlen(u->prefix);
		if (n && u->prefix[n - 1] != '/')
			strcat(u->prefix, "/");
	}
	if (q) {
		if (strlen(q + 1) >= sizeof(opts)) {
			kc_errf(err, errlen, PFX "options longer than %zu bytes", sizeof(opts) - 1);
			return -EINVAL;
		}
		strcpy(opts, q + 1);
		for (tok = strtok_r(opts, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(tok, '=');

			if (!eq) {
				kc_errf(err, errlen, PFX "option \"%s\" has no value (name=value)",
					tok);
				return -EINVAL;
			}
			*eq = 0;
			if (set_option(u, tok, eq + 1, &seen, err, errlen))
				return -EINVAL;
		}
	}
	if (!(seen & 4u)) /* path-style by default for custom endpoints (MinIO, s3rver...) */
		u->path_style = u->endpoint[0] != 0;
	if (!u->region[0]) {
		env = getenv("AWS_REGION");
		if (!env || !*env)
			env = getenv("AWS_DEFAULT_REGION");
		if (!env || !*env || strlen(env) >= sizeof(u->region))
			env = "us-east-1";
		strcpy(u->region, env);
	}
	if (!u->endpoint[0] && !u->path_style && strchr(u->bucket, '.')) {
		kc_errf(err, errlen,
			PFX "bucket \"%s\" has a '.', which TLS virtual-host names cannot carry: "
			    "add path_style=1",
			u->bucket);
		return -EINVAL;
	}
	return 0;
}
