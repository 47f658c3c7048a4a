/* test_bench_raw.c: kcache-bench's safety check on raw frames (tools/bench/bench_raw.c): which
 * IPv4 destinations kb_v4_allowed() accepts, and the frames and sockets kb_raw_check() refuses
 * before the --flood-xdp packet sender sends anything. No root needed: the frames are built by
 * kb_raw_frame() over a hand-made header; only the case with a real packet socket needs
 * CAP_NET_RAW, and it is skipped (reported as such) without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../../tools/bench/bench.h"

static const uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x01};

static bool allowed(const char *ip)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
	return kb_v4_allowed(&a);
}

static void test_v4_allowed(void **state)
{
	(void)state;
	assert_true(allowed("127.0.0.1"));
	assert_true(allowed("127.255.255.255"));
	assert_true(allowed("198.18.0.0"));
	assert_true(allowed("198.18.0.1"));
	assert_true(allowed("198.19.255.255"));
	assert_false(allowed("198.17.255.255"));
	assert_false(allowed("198.20.0.0"));
	assert_false(allowed("198.16.0.1"));
	assert_false(allowed("126.255.255.255"));
	assert_false(allowed("128.0.0.1"));
	assert_false(allowed("10.0.0.1"));
	assert_false(allowed("8.8.8.8"));
	assert_false(allowed("0.0.0.0"));
}

/* A target cfg and a kb_raw whose header says src -> dst (IPv4, UDP 40000 -> 11211). */
static void setup_raw(struct kb_cfg *cfg, struct kb_raw *r, const char *target, const char *dst)
{
	struct sockaddr_in *a = (struct sockaddr_in *)&cfg->addr;
	struct in_addr s, d;
	uint8_t *h = r->hdr;
	uint16_t sp = htons(40000), dp = htons(11211);

	memset(cfg, 0, sizeof(*cfg));
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->ifindex = 1;
	a->sin_family = AF_INET;
	a->sin_port = dp;
	assert_int_equal(inet_pton(AF_INET, target, &a->sin_addr), 1);
	cfg->addrlen = sizeof(*a);
	snprintf(cfg->target, sizeof(cfg->target), "%s:11211", target);
	assert_int_equal(inet_pton(AF_INET, "198.18.0.2", &s), 1);
	assert_int_equal(inet_pton(AF_INET, dst, &d), 1);
	memcpy(h, dst_mac, 6);
	memcpy(h + 6, src_mac, 6);
	h[12] = 0x08;
	h[13] = 0x00;
	h[14] = 0x45;
	h[14 + 8] = 64;
	h[14 + 9] = IPPROTO_UDP;
	memcpy(h + 14 + 12, &s, 4);
	memcpy(h + 14 + 16, &d, 4);
	memcpy(h + 34, &sp, 2);
	memcpy(h + 36, &dp, 2);
}

/* Builds a get frame over r into out; returns its length. */
static size_t frame(struct kb_raw *r, char *out)
{
	static const char hdr[8] = {0, 1, 0, 0, 0, 1, 0, 0};
	static const char req[] = "get kb:1\r\n";

	return kb_raw_frame(r, hdr, sizeof(hdr), req, sizeof(req) - 1, out);
}

/* Expects kb_raw_check to refuse with a message holding what. */
static void refused(const struct kb_raw *r, const struct kb_cfg *cfg, const char *f, size_t len,
		    const char *what)
{
	char err[256] = "";

	assert_int_equal(kb_raw_check(r, cfg, f, len, err, sizeof(err)), -EPERM);
	if (!strstr(err, what))
		fail_msg("refused with \"%s\", want a message with \"%s\"", err, what);
}

static void test_frame_refused(void **state)
{
	struct kb_cfg cfg;
	struct kb_raw r;
	char f[KB_FRAME_MAX];
	size_t n;

	(void)state;
	/* a frame to the target: refused only because fd is no packet socket */
	setup_raw(&cfg, &r, "198.18.0.1", "198.18.0.1");
	n = frame(&r, f);
	assert_true(n > KB_RAW_HLEN);
	refused(&r, &cfg, f, n, "not bound");
	/* too short, or not IPv4 */
	refused(&r, &cfg, f, KB_RAW_HLEN - 1, "not IPv4");
	f[13] = 0x06; /* ARP */
	refused(&r, &cfg, f, n, "not IPv4");
	f[13] = 0x00;
	f[14] = 0x46; /* IPv4 with options: not a frame kb_raw_frame makes */
	refused(&r, &cfg, f, n, "not IPv4");
	/* addressed to another host of the range than the target */
	setup_raw(&cfg, &r, "198.18.0.1", "198.18.0.3");
	n = frame(&r, f);
	refused(&r, &cfg, f, n, "not the target");
	/* outside the allowed ranges, even when it is the configured target */
	setup_raw(&cfg, &r, "10.1.2.3", "10.1.2.3");
	n = frame(&r, f);
	refused(&r, &cfg, f, n, "outside");
	setup_raw(&cfg, &r, "198.20.0.1", "198.20.0.1");
	n = frame(&r, f);
	refused(&r, &cfg, f, n, "outside");
	/* an IPv6 target: no raw IPv4 frame may go to it */
	setup_raw(&cfg, &r, "198.18.0.1", "198.18.0.1");
	n = frame(&r, f);
	cfg.addr.ss_family = AF_INET6;
	refused(&r, &cfg, f, n, "not the target");
	/* a source MAC that is not the interface's */
	setup_raw(&cfg, &r, "198.18.0.1", "198.18.0.1");
	n = frame(&r, f);
	f[11] ^= 1;
	refused(&r, &cfg, f, n, "source MAC");
}

/* With a packet socket bound to lo: accepted when r->ifindex is lo's, refused otherwise. */
static void test_bound_interface(void **state)
{
	struct sockaddr_ll ll = {.sll_family = AF_PACKET};
	struct kb_cfg cfg;
	struct kb_raw r;
	char f[KB_FRAME_MAX], err[256] = "";
	size_t n;
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

	(void)state;
	if (fd < 0)
		skip(); /* needs CAP_NET_RAW */
	ll.sll_ifindex = (int)if_nametoindex("lo");
	assert_true(ll.sll_ifindex > 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ll, sizeof(ll)), 0);
	setup_raw(&cfg, &r, "198.18.0.1", "198.18.0.1");
	r.fd = fd;
	r.ifindex = ll.sll_ifindex;
	n = frame(&r, f);
	if (kb_raw_check(&r, &cfg, f, n, err, sizeof(err)))
		fail_msg("a frame to the target from a socket bound to its interface: %s", err);
	r.ifindex = ll.sll_ifindex + 1000;
	refused(&r, &cfg, f, n, "not bound");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v4_allowed),
	    cmocka_unit_test(test_frame_refused),
	    cmocka_unit_test(test_bound_interface),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
