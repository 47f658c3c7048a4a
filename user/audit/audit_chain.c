/* audit_chain.c: sealing and parsing chain records, and the audit key. See audit_chain.h. */
#include "audit/audit_chain.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kcache/audit.h>

#include "core/hex.h"
#include "core/num.h"

int kc_audit_key_load(const char *path, struct kc_audit_key *key, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc;

	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "audit key %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "audit key %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "audit key %s: mode %03o lets others read it; chmod 600",
			 path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -EPERM;
	}
	n = read(fd, key->k, sizeof(key->k));
	close(fd);
	if (n < KC_AUDIT_KEY_MIN) {
		snprintf(err, errlen, "audit key %s: %zd bytes, at least %d needed", path,
			 n < 0 ? (ssize_t)0 : n, KC_AUDIT_KEY_MIN);
		return -EINVAL;
	}
	key->len = (size_t)n;
	return 0;
}

static void mac_of(const struct kc_audit_key *key, const unsigned char *prev, const char *canon,
		   size_t len, unsigned char mac[KC_AUDIT_MAC_LEN])
{
	unsigned int outl = KC_AUDIT_MAC_LEN;
	HMAC_CTX *h;

	/* HMAC_CTX is deprecated in OpenSSL 3 but is the shortest correct spelling; EVP_MAC
	 * gives the same bytes. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	h = HMAC_CTX_new();
	if (!h || !HMAC_Init_ex(h, key->k, (int)key->len, EVP_sha256(), NULL) ||
	    !HMAC_Update(h, prev, KC_AUDIT_MAC_LEN) ||
	    !HMAC_Update(h, (const unsigned char *)canon, len) || !HMAC_Final(h, mac, &outl))
		memset(mac, 0, KC_AUDIT_MAC_LEN); /* never verifies */
	HMAC_CTX_free(h);
#pragma GCC diagnostic pop
}

#define MAC_TAG ",\"mac\":\""

int kc_audit_chain_seal(const struct kc_audit_chain *c, const char *members, size_t len,
			struct kc_buf *out, unsigned char mac[KC_AUDIT_MAC_LEN])
{
	size_t start = out->len;
	char h[2 * KC_AUDIT_MAC_LEN + 1];

	kc_hex_encode(c->prev, KC_AUDIT_MAC_LEN, h);
	if (kc_buf_printf(out, "{\"v\":%d,\"seq\":%llu,\"prev\":\"%s\",", KC_AUDIT_SCHEMA,
			  (unsigned long long)c->seq + 1, h) ||
	    kc_buf_append(out, members, len)) {
		out->len = start; /* roll the partial record back */
		return -ENOMEM;
	}
	mac_of(c->key, c->prev, out->data + start, out->len - start, mac);
	kc_hex_encode(mac, KC_AUDIT_MAC_LEN, h);
	if (kc_buf_printf(out, MAC_TAG "%s\"}\n", h)) {
		out->len = start; /* roll the partial record back */
		return -ENOMEM;
	}
	return 0;
}

void kc_audit_chain_commit(struct kc_audit_chain *c, const unsigned char mac[KC_AUDIT_MAC_LEN])
{
	c->seq++;
	memcpy(c->prev, mac, KC_AUDIT_MAC_LEN);
}

int kc_audit_chain_parse(const char *line, size_t len, uint64_t *seq,
			 unsigned char prev[KC_AUDIT_MAC_LEN], unsigned char mac[KC_AUDIT_MAC_LEN],
			 size_t *canon_len)
{
	static const char head[] = "{\"v\":1,\"seq\":";
	const size_t taglen = sizeof(MAC_TAG) - 1, tail = taglen + 2 * KC_AUDIT_MAC_LEN + 2;
	const char *p = line + sizeof(head) - 1;
	size_t digits = 0;
	uint64_t v;

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len < sizeof(head) - 1 + tail || memcmp(line, head, sizeof(head) - 1))
		return -EINVAL;
	while (p + digits < line + len && p[digits] >= '0' && p[digits] <= '9')
		digits++;
	if (kc_parse_u64n(p, digits, UINT64_MAX, &v))
		return -EINVAL;
	p += digits;
	if ((size_t)(line + len - p) < 10 + 2 * KC_AUDIT_MAC_LEN + tail ||
	    memcmp(p, ",\"prev\":\"", 9) || kc_hex_decode(p + 9, KC_AUDIT_MAC_LEN, prev) ||
	    p[9 + 2 * KC_AUDIT_MAC_LEN] != '"')
		return -EINVAL;
	if (memcmp(line + len - tail, MAC_TAG, taglen) ||
	    kc_hex_decode(line + len - tail + taglen, KC_AUDIT_MAC_LEN, mac) ||
	    memcmp(line + len - 2, "\"}", 2))
		return -EINVAL;
	*seq = v;
	*canon_len = len - tail;
	return 0;
}

bool kc_audit_chain_mac_ok(const struct kc_audit_key *key, const char *line, size_t canon_len,
			   const unsigned char prev[KC_AUDIT_MAC_LEN],
			   const unsigned char mac[KC_AUDIT_MAC_LEN])
{
	unsigned char want[KC_AUDIT_MAC_LEN];

	mac_of(key, prev, line, canon_len, want);
	return CRYPTO_memcmp(want, mac, KC_AUDIT_MAC_LEN) == 0;
}

int kc_audit_chain_resume(struct kc_audit_chain *c, const char *path)
{
	char buf[16384];
	unsigned char prev[KC_AUDIT_MAC_LEN], mac[KC_AUDIT_MAC_LEN];
	size_t canon;
	uint64_t seq;
	ssize_t n;
	off_t size;
	char *end, *start;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	c->seq = 0;
	memset(c->prev, 0, sizeof(c->prev));
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0) {
		close(fd);
		return 0;
	}
	n = pread(fd, buf, sizeof(buf) - 1,
		  size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	end = buf + n;
	if (end[-1] != '\n')
		return -EINVAL; /* a torn last line: do not guess */
	end[-1] = 0;
	start = strrchr(buf, '\n');
	start = start ? start + 1 : buf;
	if (kc_audit_chain_parse(start, strlen(start), &seq, prev, mac, &canon))
		return -EINVAL;
	c->seq = seq;
	memcpy(c->prev, mac, KC_AUDIT_MAC_LEN);
	return 0;
}
