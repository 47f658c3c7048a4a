/* kc_consist: a memcached client for the kernel tier's integration tests (kernel_*.sh), built by
 * those scripts with cc. Writes go over TCP, reads over UDP (memcached frame header, one
 * datagram), so the reads can be answered by XDP. Exit 0 when every check held, 1 on a
 * violation (printed), 2 on usage or I/O errors.
 *
 *   kc_consist get  HOST PORT KEY COUNT VALUE   COUNT sequential UDP gets must all return VALUE
 *   kc_consist seq  HOST PORT KEY ROUNDS        each round: set seq over TCP, then two UDP gets
 *                                               must return that seq (never an older one)
 *   kc_consist race HOST PORT KEY WRITES READERS  one TCP writer of WRITES increasing seqs and
 *                                               READERS UDP reader threads at the same time,
 *                                               then a linearizability check of the history
 *   kc_consist watch HOST PORT KEY MS           UDP gets for MS milliseconds; prints how often
 *                                               each value came back, and how many got no reply
 *   kc_consist show HOST PORT KEY               one UDP get: prints the value, MISS or NOREPLY
 *
 * KC_PAD=N in the environment pads each get with spaces (memcached's separator) to at least N
 * bytes of text, for experiments with the room XDP has to grow a frame into a reply.
 *
 * Values carry their sequence number: "s<seq, 10 digits>-" padded with 'x' to VLEN bytes.
 * The race check, for one register written by one client in increasing order: a read that
 * returned seq s, issued at inv and answered at resp, is linearizable only if
 *   (a) the write of s began before resp (nothing is read from the future),
 *   (b) no write of a later seq had been acknowledged before inv (nothing stale), and
 *   (c) no read that ended before inv returned a later seq (no new-old inversion).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define VLEN	    40
#define REPLY_MAX   2048
#define UDP_WAIT_MS 300
#define NO_REPLY    (-1) /* read outcomes besides a seq */
#define MISS	    (-2)
#define BAD	    (-3)

static const char *host, *key;
static int port, pad;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "kc_consist: %s: %s\n", what, strerror(errno));
	exit(2);
}

static struct sockaddr_in server(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "kc_consist: bad IPv4 address %s\n", host);
		exit(2);
	}
	return sa;
}

