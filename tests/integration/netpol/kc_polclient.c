/* kc_polclient: a memcached client for the network policy's integration tests (policy_*.sh),
 * built by those scripts with cc. Every mode binds to a source address SRC (the policy's
 * subject) and talks to HOST:PORT. Exit 0 when it ran (the counts are the result), 2 on usage
 * or I/O errors.
 *
 *   kc_polclient burst  SRC HOST PORT N WAIT_MS  sends N UDP "get k" datagrams back to back
 *                                                (request ids 1..N), then collects replies for
 *                                                WAIT_MS; prints "sent N replies R ms T" (R:
 *                                                distinct ids answered, T: ms the sending took)
 *   kc_polclient tcp    SRC HOST PORT MS         connects and sends "version": prints VERSION,
 *                                                REFUSED (an RST: nothing listens, nothing
 *                                                dropped it) or NOREPLY (no answer within MS)
 *   kc_polclient stream SRC HOST PORT STOPFILE   UDP gets one at a time (each waits up to 2 s
 *                                                for its reply) until STOPFILE exists; prints
 *                                                "sent N replies R lost L"
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
	fprintf(stderr, "kc_polclient: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int sock_to(int type, const char *src, const char *host, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, d = {.sin_family = AF_INET};
	int fd = socket(AF_INET, type, 0);

	if (fd < 0)
		die("socket");
	if (inet_pton(AF_INET, src, &a.sin_addr) != 1 ||
	    inet_pton(AF_INET, host, &d.sin_addr) != 1) {
		fprintf(stderr, "kc_polclient: bad address\n");
		exit(2);
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
		die("bind the source address");
	if (type == SOCK_DGRAM) {
		int big = 8 << 20; /* a burst's replies must not overflow it (root: FORCE) */

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	}
	d.sin_port = htons((uint16_t)port);
	if (type == SOCK_DGRAM && connect(fd, (struct sockaddr *)&d, sizeof(d)))
		die("connect");
	if (type == SOCK_STREAM) {
		fcntl(fd, F_SETFL, O_NONBLOCK);
		if (connect(fd, (struct sockaddr *)&d, sizeof(d)) && errno != EINPROGRESS)
			die("connect");
	}
	return fd;
}

static void send_get(int fd, uint16_t id)
{
	char req[] = "\0\0\0\0\0\1\0\0get k\r\n";

	req[0] = (char)(id >> 8);
	req[1] = (char)id;
	if (send(fd, req, sizeof(req) - 1, 0) < 0 && errno != ECONNREFUSED)
		die("send");
}

/* Waits up to ms for one reply datagram; returns its request id, or -1. */
static int recv_reply(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	unsigned char buf[2048];
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return -1;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 8)
		return -2; /* an ICMP error or a runt: not an answer */
	return buf[0] << 8 | buf[1];
}

static int burst(const char *src, const char *host, int port, int n, int wait_ms)
{
	int fd = sock_to(SOCK_DGRAM, src, host, port), replies = 0;
	unsigned char *seen = calloc((size_t)n + 1, 1);
	uint64_t t0 = now_ms(), t1, end;

	if (!seen)
		die("calloc");
	for (int i = 1; i <= n; i++) {
		send_get(fd, (uint16_t)i);
		/* Take what has come back every 16 requests, so neither side's buffer fills. */
		for (int id; i % 16 == 0 && (id = recv_reply(fd, 0)) != -1;)
			if (id >= 1 && id <= n && !seen[id]) {
				seen[id] = 1;
				replies++;
			}
	}
	t1 = now_ms();
	end = t1 + (uint64_t)wait_ms;
	for (uint64_t t = now_ms(); t < end; t = now_ms()) {
		int id = recv_reply(fd, (int)(end - t));

		if (id >= 1 && id <= n && !seen[id]) {
			seen[id] = 1;
			replies++;
		}
	}
	printf("sent %d replies %d ms %llu\n", n, replies, (unsigned long long)(t1 - t0));
	free(seen);
	close(fd);
	return 0;
}

static int tcp(const char *src, const char *host, int port, int ms)
{
	int fd = sock_to(SOCK_STREAM, src, host, port), err = 0;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	socklen_t len = sizeof(err);
	char buf[64];
	ssize_t n;

	if (poll(&p, 1, ms) <= 0) {
		puts("NOREPLY");
		return 0;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		puts(err == ECONNREFUSED ? "REFUSED" : "NOREPLY");
		return 0;
	}
	if (send(fd, "version\r\n", 9, 0) != 9)
		die("send");
	p.events = POLLIN;
	if (poll(&p, 1, ms) <= 0 || (n = recv(fd, buf, sizeof(buf) - 1, 0)) <= 0) {
		puts("NOREPLY");
		return 0;
	}
	buf[n] = 0;
	puts(strncmp(buf, "VERSION", 7) ? "NOREPLY" : "VERSION");
	close(fd);
	return 0;
}

static int stream(const char *src, const char *host, int port, const char *stop)
{
	int fd = sock_to(SOCK_DGRAM, src, host, port);
	unsigned long sent = 0, replies = 0, lost = 0;
	struct stat st;
	uint16_t id = 0;

	while (stat(stop, &st)) {
		int got;
		uint64_t end;

		send_get(fd, ++id);
		sent++;
		end = now_ms() + 2000;
		do {
			got = recv_reply(fd, (int)(end - now_ms()));
		} while (got >= 0 && got != id && now_ms() < end); /* a late reply to an older id */
		if (got == id)
			replies++;
		else
			lost++;
	}
	printf("sent %lu replies %lu lost %lu\n", sent, replies, lost);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "burst"))
		return burst(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
	if (argc == 6 && !strcmp(argv[1], "tcp"))
		return tcp(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	if (argc == 6 && !strcmp(argv[1], "stream"))
		return stream(argv[2], argv[3], atoi(argv[4]), argv[5]);
	fprintf(stderr,
		"usage: kc_polclient burst SRC HOST PORT N WAIT_MS | tcp SRC HOST PORT MS | "
		"stream SRC HOST PORT STOPFILE\n");
	return 2;
}
