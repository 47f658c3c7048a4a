/* redis_url.c: parses, copies and prints (password redacted) kcache's Redis URLs (see redis.h).
 * Pure string work: no sockets, no allocation beyond the URL's own strings. */
#include "tiers/redis/redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/num.h"
#include "core/pct.h"

#define HOST_MAX 253

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kc_errf(err, errlen, "redis URL: %s", msg);
	return -1;
}

/* Copies s[0..n) into a new string with %XX decoded; what names the part in errors. */
static int decode(const char *s, size_t n, const char *what, char **out, char *err, size_t errlen)
{
	char *d = malloc(n + 1);
	size_t j = 0;

	if (!d)
		return bad(err, errlen, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			d[j++] = s[i];
			continue;
		}
		int c = kc_pct_escape(s, n, i);

		if (c < 0) {
			free(d);
			return bad(err, errlen, "bad %%-escape in %s", what);
		}
		if (c == 0) {
			free(d);
			return bad(err, errlen, "%s contains a NUL byte", what);
		}
		d[j++] = (char)c;
		i += 2;
	}
	d[j] = '\0';
	*out = d;
	return 0;
}

/* Parses a decimal number (core/num.h) into *v (0 on error); max bounds it. what names it in
 * err. */
static int number(const char *s, size_t n, unsigned long long max, const char *what,
		  unsigned long long *v, char *err, size_t errlen)
{
	uint64_t x = 0;
	int rc;

	*v = 0;
	if (n == 0)
		return bad(err, errlen, "missing %s", what);
	rc = kc_parse_u64n(s, n, UINT64_MAX, &x);
	if (rc == -EINVAL)
		return bad(err, errlen, "%s '%.*s' is not a number", what, (int)n, s);
	if (rc)
		return bad(err, errlen, "%s %.*s out of range", what, (int)n, s);
	if (x > max)
		return bad(err, errlen, "%s %llu out of range", what, (unsigned long long)x);
	*v = x;
	return 0;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* One "host[:port]" or "[v6]:port" of s[0..n). */
static int parse_addr(const char *s, size_t n, uint16_t defport, struct kc_redis_addr *a, char *err,
		      size_t errlen)
{
	const char *h = s, *rest;
	size_t hn;
	unsigned long long port = defport;

	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return bad(err, errlen, "missing ']' after IPv6 address");
		h = s + 1;
		hn = (size_t)(close - h);
		for (size_t i = 0; i < hn; i++)
			if (!(host_char(h[i]) || h[i] == ':' || h[i] == '%'))
				return bad(err, errlen, "bad IPv6 address '%.*s'", (int)hn, h);
		rest = close + 1;
	} else {
		const char *colon = memchr(s, ':', n);
		hn = colon ? (size_t)(colon - s) : n;
		for (size_t i = 0; i < hn; i++)
			if (!host_char(h[i]))
				return bad(err, errlen, "bad character '%c' in host '%.*s'", h[i],
					   (int)hn, h);
		rest = s + hn;
	}
	if (hn == 0)
		return bad(err, errlen, "missing host");
	if (hn > HOST_MAX)
		return bad(err, errlen, "host longer than %d characters", HOST_MAX);
	if (rest < s + n) {
		if (*rest != ':')
			return bad(err, errlen, "unexpected '%c' after host", *rest);
		rest++;
		if (rest == s + n)
			return bad(err, errlen, "missing port after ':'");
		if (number(rest, (size_t)(s + n - rest), 65535, "port", &port, err, errlen))
			return -1;
		if (port == 0)
			return bad(err, errlen, "port 0 out of range");
	}
	a->host = strndup(h, hn);
	if (!a->host)
		return bad(err, errlen, "out of memory");
	a->port = (uint16_t)port;
	return 0;
}

static int parse_option(struct kc_redis_url *u, const char *s, size_t n, char *err, size_t errlen)
{
	static const char *const names[] = {"timeout_ms", "ca", "cert", "key", "insecure"};
	const char *eq = memchr(s, '=', n);
	size_t kn = eq ? (size_t)(eq - s) : n;
	const char *v = eq ? eq + 1 : NULL;
	size_t vn = eq ? (size_t)(s + n - v) : 0;
	unsigned long long x;
	char **path = NULL;
	unsigned k;

	for (k = 0; k < 5; k++)
		if (strlen(names[k]) == kn && memcmp(names[k], s, kn) == 0)
			break;
	if (kn == 0)
		return bad(err, errlen, "empty option name");
	if (k == 5)
		return bad(err, errlen,
			   "unknown option '%.*s' (want timeout_ms, ca, cert, key or insecure)",
			   (int)kn, s);
	if (!eq || vn == 0)
		return bad(err, errlen, "option '%s' needs a value", names[k]);
	switch (k) {
	case 0:
		if (u->timeout_ms)
			return bad(err, errlen, "option 'timeout_ms' given twice");
		if (number(v, vn, 3600000, "timeout_ms", &x, err, errlen))
			return -1;
		if (x == 0)
			return bad(err, errlen, "timeout_ms 0 out of range");
		u->timeout_ms = (uint32_t)x;
		return 0;
	case 4:
		if (vn != 1 || (v[0] != '0' && v[0] != '1'))
			return bad(err, errlen, "insecure '%.*s': want 0 or 1", (int)vn, v);
		u->insecure = v[0] == '1';
		return 0;
	default:
		path = k == 1 ? &u->ca : k == 2 ? &u->cert : &u->key;
		if (*path)
			return bad(err, errlen, "option '%s' given twice", names[k]);
		return decode(v, vn, names[k], path, err, errlen);
	}
}

