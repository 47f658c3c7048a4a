/* bench_gen.c: kcache-bench's random numbers, Zipf ranks, key space and latency histogram
 * (see bench.h). Pure functions of their inputs: no I/O, no global state. */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- random numbers ---------------------------------------------------------------------- */

uint64_t kb_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void kb_rng_seed(struct kb_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		seed = kb_mix64(seed);
		r->s[i] = seed;
	}
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
		r->s[0] = 1; /* the one state xoshiro cannot leave */
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t kb_rng_next(struct kb_rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

double kb_rng_double(struct kb_rng *r)
{
	return (double)(kb_rng_next(r) >> 11) * 0x1.0p-53;
}

/* --- Zipf by rejection-inversion ----------------------------------------------------------
 * Samples k in 1..n with P(k) proportional to k^-s. H is an integral of h(x) = x^-s; a uniform
 * u between H(n + 1/2) and H(3/2) - 1 is mapped through H's inverse and accepted when it falls
 * under the histogram of h (the test rarely fails: about one rejection per few samples at worst).
 * helper1/helper2 keep log1p(x)/x and expm1(x)/x exact near 0, where s is close to 1. */

static double helper1(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double helper2(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
}

static double zipf_h(const struct kb_zipf *z, double x)
{
	return exp(-z->s * log(x));
}

static double zipf_hint(const struct kb_zipf *z, double x)
{
	double lx = log(x);

	return helper2((1 - z->s) * lx) * lx;
}

static double zipf_hint_inv(const struct kb_zipf *z, double x)
{
	double t = x * (1 - z->s);

	if (t < -1)
		t = -1;
	return exp(helper1(t) * x);
}

int kb_zipf_init(struct kb_zipf *z, uint64_t n, double s)
{
	if (n == 0 || !(s >= 0) || !isfinite(s))
		return -EINVAL;
	z->n = n;
	z->s = s;
	z->h_x1 = zipf_hint(z, 1.5) - 1;
	z->h_n = zipf_hint(z, (double)n + 0.5);
	z->sval = 2 - zipf_hint_inv(z, zipf_hint(z, 2.5) - zipf_h(z, 2));
	return 0;
}

uint64_t kb_zipf_next(const struct kb_zipf *z, struct kb_rng *r)
{
	if (z->s == 0 || z->n == 1)
		return z->n == 1 ? 0 : kb_rng_next(r) % z->n;
	for (;;) {
		double u = z->h_n + kb_rng_double(r) * (z->h_x1 - z->h_n);
		double x = zipf_hint_inv(z, u);
		double kd = floor(x + 0.5);
		uint64_t k;

		if (kd < 1)
			kd = 1;
		else if (kd > (double)z->n)
			kd = (double)z->n;
		k = (uint64_t)kd;
		if (kd - x <= z->sval || u >= zipf_hint(z, kd + 0.5) - zipf_h(z, kd))
			return k - 1;
	}
}

/* --- key space --------------------------------------------------------------------------- */

#define SALT_KLEN  0x6b6c656eULL
#define SALT_KPAD  0x6b706164ULL
#define SALT_VLEN  0x766c656eULL
#define SALT_FLAGS 0x666c6167ULL
#define SALT_VAL   0x76616c75ULL

static unsigned digits(uint64_t v)
{
	unsigned n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

int kb_keyspace_check(const struct kb_keyspace *ks, char *err, size_t errlen)
{
	unsigned need = ks->prefix_len + digits(ks->n ? ks->n - 1 : 0);

	if (ks->n == 0) {
		snprintf(err, errlen, "the key space is empty (--keys 0)");
		return -EINVAL;
	}
	if (ks->kmin < 1 || ks->kmin > ks->kmax || ks->kmax > KB_KEY_MAX) {
		snprintf(err, errlen, "key size range %u-%u: expected 1 <= min <= max <= %u",
			 ks->kmin, ks->kmax, (unsigned)KB_KEY_MAX);
		return -EINVAL;
	}
	if (need > ks->kmax) {
		snprintf(err, errlen,
			 "%llu keys need keys of at least %u bytes (prefix '%s' and the index), "
			 "--key-size allows %u",
			 (unsigned long long)ks->n, need, ks->prefix, ks->kmax);
		return -EINVAL;
	}
	if (ks->vmin > ks->vmax) {
		snprintf(err, errlen, "value size range %u-%u: min above max", ks->vmin, ks->vmax);
		return -EINVAL;
	}
	return 0;
}

#define KEY_CACHE_MAX (256ULL << 20)

static unsigned key_render(const struct kb_keyspace *ks, uint64_t i, char *out);

int kb_keyspace_cache(struct kb_keyspace *ks)
{
	if (ks->n * ks->kmax > KEY_CACHE_MAX)
		return -ENOMEM;
	ks->cache = malloc(ks->n * ks->kmax);
	ks->cache_len = malloc(ks->n);
	if (!ks->cache || !ks->cache_len) {
		kb_keyspace_free(ks);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < ks->n; i++) {
		char k[KB_KEY_MAX];
		unsigned n = key_render(ks, i, k);

		memcpy(ks->cache + i * ks->kmax, k, n);
		ks->cache_len[i] = (uint8_t)n;
	}
	return 0;
}

void kb_keyspace_free(struct kb_keyspace *ks)
{
	free(ks->cache);
	free(ks->cache_len);
	ks->cache = NULL;
	ks->cache_len = NULL;
}

unsigned kb_key(const struct kb_keyspace *ks, uint64_t i, char *out)
{
	if (ks->cache && i < ks->n) {
		memcpy(out, ks->cache + i * ks->kmax, ks->cache_len[i]);
		return ks->cache_len[i];
	}
	return key_render(ks, i, out);
}

/* prefix, the index in decimal, then letters (never digits, so the index part is unambiguous
 * and keys are distinct) up to a length drawn from [kmin, kmax]. */
static unsigned key_render(const struct kb_keyspace *ks, uint64_t i, char *out)
{
	unsigned span = ks->kmax - ks->kmin + 1;
	unsigned len = ks->kmin + (unsigned)(kb_mix64(i ^ (SALT_KLEN << 32)) % span);
	unsigned n = ks->prefix_len, d = digits(i);
	uint64_t pad = kb_mix64(i ^ (SALT_KPAD << 32));

	memcpy(out, ks->prefix, n);
	for (unsigned k = d; k > 0; k--) {
		out[n + k - 1] = (char)('0' + i % 10);
		i /= 10;
	}
	n += d;
	for (unsigned k = 0; n < len; n++, k++) {
		if (k % 12 == 0 && k)
			pad = kb_mix64(pad);
		out[n] = (char)('a' + (pad >> (5 * (k % 12))) % 26);
	}
	return n;
}

uint32_t kb_value_len(const struct kb_keyspace *ks, uint64_t i)
{
	uint64_t span = (uint64_t)ks->vmax - ks->vmin + 1;

	return ks->vmin + (uint32_t)(kb_mix64(i ^ (SALT_VLEN << 32)) % span);
}

uint32_t kb_flags(const struct kb_keyspace *ks, uint64_t i)
{
	(void)ks;
	return (uint32_t)kb_mix64(i ^ (SALT_FLAGS << 32));
}

/* Byte j of key i's value: printable ('0'..'o'), 8 bytes per mixed word. */
static inline void value_word(uint64_t i, uint64_t w, char out[8])
{
	uint64_t x = kb_mix64((i * 0x9e3779b97f4a7c15ULL) ^ (w + (SALT_VAL << 32)));

	for (int b = 0; b < 8; b++)
		out[b] = (char)('0' + ((x >> (8 * b)) & 0x3f));
}

void kb_value_fill(const struct kb_keyspace *ks, uint64_t i, char *out)
{
	uint32_t len = kb_value_len(ks, i);
	char w[8];

	for (uint32_t off = 0; off < len; off += 8) {
		value_word(i, off / 8, w);
		memcpy(out + off, w, len - off < 8 ? len - off : 8);
	}
}

bool kb_value_check(const struct kb_keyspace *ks, uint64_t i, uint32_t flags, const char *data,
		    size_t len)
{
	char w[8];

	if (len != kb_value_len(ks, i) || flags != kb_flags(ks, i))
		return false;
	for (size_t off = 0; off < len; off += 8) {
		value_word(i, off / 8, w);
		if (memcmp(data + off, w, len - off < 8 ? len - off : 8))
			return false;
	}
	return true;
}

/* --- latency histogram ------------------------------------------------------------------- */

#define SUB (1u << KB_HIST_SUB_BITS)

static unsigned hist_index(uint64_t v)
{
	unsigned msb, e;

	if (v < 2 * SUB)
		return (unsigned)v;
	msb = 63 - (unsigned)__builtin_clzll(v);
	e = msb - KB_HIST_SUB_BITS;	     /* >= 1 */
	return e * SUB + (unsigned)(v >> e); /* v >> e is in [SUB, 2 SUB) */
}

/* Lowest value and width of bucket idx. */
static void hist_bucket(unsigned idx, uint64_t *lo, uint64_t *width)
{
	unsigned e;

	if (idx < 2 * SUB) {
		*lo = idx;
		*width = 1;
		return;
	}
	e = idx / SUB - 1;
	*lo = (uint64_t)(idx - e * SUB) << e;
	*width = 1ULL << e;
}

void kb_hist_add(struct kb_hist *h, uint64_t ns)
{
	unsigned idx = hist_index(ns);

	if (idx >= KB_HIST_BUCKETS)
		idx = KB_HIST_BUCKETS - 1;
	h->b[idx]++;
	h->count++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void kb_hist_merge(struct kb_hist *dst, const struct kb_hist *src)
{
	for (unsigned i = 0; i < KB_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t kb_hist_quantile(const struct kb_hist *h, double q)
{
	uint64_t rank, seen = 0, lo, width;

	if (!h->count)
		return 0;
	if (q < 0)
		q = 0;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned i = 0; i < KB_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			hist_bucket(i, &lo, &width);
			lo += width / 2;
			return lo < h->max_ns ? lo : h->max_ns;
		}
	}
	return h->max_ns;
}

void kb_stats_merge(struct kb_stats *dst, const struct kb_stats *src)
{
	dst->sent += src->sent;
	dst->done += src->done;
	dst->gets += src->gets;
	dst->hits += src->hits;
	dst->misses += src->misses;
	dst->sets += src->sets;
	dst->stored += src->stored;
	dst->lost += src->lost;
	dst->errors += src->errors;
	dst->verify_fail += src->verify_fail;
	dst->unsent += src->unsent;
	dst->late += src->late;
	dst->replies += src->replies;
	dst->cpu_ns += src->cpu_ns;
	if (src->start_ns && (!dst->start_ns || src->start_ns < dst->start_ns))
		dst->start_ns = src->start_ns;
	if (src->end_ns > dst->end_ns)
		dst->end_ns = src->end_ns;
	kb_hist_merge(&dst->hist, &src->hist);
}
