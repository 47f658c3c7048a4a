/* kc_store_tool.c: drives the object store (user/store*.c) from the integration tests.
 *   kc_store_tool [-m MAX_BYTES] [-t TIMEOUT_MS] [-x] put SPEC KEY FILE|-
 *   kc_store_tool [...] get SPEC KEY [FILE]     (the value to FILE, or to stdout)
 *   kc_store_tool [...] del SPEC KEY
 *   kc_store_tool [...] stat SPEC               (the counters, one "name value" a line)
 *   kc_store_tool [...] stress SPEC THREADS OPS (threads put, get and del 8 shared keys with
 *                                                self-checking values; fails on a torn read)
 * -p: stress uses 8 keys of each thread's own instead of shared ones (for servers whose PUT
 * is not atomic, as s3rver's, which writes the file in place).
 * -x: KEY is given in hex (binary keys). Exit status: 0 ok, 1 miss, 2 error, 3 full, 4 corrupt,
 * 5 usage or open error; the store's message goes to stderr.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "tiers/store/store.h"
#include "../../lib/selfval.h"

static int usage(void)
{
	fprintf(stderr, "usage: kc_store_tool [-m MAX_BYTES] [-t TIMEOUT_MS] [-x] [-p] "
			"put|get|del|stat|stress SPEC [KEY [FILE] | THREADS OPS]\n");
	return 5;
}

static int exit_code(enum kc_store_res r)
{
	switch (r) {
	case KC_STORE_OK:
		return 0;
	case KC_STORE_MISS:
		return 1;
	case KC_STORE_FULL:
		return 3;
	case KC_STORE_CORRUPT:
		return 4;
	default:
		return 2;
	}
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 65536, len = 0, got;
	char *p = malloc(cap), *q;

	if (!f || !p) {
		free(p);
		return NULL;
	}
	while ((got = fread(p + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap) {
			q = realloc(p, cap *= 2);
			if (!q) {
				free(p);
				return NULL;
			}
			p = q;
		}
	}
	if (f != stdin)
		fclose(f);
	*n = len;
	return p;
}

static int unhex(const char *s, char *out, size_t *n)
{
	size_t len = strlen(s);

	if (len % 2 || len / 2 > KC_STORE_KEY_MAX)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (char)v;
	}
	*n = len / 2;
	return 0;
}

/* ---- stress: a value proves itself whole: [u32 length][u32 seed][bytes from the seed] ---- */

static _Atomic unsigned long n_ops, n_hits, n_bad, n_err;
static bool private_keys;

#define VAL_SPAN 20000 /* values of 8 to 8 + VAL_SPAN - 1 bytes */

struct stress {
	struct kc_store *s;
	unsigned id, ops;
};

static void *stress_thread(void *arg)
{
	struct stress *t = arg;
	unsigned char *buf = malloc(20008);
	uint32_t rnd = t->id * 2654435761u + 7;
	char key[32], err[512];

	for (unsigned i = 0; buf && i < t->ops; i++) {
		enum kc_store_res r;
		void *v;
		size_t n;

		rnd = rnd * 1103515245 + 12345;
		if (private_keys)
			snprintf(key, sizeof(key), "stress-%u-%u", t->id, (rnd >> 8) % 8);
		else
			snprintf(key, sizeof(key), "stress-%u", (rnd >> 8) % 8);
		switch ((rnd >> 16) % 4) {
		case 0:
			r = kc_store_put(t->s, key, strlen(key), buf,
					 selfval_make(buf, rnd, VAL_SPAN), err, sizeof(err));
			break;
		case 1:
			r = kc_store_del(t->s, key, strlen(key), err, sizeof(err));
			break;
		default:
			r = kc_store_get(t->s, key, strlen(key), &v, &n, err, sizeof(err));
			if (r == KC_STORE_OK) {
				atomic_fetch_add(&n_hits, 1);
				if (!selfval_ok(v, n, VAL_SPAN))
					atomic_fetch_add(&n_bad, 1);
				free(v);
			}
		}
		atomic_fetch_add(&n_ops, 1);
		if (r < 0 && atomic_fetch_add(&n_err, 1) < 3)
			fprintf(stderr, "kc_store_tool: stress: %s: %s\n", kc_store_res_name(r),
				err);
	}
	free(buf);
	return NULL;
}