static int parse_query(struct kc_redis_url *u, const char *q, char *err, size_t errlen)
{
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		if (parse_option(u, q, n, err, errlen))
			return -1;
		q += n + (amp ? 1 : 0);
		if (amp && !*q)
			return bad(err, errlen, "empty option after '&'");
	}
	if (!u->tls && (u->ca || u->cert || u->key || u->insecure))
		return bad(err, errlen, "option '%s' needs rediss://",
			   u->ca     ? "ca"
			   : u->cert ? "cert"
			   : u->key  ? "key"
				     : "insecure");
	if (!u->cert != !u->key)
		return bad(err, errlen, "options 'cert' and 'key' go together");
	return 0;
}

static int parse_userinfo(struct kc_redis_url *u, const char *s, size_t n, char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', n);

	if (!colon)
		return bad(err, errlen, "user '%.*s' without a password (write user:pass or :pass)",
			   (int)n, s);
	if (colon > s && decode(s, (size_t)(colon - s), "user", &u->user, err, errlen))
		return -1;
	if (colon + 1 == s + n)
		return bad(err, errlen, "empty password");
	return decode(colon + 1, (size_t)(s + n - colon - 1), "password", &u->pass, err, errlen);
}

/* Splits the authority a[0..n) into userinfo, master and hosts, and parses them. */
static int parse_authority(struct kc_redis_url *u, const char *a, size_t n, char *err,
			   size_t errlen)
{
	const char *at = NULL, *hosts, *end = a + n;

	for (const char *p = a; p < end; p++)
		if (*p == '@')
			at = p;
	hosts = at ? at + 1 : a;
	if (u->sentinel) {
		const char *mat = NULL;
		if (!at)
			return bad(err, errlen, "missing master name (want MASTER@host:port)");
		for (const char *p = a; p < at; p++)
			if (*p == '@')
				mat = p;
		const char *m = mat ? mat + 1 : a;
		if (m == at)
			return bad(err, errlen, "empty sentinel master name");
		if (decode(m, (size_t)(at - m), "master name", &u->master, err, errlen))
			return -1;
		if (mat && parse_userinfo(u, a, (size_t)(mat - a), err, errlen))
			return -1;
	} else if (at && parse_userinfo(u, a, (size_t)(at - a), err, errlen)) {
		return -1;
	}
	while (hosts <= end) {
		const char *comma = memchr(hosts, ',', (size_t)(end - hosts));
		const char *he = comma ? comma : end;
		if (u->naddrs == KC_REDIS_MAX_SENTINELS)
			return bad(err, errlen, "more than %d sentinels", KC_REDIS_MAX_SENTINELS);
		if (u->naddrs == 1 && !u->sentinel)
			return bad(err, errlen, "several hosts need redis+sentinel://");
		if (parse_addr(hosts, (size_t)(he - hosts), u->sentinel ? 26379 : 6379,
			       &u->addrs[u->naddrs], err, errlen))
			return -1;
		u->naddrs++;
		if (!comma)
			break;
		hosts = comma + 1;
	}
	return 0;
}

int kc_redis_url_parse(const char *s, struct kc_redis_url *u, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		bool tls, sentinel;
	} schemes[] = {{"redis://", false, false},
		       {"rediss://", true, false},
		       {"redis+sentinel://", false, true},
		       {"rediss+sentinel://", true, true}};
	size_t len = strnlen(s, KC_REDIS_URL_MAX + 1), i;
	const char *p, *slash, *qm, *end;
	unsigned long long db = 0;

	memset(u, 0, sizeof(*u));
	if (len > KC_REDIS_URL_MAX)
		return bad(err, errlen, "longer than %d bytes", KC_REDIS_URL_MAX);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return bad(err, errlen, "character 0x%02x at offset %zu is not allowed",
				   (unsigned char)s[i], i);
	for (i = 0; i < 4; i++)
		if (strncmp(s, schemes[i].name, strlen(schemes[i].name)) == 0)
			break;
	if (i == 4) {
		const char *sep = strstr(s, "://"), *at = strrchr(s, '@');
		if (!sep && at) /* what comes before '@' may be a password: never echo it */
			return bad(err, errlen,
				   "'***@%.40s' has no scheme (want redis://host:port)", at + 1);
		if (!sep)
			return bad(err, errlen, "'%.40s' has no scheme (want redis://host:port)",
				   s);
		return bad(err, errlen,
			   "unknown scheme '%.*s' (want redis, rediss, redis+sentinel or "
			   "rediss+sentinel)",
			   (int)(sep - s > 40 ? 40 : sep - s), s);
	}
	u->tls = schemes[i].tls;
	u->sentinel = schemes[i].sentinel;
	p = s + strlen(schemes[i].name);
	qm = strchr(p, '?');
	end = qm ? qm : s + len;
	slash = memchr(p, '/', (size_t)(end - p));
	if (parse_authority(u, p, (size_t)((slash ? slash : end) - p), err, errlen))
		goto fail;
	if (slash && slash + 1 < end) {
		if (number(slash + 1, (size_t)(end - slash - 1), 2147483647, "db", &db, err,
			   errlen))
			goto fail;
		u->db = (unsigned)db;
	}
	if (qm && parse_query(u, qm + 1, err, errlen))
		goto fail;
	return 0;
