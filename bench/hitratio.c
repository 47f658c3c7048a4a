/* hitratio.c: hit ratio of the memory tier (W-TinyLFU, user/mem/mem.c) against a plain LRU of the
 * same byte capacity, on Zipf-distributed keys with variable-sized values. Each request is "get; on
 * a miss, set". Traces use a fixed seed, so every run prints the same table. Built and run by
 * bench/hitratio.sh; not a test.
 *
 * Usage: bench-hitratio [scale]   scales the trace lengths (default 1.0: 2M requests for 100k
 * keys, 4M for 1M keys). Columns: cache size as a share of the working set's bytes, hit ratios,
 * W-TinyLFU/LRU, and the share of the tier's evictions that were rejected window candidates.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem/mem.h"

#define ITEM_MAX 1024

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int key_of(uint32_t rank, char *buf)
{
	return sprintf(buf, "key:%u", rank);
}

/* 16..511 bytes, fixed per key, unrelated to popularity. */
static size_t val_of(uint32_t rank)
{
	uint64_t s = rank * 0x2545f4914f6cdd1dULL;

	return 16 + splitmix(&s) % 496;
}

static size_t size_of(uint32_t rank)
{
	char key[32];

	return kc_item_size((size_t)key_of(rank, key), val_of(rank));
}

/* Ranks 0..n-1 drawn with P(rank) ~ 1 / (rank + 1)^s, by inverting the exact CDF. */
static uint32_t *zipf_trace(uint32_t n, double s, size_t len, uint64_t seed)
{
	double *cdf = malloc(n * sizeof(*cdf)), sum = 0;
	uint32_t *t = malloc(len * sizeof(*t));

	if (!cdf || !t) {
		fprintf(stderr, "hitratio: out of memory\n");
		exit(1);
	}
	for (uint32_t i = 0; i < n; i++)
		cdf[i] = (sum += pow(i + 1.0, -s));
	for (size_t r = 0; r < len; r++) {
		double u = (double)(splitmix(&seed) >> 11) / 9007199254740992.0 * sum;
		uint32_t lo = 0, hi = n - 1;

		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		t[r] = lo;
	}
	free(cdf);
	return t;
}

/* ---- the baseline: one global LRU over ranks, byte-bounded like the tier ----------------------
 */

struct lru {
	uint32_t *prev, *next; /* by rank; NONE ends */
	uint8_t *in;
	uint32_t head, tail; /* head = most recent */
	size_t bytes, cap;
};

#define NONE UINT32_MAX

static void lru_unlink(struct lru *l, uint32_t r)
{
	if (l->prev[r] != NONE)
		l->next[l->prev[r]] = l->next[r];
	else
		l->head = l->next[r];
	if (l->next[r] != NONE)
		l->prev[l->next[r]] = l->prev[r];
	else
		l->tail = l->prev[r];
}

static void lru_push(struct lru *l, uint32_t r)
{
	l->prev[r] = NONE;
	l->next[r] = l->head;
	if (l->head != NONE)
		l->prev[l->head] = r;
	else
		l->tail = r;
	l->head = r;
}

static double run_lru(const uint32_t *trace, size_t len, uint32_t n, size_t cap)
{
	struct lru l = {malloc(n * 4), malloc(n * 4), calloc(n, 1), NONE, NONE, 0, cap};
	size_t hits = 0;

	for (size_t i = 0; i < len; i++) {
		uint32_t r = trace[i];

		if (l.in[r]) {
			hits++;
			lru_unlink(&l, r);
			lru_push(&l, r);
			continue;
		}
		while (l.bytes + size_of(r) > l.cap) {
			uint32_t v = l.tail;

			lru_unlink(&l, v);
			l.in[v] = 0;
			l.bytes -= size_of(v);
		}
		lru_push(&l, r);
		l.in[r] = 1;
		l.bytes += size_of(r);
	}
	free(l.prev);
	free(l.next);
	free(l.in);
	return (double)hits / (double)len;
}

/* ---- the memory tier ----------------------------------------------------------------------- */

static double run_mem(const uint32_t *trace, size_t len, size_t cap, struct kc_mem_stats *st)
{
	struct kc_mem *m = kc_mem_new(cap, ITEM_MAX);
	size_t hits = 0;
	char key[32];

	if (!m) {
		perror("kc_mem_new");
		exit(1);
	}
	for (size_t i = 0; i < len; i++) {
		int nkey = key_of(trace[i], key);
		struct kc_item *it = kc_mem_get(m, key, (size_t)nkey);

		if (it) {
			hits++;
		} else {
			size_t nval = val_of(trace[i]);

			it = kc_item_new(key, (size_t)nkey, 0, 0, nval);
			if (!it) {
				perror("kc_item_new");
				exit(1);
			}
			memset(kc_item_value(it), 'v', nval);
			if (kc_mem_store(m, KC_SET, it, 0, NULL) != KC_STORED) {
				fprintf(stderr, "hitratio: store failed\n");
				exit(1);
			}
		}
		kc_item_put(it);
	}
	kc_mem_stats(m, st);
	kc_mem_free(m);
	return (double)hits / (double)len;
}

int main(int argc, char **argv)
{
	static const uint32_t keys[] = {100000, 1000000};
	static const double skews[] = {0.8, 0.9, 0.99};
	static const unsigned pcts[] = {1, 5, 10};
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	struct timespec t0, t1;
	double sum_ratio = 0;
	int rows = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("%-8s %-5s %-6s %-10s %-9s %-9s %-7s %s\n", "keys", "zipf", "cache", "bytes",
	       "W-TinyLFU", "LRU", "ratio", "rej/evict");
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		uint32_t n = keys[k];
		size_t len = (size_t)((n < 500000 ? 2e6 : 4e6) * scale), ws = 0;

		for (uint32_t r = 0; r < n; r++)
			ws += size_of(r);
		for (size_t z = 0; z < sizeof(skews) / sizeof(skews[0]); z++) {
			uint32_t *trace = zipf_trace(n, skews[z], len, 42 + k * 10 + z);

			for (size_t p = 0; p < sizeof(pcts) / sizeof(pcts[0]); p++) {
				size_t cap = ws / 100 * pcts[p];
				struct kc_mem_stats st;
				double w = run_mem(trace, len, cap, &st);
				double l = run_lru(trace, len, n, cap);

				printf("%-8u %-5.2f %2u%%    %-10zu %6.2f%%   %6.2f%%   %-7.3f "
				       "%.1f%%\n",
				       n, skews[z], pcts[p], cap, 100 * w, 100 * l, w / l,
				       st.evictions ? 100.0 * st.admissions_rejected / st.evictions
						    : 0.0);
				fflush(stdout);
				sum_ratio += w / l;
				rows++;
			}
			free(trace);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("mean W-TinyLFU/LRU %.3f over %d runs; %.1f s\n", sum_ratio / rows, rows,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
