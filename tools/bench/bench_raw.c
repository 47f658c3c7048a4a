/* bench_raw.c: kcache-bench's padded-frame sender (see bench.h, --pad-frames).
 *
 * Why: on a veth pair, a frame that reaches a native XDP program from the stack is first copied
 * into a page-pool fragment sized to the frame (Linux 6.7 and later), so the program can grow it
 * by only a few dozen bytes: an XDP reply much longer than its request (a get answered with a
 * 300-byte value) cannot be built, and the program has to pass it up. NIC drivers give XDP
 * half- or full-page buffers, where the reply fits. Sending each request as an Ethernet frame
 * padded past the longest reply gives the XDP program on the veth the room a NIC would: the IP
 * and UDP lengths still describe the request only, so the padding is an Ethernet trailer that
 * the stack trims and the parsers ignore.
 *
 * The frames carry the UDP socket's own addresses and ports, so replies arrive on that socket as
 * usual; only the sending goes through an AF_PACKET socket on the interface that holds the
 * socket's local address. IPv4 only; the target must be on-link (its MAC comes from the
 * neighbour table).
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if_arp.h>
#include <netpacket/packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETH_HLEN_ 14
#define IP_HLEN	  20
#define UDP_HLEN  8

/* Finds the interface holding addr. Returns its name in name (IFNAMSIZ) or -ENODEV. */
static int iface_of(const struct in_addr *addr, char *name)
{
	struct ifaddrs *ifa, *i;
	int rc = -ENODEV;

	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		if (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == addr->s_addr) {
			snprintf(name, IFNAMSIZ, "%s", i->ifa_name);
			rc = 0;
			break;
		}
	}
	freeifaddrs(ifa);
	return rc;
}

