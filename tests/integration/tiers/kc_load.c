/* kc_load: a pipelined memcached TCP client (and, for rlat, a RESP one) for the lower-tier
 * tests (tier_*.sh) and bench/tiers.sh, built by those scripts with cc. Keys are PREFIX<i>,
 * values TAG-<i>. Exit 0 when every check held, 1 when some did not (printed), 2 on usage or
 * connection errors.
 *
 *   kc_load set   PORT PREFIX FIRST COUNT TAG [ACKED]  stores keys FIRST..FIRST+COUNT-1 with 64
 *                       requests in flight; prints "acked N errors E"; with ACKED, appends each
 *                       acknowledged index to that file as it is acknowledged (so a crash of
 *                       the server mid-load leaves exactly the acknowledged ones listed)
 *   kc_load del   PORT PREFIX FIRST COUNT               deletes them; prints "deleted N"
 *   kc_load check PORT PREFIX FIRST COUNT TAG [KEYS]   gets them (or the indices listed in KEYS,
 *                       one per line) in multi-gets of 100; prints "match M missing X wrong W"
 *                       and exits 1 unless every one matched
 *   kc_load absent PORT PREFIX FIRST COUNT              exits 1 unless none is found
 *   kc_load lat   PORT PREFIX FIRST COUNT                sequential gets of each key; prints
 *                       "p50_us P p99_us Q hits H" (for bench/tiers.sh)
 *   kc_load rlat  PORT KEY 0 COUNT                       the same over RESP: COUNT sequential
 *                       Redis GETs of KEY (a raw Redis GET, timed exactly as lat times kcached)
 *   kc_load files 0 LIST                                 open, read and close each file named
 *                       in LIST; prints "p50_us P p99_us Q" (a raw file read, for comparison)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 64

static int fd = -1;
static char rbuf[1 << 20];
static size_t rlen, roff;

static void die(const char *what)
{
	fprintf(stderr, "kc_load: %s: %s\n", what, errno ? strerror(errno) : "closed");
	exit(2);
}

static void connect_port(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {10, 0};
	int one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void send_all(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

/* Returns the next line (CRLF stripped) or NULL when the connection ends. */
static char *next_line(size_t *n)
{
	for (;;) {
		char *nl = memchr(rbuf + roff, '\n', rlen - roff);

		if (nl) {
			char *line = rbuf + roff;

			*n = (size_t)(nl - line);
			if (*n && line[*n - 1] == '\r')
				(*n)--;
			line[*n] = 0;
			roff = (size_t)(nl - rbuf) + 1;
			return line;
		}
		if (roff) {
			memmove(rbuf, rbuf + roff, rlen - roff);
			rlen -= roff;
			roff = 0;
		}
		if (rlen == sizeof(rbuf))
			return NULL;
		ssize_t r = read(fd, rbuf + rlen, sizeof(rbuf) - rlen);

		if (r <= 0)
			return NULL;
		rlen += (size_t)r;
	}
}

/* Reads exactly n bytes plus CRLF of a value into out (truncated to cap). */
static int read_value(char *out, size_t n, size_t cap)
{
	size_t got = 0;

	while (got < n + 2) {
		if (roff == rlen) {
			ssize_t r = read(fd, rbuf, sizeof(rbuf));

			if (r <= 0)
				return -1;
			rlen = (size_t)r;
			roff = 0;
		}
		size_t take = rlen - roff < n + 2 - got ? rlen - roff : n + 2 - got;

		for (size_t i = 0; i < take; i++, got++)
			if (got < n && got < cap - 1)
				out[got] = rbuf[roff + i];
		roff += take;
	}
	out[n < cap - 1 ? n : cap - 1] = 0;
	return 0;
}