static enum kc_store_res stress(struct kc_store *s, unsigned threads, unsigned ops)
{
	pthread_t tid[64];
	struct stress t[64];

	if (threads < 1 || threads > 64)
		return KC_STORE_ERR;
	for (unsigned i = 0; i < threads; i++) {
		t[i] = (struct stress){s, i, ops};
		pthread_create(&tid[i], NULL, stress_thread, &t[i]);
	}
	for (unsigned i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	printf("stress: %lu ops, %lu hits, %lu torn or wrong values, %lu errors\n",
	       atomic_load(&n_ops), atomic_load(&n_hits), atomic_load(&n_bad), atomic_load(&n_err));
	return atomic_load(&n_bad) || atomic_load(&n_err) || atomic_load(&n_ops) != threads * ops
		   ? KC_STORE_ERR
		   : KC_STORE_OK;
}

int main(int argc, char **argv)
{
	struct kc_store_opts o = {0};
	struct kc_store_stats st;
	char err[1024] = "", key[KC_STORE_KEY_MAX + 1];
	enum kc_store_res r = KC_STORE_OK;
	struct kc_store *s;
	size_t nkey = 0, n = 0;
	void *val = NULL;
	bool hex = false;
	int c;

	while ((c = getopt(argc, argv, "m:t:xp")) != -1) {
		if (c == 'm')
			o.max_bytes = strtoull(optarg, NULL, 0);
		else if (c == 't')
			o.timeout_ms = (uint32_t)strtoul(optarg, NULL, 0);
		else if (c == 'x')
			hex = true;
		else if (c == 'p')
			private_keys = true;
		else
			return usage();
	}
	argv += optind;
	argc -= optind;
	if (argc < 2)
		return usage();
	if (argc >= 3 && strcmp(argv[0], "stress")) {
		if (hex ? unhex(argv[2], key, &nkey) : (nkey = strlen(argv[2])) > sizeof(key))
			return usage();
		if (!hex)
			memcpy(key, argv[2], nkey);
	}
	kc_log_set_level(KC_LOG_WARN);
	o.spec = argv[1];
	s = kc_store_open(&o, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "kc_store_tool: open: %s\n", err);
		return 5;
	}
	if (!strcmp(argv[0], "put") && argc == 4) {
		char *data = slurp(argv[3], &n);

		if (!data) {
			fprintf(stderr, "kc_store_tool: read %s: %s\n", argv[3], strerror(errno));
			kc_store_close(s);
			return 5;
		}
		r = kc_store_put(s, key, nkey, data, n, err, sizeof(err));
		free(data);
	} else if (!strcmp(argv[0], "get") && (argc == 3 || argc == 4)) {
		r = kc_store_get(s, key, nkey, &val, &n, err, sizeof(err));
		if (r == KC_STORE_OK) {
			FILE *f = argc == 4 ? fopen(argv[3], "wb") : stdout;

			if (!f || fwrite(val, 1, n, f) != n || (f != stdout && fclose(f))) {
				fprintf(stderr, "kc_store_tool: write value: %s\n",
					strerror(errno));
				r = KC_STORE_ERR;
			}
			free(val);
		}
	} else if (!strcmp(argv[0], "del") && argc == 3) {
		r = kc_store_del(s, key, nkey, err, sizeof(err));
	} else if (!strcmp(argv[0], "stress") && argc == 4) {
		r = stress(s, (unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
		strcpy(err, "stress failed");
	} else if (!strcmp(argv[0], "stat") && argc == 2) {
		kc_store_get_stats(s, &st);
		printf("kind %s\nobjects %llu\nbytes %llu\nmax_bytes %llu\n", kc_store_kind(s),
		       (unsigned long long)st.objects, (unsigned long long)st.bytes,
		       (unsigned long long)st.max_bytes);
	} else {
		kc_store_close(s);
		return usage();
	}
	if (r < 0)
		fprintf(stderr, "kc_store_tool: %s: %s\n", kc_store_res_name(r), err);
	kc_store_close(s);
	return exit_code(r);
}
