#!/usr/bin/env python3
"""kc_rawframe: hand-made Ethernet frames for the network policy's integration tests
(policy_vlan.sh): VLAN tag stacks and forged source addresses, which no socket API sends.

  kc_rawframe.py IFACE DST_MAC SRC_IP DST_IP udp|tcp TAGS SPORT N WAIT_MS

sends N frames from IFACE's own MAC to DST_MAC, IPv4 SRC_IP -> DST_IP port 11211, each behind
the tags TAGS ("8100:0,8100:0" = outermost first TPID:TCI in hex:decimal; "-" for none): udp is
a memcached UDP "get k" (request ids 1..N, source port SPORT), tcp a SYN from SPORT+i. It then
listens on IFACE for WAIT_MS and prints "sent N replies R": R is the frames that came back from
DST_IP port 11211 to those source ports (a UDP answer, or a SYN-ACK), whatever their destination
address (a reply to a forged source still comes back to this MAC when XDP answers it).
Exit 0 when it ran, 2 on usage or I/O errors.
"""
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
TAG_TPIDS = (0x8100, 0x88A8, 0x9100)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, l4):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0x1234, 0, 64, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + l4


def udp(src, dst, sport, payload):
    ln = 8 + len(payload)
    body = struct.pack("!HHHH", sport, 11211, ln, 0) + payload
    c = csum(src + dst + struct.pack("!BBH", 0, 17, ln) + body) or 0xFFFF
    return body[:6] + struct.pack("!H", c) + body[8:]


def tcp_syn(src, dst, sport):
    body = struct.pack("!HHIIBBHHH", sport, 11211, 0x01020304, 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(body)) + body)
    return body[:16] + struct.pack("!H", c) + body[18:]


def main():
    if len(sys.argv) != 10:
        print(__doc__, file=sys.stderr)
        return 2
    ifname, dmac, sip, dip, proto, tags, sport, n, wait_ms = sys.argv[1:]
    sport, n, wait_ms = int(sport), int(n), int(wait_ms)
    src, dst = socket.inet_aton(sip), socket.inet_aton(dip)
    dmac = bytes.fromhex(dmac.replace(":", ""))
    l2tags = b""
    if tags != "-":
        for t in tags.split(","):
            tpid, tci = t.split(":")
            l2tags += struct.pack("!HH", int(tpid, 16), int(tci))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    smac = s.getsockname()[4]
    want = set()
    for i in range(n):
        if proto == "udp":
            mc = struct.pack("!HHHH", i + 1, 0, 1, 0) + b"get k\r\n"
            ip = ipv4(src, dst, 17, udp(src, dst, sport, mc))
            want.add((17, sport))
        else:
            ip = ipv4(src, dst, 6, tcp_syn(src, dst, sport + i))
            want.add((6, sport + i))
        s.send(dmac + smac + l2tags + b"\x08\x00" + ip)
    got = 0
    end = time.monotonic() + wait_ms / 1000.0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            f, addr = s.recvfrom(65536)
        except socket.timeout:
            break
        if addr[2] == PACKET_OUTGOING:
            continue
        off, et = 14, struct.unpack("!H", f[12:14])[0]
        while et in TAG_TPIDS and len(f) >= off + 4:
            et = struct.unpack("!H", f[off + 2 : off + 4])[0]
            off += 4
        if et != 0x0800 or len(f) < off + 28 or f[off + 12 : off + 16] != dst:
            continue
        ihl = (f[off] & 0xF) * 4
        p, l4 = f[off + 9], off + ihl
        if len(f) < l4 + 4:
            continue
        sp, dp = struct.unpack("!HH", f[l4 : l4 + 4])
        if sp != 11211 or (p, dp) not in want:
            continue
        if p == 6 and (len(f) < l4 + 14 or (f[l4 + 13] & 0x12) != 0x12):
            continue
        got += 1
    print("sent %d replies %d" % (n, got))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:
        print("kc_rawframe: %s" % e, file=sys.stderr)
        sys.exit(2)