static int cmd_set(const char *prefix, long first, long count, const char *tag, const char *acked)
{
	FILE *af = acked ? fopen(acked, "a") : NULL;
	long sent = 0, done = 0, ok = 0, errs = 0;
	char req[512], val[256];

	if (acked && !af)
		die(acked);
	while (done < count) {
		while (sent < count && sent - done < WINDOW) {
			int vl = snprintf(val, sizeof(val), "%s-%ld", tag, first + sent);
			int n = snprintf(req, sizeof(req), "set %s%ld 0 0 %d\r\n%s\r\n", prefix,
					 first + sent, vl, val);

			send_all(req, (size_t)n);
			sent++;
		}
		size_t n;
		char *line = next_line(&n);

		if (!line)
			break; /* the server went away: report what was acknowledged */
		if (!strcmp(line, "STORED")) {
			ok++;
			if (af) {
				fprintf(af, "%ld\n", first + done);
				fflush(af);
			}
		} else {
			errs++;
			if (errs <= 3)
				fprintf(stderr, "kc_load: set %s%ld: %s\n", prefix, first + done,
					line);
		}
		done++;
	}
	if (af)
		fclose(af);
	printf("acked %ld errors %ld\n", ok, errs);
	return errs ? 1 : 0;
}

static int cmd_del(const char *prefix, long first, long count)
{
	char req[300];
	long deleted = 0;

	for (long i = 0; i < count; i++) {
		size_t n;
		int m = snprintf(req, sizeof(req), "delete %s%ld\r\n", prefix, first + i);

		send_all(req, (size_t)m);
		char *line = next_line(&n);

		if (!line)
			die("read");
		if (!strcmp(line, "DELETED"))
			deleted++;
	}
	printf("deleted %ld\n", deleted);
	return 0;
}