static int tcp_open(void)
{
	struct sockaddr_in sa = server();
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("tcp connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int udp_open(void)
{
	struct sockaddr_in sa = server();
	struct timeval tv = {.tv_sec = 0, .tv_usec = UDP_WAIT_MS * 1000};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("udp connect");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void render(char *v, long seq)
{
	int n = snprintf(v, VLEN + 1, "s%010ld-", seq);

	memset(v + n, 'x', (size_t)(VLEN - n));
	v[VLEN] = 0;
}

/* set over TCP, waiting for STORED. */
static void tcp_set(int fd, const char *value)
{
	char req[512], rep[64];
	size_t got = 0;
	int n = snprintf(req, sizeof(req), "set %s 0 0 %zu\r\n%s\r\n", key, strlen(value), value);

	if (write(fd, req, (size_t)n) != n)
		die("tcp write");
	while (got < 8) {
		ssize_t r = read(fd, rep + got, sizeof(rep) - 1 - got);

		if (r <= 0)
			die("tcp read");
		got += (size_t)r;
	}
	rep[got] = 0;
	if (strcmp(rep, "STORED\r\n")) {
		fprintf(stderr, "kc_consist: set: unexpected reply %s\n", rep);
		exit(2);
	}
}

/* One UDP get. Returns the value's bytes in val (NUL-terminated) and 0, or MISS, NO_REPLY or
 * BAD (a reply that is not exactly one VALUE block for key, or END). */
static int udp_get(int fd, uint16_t id, char *val, size_t vcap)
{
	char req[REPLY_MAX], rep[REPLY_MAX + 1], hdr[300];
	int n = snprintf(req + 8, sizeof(req) - 8, "get %s", key);

	while (n + 2 < pad && n + 2 < REPLY_MAX - 8)
		req[8 + n++] = ' ';
	memcpy(req + 8 + n, "\r\n", 2);
	n += 2;
	unsigned flags, len;
	ssize_t r;

	req[0] = (char)(id >> 8);
	req[1] = (char)id;
	memcpy(req + 2, "\0\0\0\1\0\0", 6);
	if (send(fd, req, (size_t)n + 8, 0) != n + 8)
		die("udp send");
	for (;;) {
		r = recv(fd, rep, REPLY_MAX, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return NO_REPLY;
		if (r < 0 && errno == ECONNREFUSED)
			return NO_REPLY; /* ICMP port unreachable: nobody listens */
		if (r < 0)
			die("udp recv");
		/* A late reply to an earlier request that timed out: not ours. */
		if (r >= 8 && ((uint8_t)rep[0] << 8 | (uint8_t)rep[1]) == id)
			break;
	}
	rep[r] = 0;
	if (memcmp(rep + 2, "\0\0\0\1\0\0", 6))
		return BAD;
	if (!strcmp(rep + 8, "END\r\n"))
		return MISS;
	snprintf(hdr, sizeof(hdr), "VALUE %s ", key);
	if (strncmp(rep + 8, hdr, strlen(hdr)) ||
	    sscanf(rep + 8 + strlen(hdr), "%u %u", &flags, &len) != 2 || len >= vcap)
		return BAD;
	{
		char *body = strstr(rep + 8, "\r\n");

		if (!body || (size_t)(r - (body + 2 - rep)) != len + 7 ||
		    memcmp(body + 2 + len, "\r\nEND\r\n", 7))
			return BAD;
		memcpy(val, body + 2, len);
		val[len] = 0;
	}
	return 0;
}

/* The seq a value carries, or BAD. */
static long seq_of(const char *v)
{
	char want[VLEN + 1];
	long s;

	if (strlen(v) != VLEN || sscanf(v, "s%10ld-", &s) != 1)
		return BAD;
	render(want, s);
	return strcmp(want, v) ? BAD : s;
}

static int cmd_get(long count, const char *want)
{
	int fd = udp_open();
	char val[REPLY_MAX];
	long good = 0;

	for (long i = 0; i < count; i++) {
		int r = udp_get(fd, (uint16_t)i, val, sizeof(val));

		if (r || strcmp(val, want)) {
			fprintf(stderr, "get %ld: %s\n", i,
				r == NO_REPLY ? "no reply"
				: r == MISS   ? "miss"
				: r	      ? "bad reply"
					      : val);
			return 1;
		}
		good++;
	}
	printf("gets %ld, all returned the value\n", good);
	return 0;
}

static int cmd_seq(long rounds)
{
	int t = tcp_open(), u = udp_open();
	char v[VLEN + 1], got[REPLY_MAX];
	long noreply = 0;
	uint16_t id = 0;

	for (long s = 1; s <= rounds; s++) {
		render(v, s);
		tcp_set(t, v);
		for (int g = 0; g < 2; g++) {
			int r = udp_get(u, ++id, got, sizeof(got));

			if (r == NO_REPLY) {
				noreply++;
				continue;
			}
			if (r || seq_of(got) != s) {
				fprintf(stderr,
					"VIOLATION: round %ld get %d after the set was acked: %s\n",
					s, g,
					r == MISS ? "miss"
					: r	  ? "bad reply"
						  : got);
				return 1;
			}
		}
	}
	printf("rounds %ld: every get returned the value just set (%ld gets without reply)\n",
	       rounds, noreply);
	return 0;
}

struct op {
	uint64_t inv, resp;
	long seq;
};

struct reader {
	pthread_t th;
	struct op *ops;
	long n, cap;
};

static long writes;
static struct op *wops;
static volatile int writing = 1;

static void *writer_main(void *arg)
{
	int fd = tcp_open();
	char v[VLEN + 1];

	(void)arg;
	for (long s = 1; s <= writes; s++) {
		render(v, s);
		wops[s].seq = s;
		wops[s].inv = now_ns();
		tcp_set(fd, v);
		wops[s].resp = now_ns();
	}
	writing = 0;
	close(fd);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	int fd = udp_open();
	char got[REPLY_MAX];
	uint16_t id = 0;

	while (writing && rd->n < rd->cap) {
		struct op *o = &rd->ops[rd->n++];
		int r;

		o->inv = now_ns();
		r = udp_get(fd, ++id, got, sizeof(got));
		o->resp = now_ns();
		o->seq = r ? r : seq_of(got);
	}
	close(fd);
	return NULL;
}

static int cmp_resp(const void *a, const void *b)
{
	const struct op *x = a, *y = b;

	return x->resp < y->resp ? -1 : x->resp > y->resp;
}

/* Largest i with a[i].key < t (a sorted by key), or -1. */
static long last_before(const struct op *a, long n, uint64_t t, int by_resp)
{
	long lo = 0, hi = n;

	while (lo < hi) {
		long mid = (lo + hi) / 2;

		if ((by_resp ? a[mid].resp : a[mid].inv) < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

static int cmd_race(long nwrites, int nreaders)
{
	struct reader *rd = calloc((size_t)nreaders, sizeof(*rd));
	struct op *all, *pmax;
	long total = 0, noreply = 0, bad = 0, k = 0;
	pthread_t wt;
	int t;

	writes = nwrites;
	wops = calloc((size_t)nwrites + 1, sizeof(*wops));
	if (!rd || !wops)
		die("calloc");
	/* seq 0 exists before anyone starts, so every read has something to return. */
	t = tcp_open();
	{
		char v[VLEN + 1];

		render(v, 0);
		tcp_set(t, v);
	}
	close(t);
	wops[0] = (struct op){0, 0, 0};
	for (int i = 0; i < nreaders; i++) {
		rd[i].cap = nwrites * 8 + 1000;
		rd[i].ops = calloc((size_t)rd[i].cap, sizeof(struct op));
		if (!rd[i].ops || pthread_create(&rd[i].th, NULL, reader_main, &rd[i]))
			die("reader");
	}
	if (pthread_create(&wt, NULL, writer_main, NULL))
		die("writer");
	pthread_join(wt, NULL);
	for (int i = 0; i < nreaders; i++) {
		pthread_join(rd[i].th, NULL);
		total += rd[i].n;
	}
	all = calloc((size_t)total + 1, sizeof(*all));
	pmax = calloc((size_t)total + 1, sizeof(*pmax));
	if (!all || !pmax)
		die("calloc");
	for (int i = 0; i < nreaders; i++)
		for (long j = 0; j < rd[i].n; j++) {
			if (rd[i].ops[j].seq == NO_REPLY) {
				noreply++;
				continue;
			}
			all[k++] = rd[i].ops[j];
		}
	total = k;
	qsort(all, (size_t)total, sizeof(*all), cmp_resp);
	/* pmax[i]: the read with the largest seq among all[0..i] (by resp). */
	for (long i = 0; i < total; i++)
		pmax[i] = i && pmax[i - 1].seq >= all[i].seq ? pmax[i - 1] : all[i];
	for (long i = 0; i < total; i++) {
		const struct op *r = &all[i];
		long acked = last_before(wops + 1, nwrites, r->inv, 1) + 1; /* writes acked < inv */
		long p;

		if (r->seq < 0) {
			fprintf(stderr, "VIOLATION: a read got %s\n",
				r->seq == MISS ? "a miss" : "a bad reply");
			bad++;
			continue;
		}
		if (r->seq > nwrites || (r->seq > 0 && wops[r->seq].inv >= r->resp)) {
			fprintf(stderr, "VIOLATION: read seq %ld before its write began\n", r->seq);
			bad++;
		}
		if (r->seq < acked) {
			fprintf(
			    stderr,
			    "VIOLATION: stale read: seq %ld, but seq %ld was acknowledged %.1f us "
			    "before the read was sent\n",
			    r->seq, acked, (double)(r->inv - wops[acked].resp) / 1000.0);
			bad++;
		}
		p = last_before(all, total, r->inv, 1);
		if (p >= 0 && pmax[p].seq > r->seq) {
			fprintf(stderr,
				"VIOLATION: new-old inversion: read seq %ld, but a read that ended "
				"before it began returned seq %ld\n",
				r->seq, pmax[p].seq);
			bad++;
		}
		if (bad > 20)
			break;
	}
	printf("race: %ld writes, %d readers, %ld reads checked, %ld without reply, %ld "
	       "violations\n",
	       nwrites, nreaders, total, noreply, bad);
	return bad ? 1 : 0;
}

static int cmd_watch(long ms)
{
	int fd = udp_open();
	uint64_t end = now_ns() + (uint64_t)ms * 1000000ULL;
	char got[REPLY_MAX], vals[16][REPLY_MAX];
	long counts[16] = {0}, none = 0, miss = 0, other = 0;
	int nvals = 0;
	uint16_t id = 0;

	while (now_ns() < end) {
		int r = udp_get(fd, ++id, got, sizeof(got)), i;

		if (r == NO_REPLY) {
			none++;
			continue;
		}
		if (r == MISS) {
			miss++;
			continue;
		}
		if (r) {
			other++;
			continue;
		}
		for (i = 0; i < nvals && strcmp(vals[i], got); i++)
			;
		if (i == nvals && nvals < 16)
			strcpy(vals[nvals++], got);
		if (i < 16)
			counts[i]++;
		usleep(2000);
	}
	for (int i = 0; i < nvals; i++)
		printf("value %s %ld\n", vals[i], counts[i]);
	printf("miss %ld\nnoreply %ld\nbad %ld\n", miss, none, other);
	return 0;
}

static int cmd_show(void)
{
	int fd = udp_open(), r;
	char got[REPLY_MAX];

	r = udp_get(fd, (uint16_t)getpid(), got, sizeof(got));
	puts(r == NO_REPLY ? "NOREPLY" : r == MISS ? "MISS" : r ? "BAD" : got);
	return 0;
}

int main(int argc, char **argv)
{
	pad = getenv("KC_PAD") ? atoi(getenv("KC_PAD")) : 0;
	if (argc == 5 && !strcmp(argv[1], "show")) {
		host = argv[2];
		port = atoi(argv[3]);
		key = argv[4];
		return cmd_show();
	}
	if (argc < 6) {
		fprintf(stderr,
			"usage: kc_consist get|seq|race|watch HOST PORT KEY ARGS... (see the "
			"header of kc_consist.c)\n");
		return 2;
	}
	host = argv[2];
	port = atoi(argv[3]);
	key = argv[4];
	if (!strcmp(argv[1], "get") && argc == 7)
		return cmd_get(atol(argv[5]), argv[6]);
	if (!strcmp(argv[1], "seq") && argc == 6)
		return cmd_seq(atol(argv[5]));
	if (!strcmp(argv[1], "race") && argc == 7)
		return cmd_race(atol(argv[5]), atoi(argv[6]));
	if (!strcmp(argv[1], "watch") && argc == 6)
		return cmd_watch(atol(argv[5]));
	fprintf(stderr, "kc_consist: bad arguments\n");
	return 2;
}
