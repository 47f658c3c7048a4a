#!/usr/bin/env python3
"""udp_probe.py PORT: sends memcached UDP datagrams to 127.0.0.1:PORT and measures the replies.

Reads one request per line on stdin, "KIND<TAB>HEX" (HEX: the whole datagram, frame header
included), and prints one line per request:
    KIND<TAB>BYTES_IN<TAB>BYTES_OUT<TAB>DATAGRAMS<TAB>FIRST_LINE
BYTES_OUT counts every byte of every reply datagram (frame headers included); FIRST_LINE is the
first line of the first datagram's payload (after its 8-byte header), "-" when none came.
Replies are collected until 0.4 s pass without one (a bounded wait, not a timing assertion).
"""
import socket
import sys


def probe(sock, port, data):
    sock.sendto(data, ("127.0.0.1", port))
    got = []
    sock.settimeout(0.4)
    while True:
        try:
            d, _ = sock.recvfrom(70000)
        except socket.timeout:
            break
        got.append(d)
    return got


def main():
    port = int(sys.argv[1])
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        kind, hexdata = line.split("\t", 1)
        data = bytes.fromhex(hexdata)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        got = probe(sock, port, data)
        sock.close()
        out = sum(len(d) for d in got)
        first = "-"
        if got and len(got[0]) > 8:
            first = got[0][8:].split(b"\r\n", 1)[0].decode("latin-1")[:60]
        elif got:
            first = "(empty)"
        print(f"{kind}\t{len(data)}\t{out}\t{len(got)}\t{first}", flush=True)


if __name__ == "__main__":
    main()
