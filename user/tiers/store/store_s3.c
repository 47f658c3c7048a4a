/* store_s3.c: the object store in S3 (or anything that speaks its API: MinIO, s3rver, ...):
 * PUT, GET, DELETE (after a HEAD, to tell a miss) of one object per key, signed with AWS
 * Signature V4 (sigv4.c), over libcurl easy handles kept in a small pool. The objects have the
 * same checksummed format as the directory backend. The URL is parsed by store_s3url.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "core/hex.h"
#include "core/log.h"
#include "tiers/store/sigv4.h"
#include "tiers/store/store_int.h"

#define POOL	 8
#define BODY_MAX (1ULL << 30) /* a response larger than this is refused */

struct s3_store {
	struct kc_store base;
	struct kc_s3_url u;
	char *access, *secret, *token;
	uint32_t timeout_ms;
	char host[600];	    /* the Host header, as signed */
	char base_url[620]; /* scheme://host */
	char root[700];	    /* "/bucket/" + encoded prefix (path style), or "/" + prefix */
	pthread_mutex_t mu; /* pool */
	CURL *pool[POOL];
	int npool;
};

struct body {
	const struct iovec *iov;
	int niov, i;
	size_t off;
};

struct resp {
	char *p;
	size_t n, cap;
	bool too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *handle_get(struct s3_store *s)
{
	CURL *h = NULL;

	pthread_mutex_lock(&s->mu);
	if (s->npool > 0)
		h = s->pool[--s->npool];
	pthread_mutex_unlock(&s->mu);
	if (h) {
		curl_easy_reset(h); /* keeps the connection cache */
		return h;
	}
	return curl_easy_init();
}

static void handle_put(struct s3_store *s, CURL *h)
{
	pthread_mutex_lock(&s->mu);
	if (s->npool < POOL) {
		s->pool[s->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (h)
		curl_easy_cleanup(h);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct resp *r = arg;
	size_t n = size * nmemb;

	if (r->n + n > BODY_MAX) {
		r->too_big = true;
		return 0;
	}
	if (r->n + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *p;

		while (cap < r->n + n + 1)
			cap *= 2;
		p = realloc(r->p, cap);
		if (!p)
			return 0;
		r->p = p;
		r->cap = cap;
	}
	memcpy(r->p + r->n, data, n);
	r->n += n;
	r->p[r->n] = 0;
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct body *b = arg;
	size_t want = size * nitems, got = 0;

	while (got < want && b->i < b->niov) {
		const struct iovec *v = &b->iov[b->i];
		size_t k = v->iov_len - b->off;

		if (k > want - got)
			k = want - got;
		memcpy(buf + got, (const char *)v->iov_base + b->off, k);
		got += k;
		b->off += k;
		if (b->off == v->iov_len) {
			b->i++;
			b->off = 0;
		}
	}
	return got;
}

/* The <Code> of an S3 error body, printable characters only; "" when there is none. */
static void error_code(const struct resp *r, char *out, size_t outlen)
{
	const char *a = r->p ? strstr(r->p, "<Code>") : NULL, *e;
	size_t o = 0;

	out[0] = 0;
	if (!a || !(e = strstr(a, "</Code>")))
		return;
	for (a += 6; a < e && o + 1 < outlen; a++)
		if (*a > 0x20 && *a < 0x7f)
			out[o++] = *a;
	out[o] = 0;
}

/* One signed request. path is the encoded path after base_url. Returns OK for 2xx, MISS for
 * 404, ERR (with the S3 error code, or curl's reason, in err) otherwise; *retry is set when
 * trying again may help (a 5xx, or a connection that failed before the timeout). */
static enum kc_store_res request_once(struct s3_store *s, const char *method, const char *path,
				      const struct iovec *iov, int niov, const char *payload_hash,
				      struct resp *r, bool *retry, char *err, size_t errlen)
{
	char date[17], auth[512], url[1500], hdr[4][700], tokhdr[4200], code[64],
	    ebuf[CURL_ERROR_SIZE] = "";
	struct kc_sigv4_hdr sh[4] = {{"host", s->host},
				     {"x-amz-content-sha256", payload_hash},
				     {"x-amz-date", date},
				     {"x-amz-security-token", s->token}};
	struct kc_sigv4 sig = {method, path,	    "",	  sh,	     s->token ? 4 : 3, payload_hash,
			       date,   s->u.region, "s3", s->access, s->secret};
	struct body b = {iov, niov, 0, 0};
	struct curl_slist *hl = NULL, *t;
	enum kc_store_res res = KC_STORE_ERR;
	size_t blen = 0;
	long status = 0;
	CURLcode rc;
	CURL *h;

	kc_amz_date(time(NULL), date);
	if (kc_sigv4_authorization(&sig, auth, sizeof(auth)) ||
	    snprintf(url, sizeof(url), "%s%s", s->base_url, path) >= (int)sizeof(url)) {
		kc_errf(err, errlen, "s3: %s %s: request too long to sign", method, path);
		return KC_STORE_ERR;
	}
	snprintf(hdr[0], sizeof(hdr[0]), "Host: %s", s->host);
	snprintf(hdr[1], sizeof(hdr[1]), "x-amz-content-sha256: %s", payload_hash);
	snprintf(hdr[2], sizeof(hdr[2]), "x-amz-date: %s", date);
	snprintf(hdr[3], sizeof(hdr[3]), "Authorization: %s", auth);
	snprintf(tokhdr, sizeof(tokhdr), "x-amz-security-token: %s", s->token ? s->token : "");
	for (int i = 0; i < (s->token ? 5 : 4); i++) {
		t = curl_slist_append(hl, i < 4 ? hdr[i] : tokhdr);
		if (!t)
			goto oom;
		hl = t;
	}
	t = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
	if (!t)
		goto oom;
	hl = t;
	h = handle_get(s);
	if (!h)
		goto oom;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (s->u.insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (!strcmp(method, "PUT")) {
		for (int i = 0; i < niov; i++)
			blen += iov[i].iov_len;
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &b);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)blen);
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	/* The error buffer lives on this stack: the pooled handle must not keep it. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	handle_put(s, h);
	curl_slist_free_all(hl);
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		kc_errf(err, errlen, "s3: timeout after %u ms (%s %s%s)", s->timeout_ms, method,
			s->base_url, path);
	} else if (rc == CURLE_WRITE_ERROR && r->too_big) {
		kc_errf(err, errlen, "s3: %s %s: response larger than %llu bytes", method, path,
			(unsigned long long)BODY_MAX);
	} else if (rc != CURLE_OK) {
		kc_errf(err, errlen, "s3: %s %s%s: %s", method, s->base_url, path,
			ebuf[0] ? ebuf : curl_easy_strerror(rc));
		*retry = rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST;
	} else if (status >= 200 && status < 300) {
		res = KC_STORE_OK;
	} else if (status == 404) {
		/* a miss for GET and HEAD; the callers for which it is an error have the reason */
		error_code(r, code, sizeof(code));
		kc_errf(err, errlen, "s3: 404 %s (%s %s)", code[0] ? code : "Not Found", method,
			path);
		res = KC_STORE_MISS;
	} else {
		error_code(r, code, sizeof(code));
		kc_errf(err, errlen, "s3: %ld %s (%s %s)", status,
			code[0]		? code
			: status == 403 ? "Forbidden"
			: status >= 500 ? "server error"
					: "unexpected status",
			method, path);
		*retry = status >= 500;
	}
	return res;
oom:
	curl_slist_free_all(hl);
	kc_errf(err, errlen, "s3: out of memory");
	return KC_STORE_ERR;
}

/* request_once, tried up to three times (every request the store sends is idempotent), as
 * AWS's own clients do: S3 answers an occasional 500 or 503 that a retry gets past. */
static enum kc_store_res request(struct s3_store *s, const char *method, const char *path,
				 const struct iovec *iov, int niov, const char *payload_hash,
				 struct resp *r, char *err, size_t errlen)
{
	enum kc_store_res res = KC_STORE_ERR;