fail:
	kc_redis_url_free(u);
	return -1;
}

int kc_redis_url_parse_key(const char *s, struct kc_redis_url *u, char **key, char *err,
			   size_t errlen)
{
	const char *sep = strstr(s, "://"), *path, *end, *last;
	size_t len = strnlen(s, KC_REDIS_URL_MAX + 1);
	char *rest;
	int rc;

	memset(u, 0, sizeof(*u));
	*key = NULL;
	if (len > KC_REDIS_URL_MAX || !sep) /* the parser says what is wrong */
		return kc_redis_url_parse(s, u, err, errlen);
	end = strchr(sep + 3, '?');
	if (!end)
		end = s + len;
	path = memchr(sep + 3, '/', (size_t)(end - sep - 3));
	if (!path || path + 1 == end)
		return bad(err, errlen, "missing key (want %.*s://host:port/KEY)",
			   (int)(sep - s > 40 ? 40 : sep - s), s);
	last = path;
	for (const char *p = path + 1; p < end; p++)
		if (*p == '/')
			last = p;
	if (last + 1 == end)
		return bad(err, errlen, "empty key after '/'");
	/* The URL without "/KEY", for the parser. */
	rest = malloc(len + 1);
	if (!rest)
		return bad(err, errlen, "out of memory");
	memcpy(rest, s, (size_t)(last - s));
	memcpy(rest + (last - s), end, (size_t)(s + len - end) + 1);
	rc = kc_redis_url_parse(rest, u, err, errlen);
	free(rest);
	if (rc)
		return rc;
	if (decode(last + 1, (size_t)(end - last - 1), "key", key, err, errlen)) {
		kc_redis_url_free(u);
		return -1;
	}
	return 0;
}

static int dupstr(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

int kc_redis_url_dup(struct kc_redis_url *dst, const struct kc_redis_url *src)
{
	int rc = 0;

	*dst = *src;
	rc |= dupstr(&dst->user, src->user);
	rc |= dupstr(&dst->pass, src->pass);
	rc |= dupstr(&dst->master, src->master);
	rc |= dupstr(&dst->ca, src->ca);
	rc |= dupstr(&dst->cert, src->cert);
	rc |= dupstr(&dst->key, src->key);
	for (unsigned i = 0; i < src->naddrs; i++)
		rc |= dupstr(&dst->addrs[i].host, src->addrs[i].host);
	if (rc) {
		kc_redis_url_free(dst);
		return -ENOMEM;
	}
	return 0;
}

void kc_redis_url_free(struct kc_redis_url *u)
{
	if (!u)
		return;
	free(u->user);
	free(u->pass);
	free(u->master);
	free(u->ca);
	free(u->cert);
	free(u->key);
	for (unsigned i = 0; i < u->naddrs; i++)
		free(u->addrs[i].host);
	memset(u, 0, sizeof(*u));
}

void kc_redis_url_print(const struct kc_redis_url *u, char *out, size_t n)
{
	size_t o = 0;
	char sep = '?';

#define PUT(...)                                                                                   \
	do {                                                                                       \
		if (o < n) {                                                                       \
			int m_ = snprintf(out + o, n - o, __VA_ARGS__);                            \
			o += m_ > 0 ? (size_t)m_ : 0;                                              \
		}                                                                                  \
	} while (0)
	if (!n)
		return;
	out[0] = '\0';
	PUT("%s%s://", u->tls ? "rediss" : "redis", u->sentinel ? "+sentinel" : "");
	if (u->pass)
		PUT("%s:***@", u->user ? u->user : "");
	if (u->master)
		PUT("%s@", u->master);
	for (unsigned i = 0; i < u->naddrs; i++) {
		const char *h = u->addrs[i].host;
		PUT(strchr(h, ':') ? "%s[%s]:%u" : "%s%s:%u", i ? "," : "", h, u->addrs[i].port);
	}
	PUT("/%u", u->db);
	if (u->timeout_ms) {
		PUT("%ctimeout_ms=%u", sep, u->timeout_ms);
		sep = '&';
	}
	if (u->ca) {
		PUT("%cca=%s", sep, u->ca);
		sep = '&';
	}
	if (u->cert) {
		PUT("%ccert=%s&key=%s", sep, u->cert, u->key ? u->key : "");
		sep = '&';
	}
	if (u->insecure)
		PUT("%cinsecure=1", sep);
#undef PUT
}