/* Looks ip up in /proc/net/arp (this network namespace's). Returns 0 with mac filled. */
static int arp_lookup(const struct in_addr *ip, const char *ifname, uint8_t mac[6])
{
	char line[256], want[INET_ADDRSTRLEN];
	FILE *f = fopen("/proc/net/arp", "r");
	int rc = -ENOENT;

	if (!f)
		return -errno;
	inet_ntop(AF_INET, ip, want, sizeof(want));
	while (fgets(line, sizeof(line), f)) {
		char a[64], hw[64], dev[64];
		unsigned type, flags, m[6];

		if (sscanf(line, "%63s 0x%x 0x%x %63s %*s %63s", a, &type, &flags, hw, dev) != 5)
			continue;
		if (strcmp(a, want) || strcmp(dev, ifname) || !(flags & 0x2)) /* ATF_COM */
			continue;
		if (sscanf(hw, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
			continue;
		for (int k = 0; k < 6; k++)
			mac[k] = (uint8_t)m[k];
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

/* Resolves the target's MAC: one empty datagram from a spare socket makes the kernel ARP for
 * it (servers ignore a datagram without a frame header), then the table is read for up to 2 s. */
static int resolve_mac(const struct sockaddr_in *dst, const char *ifname, uint8_t mac[6])
{
	int fd;

	if (!arp_lookup(&dst->sin_addr, ifname, mac))
		return 0;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		if (sendto(fd, "", 0, 0, (const struct sockaddr *)dst, sizeof(*dst)) < 0)
			(void)0; /* the lookup below says whether it helped */
		close(fd);
	}
	for (int i = 0; i < 200; i++) {
		struct timespec ts = {0, 10 * 1000000L};

		if (!arp_lookup(&dst->sin_addr, ifname, mac))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -EHOSTUNREACH;
}

static uint32_t sum16(const void *p, size_t n, uint32_t sum)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)(b[n - 1] << 8);
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

int kb_raw_open(struct kb_raw *r, int udp_fd, const struct kb_cfg *cfg, char *err, size_t errlen)
{
	const struct sockaddr_in *dst = (const struct sockaddr_in *)&cfg->addr;
	struct sockaddr_in src = {0};
	socklen_t slen = sizeof(src);
	struct sockaddr_ll ll = {.sll_family = AF_PACKET};
	struct ifreq ifr = {0};
	char ifname[IFNAMSIZ];
	uint8_t dmac[6], *h = r->hdr;
	const char *opt = cfg->flood_xdp ? "--flood-xdp" : "--pad-frames"; /* for messages */
	int rc;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->pad = cfg->pad_frames;
	if (cfg->addr.ss_family != AF_INET) {
		snprintf(err, errlen, "%s: IPv4 targets only", opt);
		return -EAFNOSUPPORT;
	}
	if (getsockname(udp_fd, (struct sockaddr *)&src, &slen)) {
		snprintf(err, errlen, "%s: getsockname: %s", opt, strerror(errno));
		return -errno;
	}
	rc = iface_of(&src.sin_addr, ifname);
	if (rc) {
		snprintf(err, errlen, "%s: no interface holds %s", opt, inet_ntoa(src.sin_addr));
		return rc;
	}
	r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); /* protocol 0: send only */
	if (r->fd < 0) {
		snprintf(err, errlen, "%s: packet socket: %s", opt, strerror(errno));
		return -errno;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(r->fd, SIOCGIFHWADDR, &ifr) || ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		snprintf(err, errlen, "%s: %s is not an Ethernet interface", opt, ifname);
		rc = -ENODEV;
		goto fail;
	}
	rc = resolve_mac(dst, ifname, dmac);
	if (rc) {
		snprintf(err, errlen, "%s: no neighbour entry for %s on %s (on-link?)", opt,
			 cfg->target, ifname);
		goto fail;
	}
	ll.sll_ifindex = (int)if_nametoindex(ifname);
	r->ifindex = ll.sll_ifindex;
	if (!ll.sll_ifindex || bind(r->fd, (struct sockaddr *)&ll, sizeof(ll))) {
		snprintf(err, errlen, "%s: bind to %s: %s", opt, ifname, strerror(errno));
		rc = -errno;
		goto fail;
	}
	/* Ethernet, IPv4 (DF, TTL 64) and UDP headers; lengths and checksums per frame. */
	memcpy(h, dmac, 6);
	memcpy(h + 6, ifr.ifr_hwaddr.sa_data, 6);
	h[12] = 0x08;
	h[13] = 0x00;
	h += ETH_HLEN_;
	h[0] = 0x45;
	h[6] = 0x40;
	h[8] = 64;
	h[9] = IPPROTO_UDP;
	memcpy(h + 12, &src.sin_addr, 4);
	memcpy(h + 16, &dst->sin_addr, 4);
	h += IP_HLEN;
	memcpy(h, &src.sin_port, 2);
	memcpy(h + 2, &dst->sin_port, 2);
	r->pseudo = sum16(r->hdr + ETH_HLEN_ + 12, 8, IPPROTO_UDP);
	return 0;
fail:
	close(r->fd);
	r->fd = -1;
	return rc;
}

size_t kb_raw_frame(struct kb_raw *r, const void *p1, size_t n1, const void *p2, size_t n2,
		    char *out)
{
	uint8_t *ip = (uint8_t *)out + ETH_HLEN_, *udp = ip + IP_HLEN;
	size_t ulen = UDP_HLEN + n1 + n2, len = ETH_HLEN_ + IP_HLEN + ulen;
	uint16_t c;

	memcpy(out, r->hdr, sizeof(r->hdr));
	memcpy(udp + UDP_HLEN, p1, n1);
	memcpy(udp + UDP_HLEN + n1, p2, n2);
	ip[2] = (uint8_t)((IP_HLEN + ulen) >> 8);
	ip[3] = (uint8_t)(IP_HLEN + ulen);
	ip[4] = (uint8_t)(r->ip_id >> 8);
	ip[5] = (uint8_t)r->ip_id;
	r->ip_id++;
	c = (uint16_t)~fold(sum16(ip, IP_HLEN, 0));
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	c = (uint16_t)~fold(sum16(udp, ulen, r->pseudo + (uint32_t)ulen));
	c = c ? c : 0xffff;
	udp[6] = (uint8_t)(c >> 8);
	udp[7] = (uint8_t)c;
	/* The trailer: its bytes are whatever the buffer held (the stack trims them unread). */
	return len < r->pad ? r->pad : len;
}

void kb_raw_close(struct kb_raw *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

bool kb_v4_allowed(const struct in_addr *a)
{
	uint32_t h = ntohl(a->s_addr);

	return (h >> 24) == 127 ||		 /* 127.0.0.0/8 */
	       (h & 0xfffe0000u) == 0xc6120000u; /* 198.18.0.0/15 */
}

int kb_raw_check(const struct kb_raw *r, const struct kb_cfg *cfg, const void *frame, size_t len,
		 char *err, size_t errlen)
{
	const struct sockaddr_in *dst = (const struct sockaddr_in *)&cfg->addr;
	const uint8_t *f = frame;
	struct sockaddr_ll ll = {0};
	socklen_t ll_len = sizeof(ll);
	struct in_addr to;
	char ifname[IF_NAMESIZE] = "?";

	if (len < KB_RAW_HLEN || f[12] != 0x08 || f[13] != 0x00 || f[ETH_HLEN_] != 0x45) {
		snprintf(err, errlen, "refusing to send a raw frame that is not IPv4");
		return -EPERM;
	}
	memcpy(&to, f + ETH_HLEN_ + 16, 4);
	if (!kb_v4_allowed(&to)) {
		snprintf(
		    err, errlen,
		    "refusing to send a raw frame to %s: outside 127.0.0.0/8 and 198.18.0.0/15",
		    inet_ntoa(to));
		return -EPERM;
	}
	if (cfg->addr.ss_family != AF_INET || to.s_addr != dst->sin_addr.s_addr) {
		snprintf(err, errlen, "refusing to send a raw frame to %s: not the target %s",
			 inet_ntoa(to), cfg->target);
		return -EPERM;
	}
	if (memcmp(f + 6, r->hdr + 6, 6)) {
		snprintf(err, errlen, "refusing to send a raw frame with another source MAC");
		return -EPERM;
	}
	if (getsockname(r->fd, (struct sockaddr *)&ll, &ll_len) || ll.sll_family != AF_PACKET ||
	    ll.sll_ifindex <= 0 || ll.sll_ifindex != r->ifindex) {
		if_indextoname((unsigned)r->ifindex, ifname);
		snprintf(err, errlen,
			 "refusing to send raw frames: the packet socket is not bound to %s, the "
			 "interface facing %s",
			 ifname, cfg->target);
		return -EPERM;
	}
	return 0;
}