	for (int attempt = 0; attempt < 3; attempt++) {
		bool retry = false;

		if (attempt) {
			struct timespec ts = {0, (long)(10 + rand() % 40) * attempt * 1000000L};

			nanosleep(&ts, NULL);
			r->n = 0;
			r->too_big = false;
		}
		res =
		    request_once(s, method, path, iov, niov, payload_hash, r, &retry, err, errlen);
		if (res != KC_STORE_ERR || !retry)
			break;
	}
	return res;
}

static struct s3_store *S(struct kc_store *s)
{
	return (struct s3_store *)s;
}

static int object_path(struct s3_store *s, const char *addr, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s%.2s/%.2s/%s", s->root, addr, addr + 2, addr);

	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static enum kc_store_res s3_get(struct kc_store *st, const char *key, size_t nkey, const char *addr,
				void **val, size_t *n, char *err, size_t errlen)
{
	struct s3_store *s = S(st);
	struct resp r = {0};
	char path[800], why[160], derr[256];
	enum kc_store_res res;
	const void *v;
	size_t vlen;

	object_path(s, addr, path, sizeof(path));
	res = request(s, "GET", path, NULL, 0, EMPTY_SHA256, &r, err, errlen);
	if (res != KC_STORE_OK)
		goto out;
	if (!r.p && !(r.p = calloc(1, 1))) { /* an empty body: parsed, and refused, as any */
		kc_errf(err, errlen, "s3: out of memory");
		res = KC_STORE_ERR;
		goto out;
	}
	switch (kc_store_obj_parse(r.p, r.n, key, nkey, &v, &vlen, why, sizeof(why))) {
	case KC_STORE_OBJ_OK:
		memmove(r.p, v, vlen);
		*val = r.p;
		*n = vlen;
		return KC_STORE_OK;
	case KC_STORE_OBJ_OTHER_KEY:
		res = KC_STORE_MISS;
		break;
	case KC_STORE_OBJ_BAD:
		log_warn("store: s3 object %s%s: corrupt object removed: %s", s->base_url, path,
			 why);
		free(r.p);
		r = (struct resp){0};
		if (request(s, "DELETE", path, NULL, 0, EMPTY_SHA256, &r, derr, sizeof(derr)) ==
		    KC_STORE_ERR)
			log_warn("store: removing corrupt %s: %s", path, derr);
		atomic_fetch_add_explicit(&st->corrupt, 1, memory_order_relaxed);
		kc_errf(err, errlen, "s3: %s: %s", path, why);
		res = KC_STORE_CORRUPT;
		break;
	}
out:
	free(r.p);
	return res;
}

static enum kc_store_res s3_put(struct kc_store *st, const char *key, size_t nkey, const char *addr,
				const void *val, size_t n, char *err, size_t errlen)
{
	struct s3_store *s = S(st);
	unsigned char hdr[KC_STORE_OBJ_HDR], md[32];
	struct iovec iov[3] = {{hdr, sizeof(hdr)}, {(void *)key, nkey}, {(void *)val, n}};
	char path[800], hash[65];
	struct resp r = {0};
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	enum kc_store_res res;
	bool ok;

	kc_store_obj_header(hdr, key, nkey, val, n);
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (int i = 0; ok && i < 3; i++)
		ok = EVP_DigestUpdate(ctx, iov[i].iov_base, iov[i].iov_len);
	ok = ok && EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		kc_errf(err, errlen, "s3: SHA-256 of the payload failed");
		return KC_STORE_ERR;
	}
	kc_hex_encode(md, sizeof(md), hash);
	object_path(s, addr, path, sizeof(path));
	res = request(s, "PUT", path, iov, 3, hash, &r, err, errlen);
	free(r.p);
	return res == KC_STORE_MISS ? KC_STORE_ERR : res; /* a 404 on PUT: no such bucket */
}

static enum kc_store_res s3_del(struct kc_store *st, const char *key, size_t nkey, const char *addr,
				char *err, size_t errlen)
{
	struct s3_store *s = S(st);
	struct resp r = {0};
	char path[800];
	enum kc_store_res res;

	/* S3 answers 204 to a DELETE whether the object was there or not: HEAD tells a miss. */
	object_path(s, addr, path, sizeof(path));
	res = request(s, "HEAD", path, NULL, 0, EMPTY_SHA256, &r, err, errlen);
	if (res == KC_STORE_OK) {
		free(r.p);
		r = (struct resp){0};
		res = request(s, "DELETE", path, NULL, 0, EMPTY_SHA256, &r, err, errlen);
		if (res == KC_STORE_MISS) /* gone in between */
			res = KC_STORE_OK;
	}
	free(r.p);
	return res;
}

static void s3_totals(struct kc_store *s, uint64_t *objects, uint64_t *bytes)
{
	*objects = *bytes = 0;
}

static void s3_close(struct kc_store *st)
{
	struct s3_store *s = S(st);

	for (int i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	pthread_mutex_destroy(&s->mu);
	if (s->secret)
		OPENSSL_cleanse(s->secret, strlen(s->secret));
	free(s->access);
	free(s->secret);
	free(s->token);
	free(s);
}

static const struct kc_store_ops s3_ops = {
    .kind = "s3",
    .get = s3_get,
    .put = s3_put,
    .del = s3_del,
    .totals = s3_totals,
    .close = s3_close,
};

static const char *pick(const char *given, const char *env)
{
	const char *v = given ? given : getenv(env);

	return v && *v ? v : NULL;
}

/* Host, base URL and path root from the parsed URL: path style puts the bucket in the path,
 * virtual-host style in the host name. */
static int locate(struct s3_store *s, char *err, size_t errlen)
{
	const struct kc_s3_url *u = &s->u;
	const char *scheme = "https", *host;
	char pfx[3 * sizeof(u->prefix)];
	int n;

	if (u->endpoint[0]) {
		scheme = strncmp(u->endpoint, "https://", 8) ? "http" : "https";
		host = strstr(u->endpoint, "://") + 3;
		n = u->path_style ? snprintf(s->host, sizeof(s->host), "%s", host)
				  : snprintf(s->host, sizeof(s->host), "%s.%s", u->bucket, host);
	} else {
		n = u->path_style
			? snprintf(s->host, sizeof(s->host), "s3.%s.amazonaws.com", u->region)
			: snprintf(s->host, sizeof(s->host), "%s.s3.%s.amazonaws.com", u->bucket,
				   u->region);
	}
	if (n < 0 || (size_t)n >= sizeof(s->host) ||
	    kc_uri_encode(u->prefix, strlen(u->prefix), true, pfx, sizeof(pfx)) == (size_t)-1) {
		kc_errf(err, errlen, "store: s3 URL: endpoint or prefix too long");
		return -EINVAL;
	}
	snprintf(s->base_url, sizeof(s->base_url), "%s://%s", scheme, s->host);
	if (u->path_style)
		n = snprintf(s->root, sizeof(s->root), "/%s/%s", u->bucket, pfx);
	else
		n = snprintf(s->root, sizeof(s->root), "/%s", pfx);
	if (n < 0 || (size_t)n >= sizeof(s->root)) {
		kc_errf(err, errlen, "store: s3 URL: prefix too long");
		return -EINVAL;
	}
	return 0;
}

/* HEAD on the bucket, to warn early; never an open error (the endpoint may come up later). */
static void probe(struct s3_store *s)
{
	char path[80], e[512];
	struct resp r = {0};
	enum kc_store_res res;

	snprintf(path, sizeof(path), s->u.path_style ? "/%s" : "/", s->u.bucket);
	res = request(s, "HEAD", path, NULL, 0, EMPTY_SHA256, &r, e, sizeof(e));
	free(r.p);
	if (res == KC_STORE_OK)
		log_info("store: s3 bucket %s at %s (region %s, %s style)", s->u.bucket,
			 s->base_url, s->u.region, s->u.path_style ? "path" : "virtual-host");
	else if (res == KC_STORE_MISS)
		log_warn("store: s3 bucket %s does not exist at %s: calls will fail until it does",
			 s->u.bucket, s->base_url);
	else
		log_warn("store: s3 bucket %s at %s not usable now: %s (calls fail until it is)",
			 s->u.bucket, s->base_url, e);
}

struct kc_store *kc_store_s3_open(const struct kc_store_opts *o, char *err, size_t errlen)
{
	struct s3_store *s = calloc(1, sizeof(*s));
	const char *ak = pick(o->access_key, "AWS_ACCESS_KEY_ID");
	const char *sk = pick(o->secret_key, "AWS_SECRET_ACCESS_KEY");
	const char *tok = pick(o->session_token, "AWS_SESSION_TOKEN");

	if (!s) {
		kc_errf(err, errlen, "store: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->base.ops = &s3_ops;
	s->timeout_ms = o->timeout_ms ? o->timeout_ms : 2000;
	if (kc_s3_url_parse(o->spec, &s->u, err, errlen) || locate(s, err, errlen))
		goto fail;
	if (!ak || !sk) {
		kc_errf(err, errlen,
			"store: s3: no credentials: set AWS_ACCESS_KEY_ID and "
			"AWS_SECRET_ACCESS_KEY");
		goto fail;
	}
	if (strlen(ak) > 128 || strlen(sk) > 120 || (tok && strlen(tok) > 4096) ||
	    strpbrk(ak, "\r\n/") || strpbrk(sk, "\r\n") || (tok && strpbrk(tok, "\r\n"))) {
		kc_errf(err, errlen, "store: s3: malformed credentials (length or characters)");
		goto fail;
	}
	s->access = strdup(ak);
	s->secret = strdup(sk);
	s->token = tok ? strdup(tok) : NULL;
	if (!s->access || !s->secret || (tok && !s->token)) {
		kc_errf(err, errlen, "store: out of memory");
		goto fail;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		kc_errf(err, errlen, "store: s3: curl_global_init: %s",
			curl_easy_strerror(curl_init_rc));
		goto fail;
	}
	probe(s);
	return &s->base;
fail:
	s3_close(&s->base);
	errno = EINVAL;
	return NULL;
}