/* Gets idx[0..n) and compares; absent_mode: every key must be missing. */
static int check(const char *prefix, const long *idx, long n, const char *tag, int absent_mode)
{
	long match = 0, missing = 0, wrong = 0, found = 0;
	char req[100 * 300], val[300], want[300];

	for (long b = 0; b < n; b += 100) {
		long e = b + 100 < n ? b + 100 : n, pos = 0;
		int m = snprintf(req, sizeof(req), "get");

		for (long i = b; i < e; i++)
			m += snprintf(req + m, sizeof(req) - (size_t)m, " %s%ld", prefix, idx[i]);
		m += snprintf(req + m, sizeof(req) - (size_t)m, "\r\n");
		send_all(req, (size_t)m);
		for (;;) {
			size_t ln;
			char *line = next_line(&ln), key[300];
			unsigned flags, bytes;

			if (!line)
				die("read");
			if (!strcmp(line, "END"))
				break;
			if (sscanf(line, "VALUE %299s %u %u", key, &flags, &bytes) != 3) {
				fprintf(stderr, "kc_load: unexpected: %s\n", line);
				exit(2);
			}
			if (read_value(val, bytes, sizeof(val)))
				die("read value");
			found++;
			/* which index is it? keys come back in request order */
			long i;

			for (i = b + pos; i < e; i++) {
				char k[300];

				snprintf(k, sizeof(k), "%s%ld", prefix, idx[i]);
				if (!strcmp(k, key))
					break;
				missing++;
				if (!absent_mode && missing <= 5)
					fprintf(stderr, "kc_load: missing %s\n", k);
			}
			if (i == e) {
				fprintf(stderr, "kc_load: unrequested key %s\n", key);
				exit(2);
			}
			pos = i - b + 1;
			snprintf(want, sizeof(want), "%s-%ld", tag, idx[i]);
			if (!strcmp(val, want)) {
				match++;
			} else {
				wrong++;
				if (wrong <= 5)
					fprintf(stderr, "kc_load: %s is '%s', want '%s'\n", key,
						val, want);
			}
		}
		missing += e - (b + pos);
	}
	if (absent_mode) {
		printf("found %ld of %ld (want none)\n", found, n);
		return found ? 1 : 0;
	}
	printf("match %ld missing %ld wrong %ld\n", match, missing, wrong);
	return match == n ? 0 : 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_quantiles(uint64_t *ns, long n)
{
	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	printf("p50_us %.1f p99_us %.1f", ns[n / 2] / 1e3, ns[n * 99 / 100] / 1e3);
}

static int cmd_files(const char *list)
{
	FILE *f = fopen(list, "r");
	uint64_t *ns = calloc(1 << 20, sizeof(*ns));
	char path[4096], buf[65536];
	long n = 0;

	if (!f || !ns)
		die(list);
	while (n < (1 << 20) && fgets(path, sizeof(path), f)) {
		struct timespec a, b;

		path[strcspn(path, "\n")] = 0;
		clock_gettime(CLOCK_MONOTONIC, &a);
		FILE *g = fopen(path, "r");

		if (!g)
			die(path);
		while (fread(buf, 1, sizeof(buf), g) > 0)
			;
		fclose(g);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ns[n++] =
		    (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	}
	fclose(f);
	if (!n)
		die("no files");
	print_quantiles(ns, n);
	printf("\n");
	free(ns);
	return 0;
}

/* One timed request for cmd_lat: sends it, reads the whole reply, returns the hits in it. */
typedef long (*one_get)(const char *key);

/* memcached text protocol: "get KEY", then VALUE blocks up to END. */
static long mc_get(const char *key)
{
	static char val[65536];
	char req[300];
	int m = snprintf(req, sizeof(req), "get %s\r\n", key);
	long hits = 0;

	send_all(req, (size_t)m);
	for (;;) {
		size_t ln;
		char *line = next_line(&ln), k[300];
		unsigned flags, bytes;

		if (!line)
			die("read");
		if (!strcmp(line, "END"))
			return hits;
		if (sscanf(line, "VALUE %299s %u %u", k, &flags, &bytes) != 3 ||
		    read_value(val, bytes, sizeof(val)))
			die("reply");
		hits++;
	}
}

/* RESP: GET KEY as a multibulk, then one bulk reply ($-1 is nil). */
static long resp_get(const char *key)
{
	static char val[65536];
	char req[300];
	size_t kl = strlen(key), ln;
	int m = snprintf(req, sizeof(req), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", kl, key);
	char *line;
	long bytes;

	send_all(req, (size_t)m);
	if (!(line = next_line(&ln)) || line[0] != '$')
		die("reply");
	bytes = atol(line + 1);
	if (bytes < 0)
		return 0;
	if (read_value(val, (size_t)bytes, sizeof(val)))
		die("reply");
	return 1;
}

/* COUNT sequential requests, one in flight, each timed from send to the end of its reply.
 * With first < 0 every request names PREFIX itself (one key, like redis-benchmark -r 1). */
static int cmd_lat(one_get get, const char *prefix, long first, long n)
{
	uint64_t *ns = calloc((size_t)n, sizeof(*ns));
	char key[300];
	long hits = 0;

	if (!ns)
		die("calloc");
	for (long i = 0; i < n; i++) {
		struct timespec a, b;

		if (first < 0)
			snprintf(key, sizeof(key), "%s", prefix);
		else
			snprintf(key, sizeof(key), "%s%ld", prefix, first + i);
		clock_gettime(CLOCK_MONOTONIC, &a);
		hits += get(key);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ns[i] = (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	}
	print_quantiles(ns, n);
	printf(" hits %ld\n", hits);
	free(ns);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: see the comment at the top of kc_load.c\n");
		return 2;
	}
	if (!strcmp(argv[1], "files"))
		return cmd_files(argv[3]);
	connect_port(atoi(argv[2]));
	if (argc < 6)
		return 2;
	if (!strcmp(argv[1], "lat"))
		return cmd_lat(mc_get, argv[3], atol(argv[4]), atol(argv[5]));
	if (!strcmp(argv[1], "rlat"))
		return cmd_lat(resp_get, argv[3], -1, atol(argv[5]));
	const char *prefix = argv[3];
	long first = atol(argv[4]), count = atol(argv[5]);

	if (!strcmp(argv[1], "set") && argc >= 7)
		return cmd_set(prefix, first, count, argv[6], argc > 7 ? argv[7] : NULL);
	if (!strcmp(argv[1], "del"))
		return cmd_del(prefix, first, count);
	if (!strcmp(argv[1], "check") || !strcmp(argv[1], "absent")) {
		long *idx = malloc(sizeof(long) * (size_t)(count > 0 ? count : 1)), n = 0;

		if (!idx)
			die("malloc");
		if (argc > 7) {
			FILE *f = fopen(argv[7], "r");

			if (!f)
				die(argv[7]);
			while (n < count && fscanf(f, "%ld", &idx[n]) == 1)
				n++;
			fclose(f);
		} else {
			for (n = 0; n < count; n++)
				idx[n] = first + n;
		}
		int rc = check(prefix, idx, n, argc > 6 ? argv[6] : "", argv[1][0] == 'a');

		free(idx);
		return rc;
	}
	fprintf(stderr, "kc_load: unknown command %s\n", argv[1]);
	return 2;
}
