#!/usr/bin/env python3
"""compat_memcached.py MC_PORT KC_PORT: sends each request of a table to memcached and to kcached
on 127.0.0.1 and asserts that kcached's reply is byte for byte memcached's.

Each row runs on a fresh connection: the request, then "mn\\r\\n" as a sentinel; the reply is read
until it ends with "MN\\r\\n", the server closes ("<closed>" is appended), or 5 s pass ("<timeout>").
So a close without a reply, a swallowed command and a hang are all visible in the compared bytes.

Normalised (the only fields allowed to differ), each explicitly:
  - cas values: the 4th number of a gets VALUE line and the c<n> return flag of meta replies
    become <cas> (each server numbers versions its own way);
  - rows marked "ttl" also turn t<n> (n > 0) into t<ttl> (the two clocks tick apart);
  - rows marked "me" drop the values of me's exp, la, cas, cls and size fields (kcache has no
    slab classes and its items have other sizes); the key and fetch= are compared.
A "stats" row compares the change of counters (get_hits, get_misses, cmd_get, cmd_touch) over
its commands, not their absolute values.
Prints one line per row; exits 1 if any row differs.
"""
import re
import socket
import sys

TIMEOUT = 5.0


def talk(port, req):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(TIMEOUT)
    buf = b""
    try:
        s.sendall(req + b"mn\r\n")
        while not buf.endswith(b"MN\r\n"):
            d = s.recv(1 << 20)
            if not d:
                buf += b"<closed>"
                break
            buf += d
    except socket.timeout:
        buf += b"<timeout>"
    except (ConnectionResetError, BrokenPipeError):
        buf += b"<reset>"
    s.close()
    return buf


CAS_VALUE = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+\r$", re.M)
CAS_FLAG = re.compile(rb"^((?:HD|VA|EN|NS|EX|NF)(?: [^\r]*)?)\r$", re.M)


def norm(reply, opts):
    reply = CAS_VALUE.sub(rb"\1 <cas>\r", reply)

    def meta(m):
        line = re.sub(rb" c\d+", b" c<cas>", m.group(1))
        if "ttl" in opts:
            line = re.sub(rb" t[1-9]\d*", b" t<ttl>", line)
        return line + b"\r"

    reply = CAS_FLAG.sub(meta, reply)
    if "me" in opts:
        reply = re.sub(rb" (exp|la|cas|cls|size)=-?\d+", rb" \1=", reply)
    return reply


COUNTERS = (b"get_hits", b"get_misses", b"cmd_get", b"cmd_touch")


def stats(port):
    out = talk(port, b"stats\r\n")
    v = {}
    for line in out.split(b"\r\n"):
        f = line.split(b" ")
        if len(f) == 3 and f[0] == b"STAT" and f[1] in COUNTERS:
            v[f[1]] = int(f[2])
    return v


def stats_delta(port, req):
    before = stats(port)
    talk(port, req)
    after = stats(port)
    return b" ".join(k + b"=" + str(after.get(k, -1) - before.get(k, 0)).encode() for k in COUNTERS)


K250 = b"k" * 250
MANY = 18725  # a get line of ~187 KB

# (item, name, request, options)
ROWS = [
    # 20: mg's t reports the TTL as it was before this request's T applies; T-1 expires the key.
    ("20", "mg t T-1 on an immortal key", b"set i20 0 0 1\r\nv\r\nmg i20 t T-1\r\nmg i20 t\r\n", ""),
    ("20", "mg T-1 then get", b"set i20b 0 0 1\r\nv\r\nmg i20b T-1\r\nget i20b\r\n", ""),
    ("20", "mg t T100", b"set i20c 0 0 1\r\nv\r\nmg i20c t T100\r\nmg i20c t\r\n", "ttl"),
    # 21: a get of ~187 KB (18,725 keys) is answered, not refused as a line too long.
    ("21", "get of 18,725 keys", b"set many5 0 0 1\r\nv\r\nset many18000 0 0 2\r\nvv\r\nget " +
     b" ".join(b"many%d" % i for i in range(MANY)) + b"\r\n", ""),
    ("21", "gets of 18,725 keys, then a command", b"gets " + b" ".join(b"many%d" % i for i in range(MANY)) +
     b"\r\nget many5\r\n", ""),
    # Not compared, deliberately: a bad key late in a get longer than 64 KiB (memcached, which
    # buffers the line, answers only the error; kcached has sent the keys of the pieces before
    # it), and a gat or other command longer than that (memcached closes at 2 KiB without a
    # reply; kcached answers CLIENT_ERROR line too long at 64 KiB and closes, see bad_input.sh).
    # 22: one miss per missed key, mg counted as a get (a touch with T).
    ("22", "get miss counts once", b"get i22a\r\n", "stats"),
    ("22", "multi-get misses", b"get i22a i22b i22c\r\n", "stats"),
    ("22", "mg miss counts once, in cmd_get", b"mg i22a v\r\n", "stats"),
    ("22", "get and mg hits", b"set i22h 0 0 1\r\nv\r\nget i22h\r\nmg i22h v\r\n", "stats"),
    ("22", "gat and mg T count as touches", b"set i22t 0 0 1\r\nv\r\ngat 0 i22t\r\nmg i22t T0\r\nmg i22x T0\r\n",
     "stats"),
    # 23: lengths memcached refuses on the command line, without swallowing anything.
    ("23", "set length INT_MAX", b"set i23 0 0 2147483647\r\nget i23\r\n", ""),
    ("23", "set length INT_MAX-1", b"set i23 0 0 2147483646\r\nget i23\r\n", ""),
    ("23", "set length -1", b"set i23 0 0 -1\r\nget i23\r\n", ""),
    ("23", "ms length INT_MAX", b"ms i23 2147483647\r\nmg i23 v\r\n", ""),
    ("23", "ms length -1", b"ms i23 -1\r\nmg i23 v\r\n", ""),
    ("23", "ms length not a number", b"ms i23 x\r\nmg i23 v\r\n", ""),
    ("23", "set just over item size max", b"set i23 0 0 1048577\r\n" + b"z" * 1048577 + b"\r\nget i23\r\n", ""),
    # 24: HTTP request lines close the connection without a reply.
    ("24", "GET / HTTP/1.0", b"GET / HTTP/1.0\r\n\r\n", ""),
    ("24", "POST HTTP/1.1", b"POST /x HTTP/1.1\r\nHost: a\r\n\r\n", ""),
    ("24", "PUT HTTP/1.1", b"PUT /x HTTP/1.1\r\n\r\n", ""),
    ("24", "HEAD HTTP/1.0", b"HEAD / HTTP/1.0\r\n\r\n", ""),
    ("24", "OPTIONS HTTP/1.1", b"OPTIONS * HTTP/1.1\r\n\r\n", ""),
    ("24", "DELETE HTTP/1.1", b"DELETE /k HTTP/1.1\r\n\r\n", ""),
    ("24", "lower-case get is a get", b"get / HTTP/1.0\r\n", ""),
    ("24", "unknown g-verb is an ERROR", b"gxx / HTTP/1.0\r\n", ""),
    # 25: noreply hides failures too.
    ("25", "delete with a hold time, noreply", b"delete i25 10 noreply\r\n", ""),
    ("25", "incr non-numeric value, noreply", b"set i25 0 0 1\r\nx\r\nincr i25 1 noreply\r\n", ""),
    ("25", "decr bad delta, noreply", b"decr i25 abc noreply\r\n", ""),
    ("25", "touch bad exptime, noreply", b"touch i25 abc noreply\r\n", ""),
    ("25", "set bad flags, noreply", b"set i25 x 0 1 noreply\r\nv\r\n", ""),
    ("25", "set negative length, noreply", b"set i25 0 0 -1 noreply\r\n", ""),
    ("25", "set too large, noreply", b"set i25 0 0 1048577 noreply\r\n" + b"z" * 1048577 + b"\r\nget i25\r\n", ""),
    ("25", "set bad data chunk, noreply", b"set i25 0 0 1 noreply\r\nabc\r\n", ""),
    ("25", "key too long, noreply", b"incr " + K250 + b"x 1 noreply\r\n", ""),
    # 27: meta flags memcached 1.6 has, flag by flag.
    ("27", "b: base64 keys in ms, mg, md", b"ms a2V5 1 b k c\r\nv\r\nmg a2V5 b k v s\r\nget key\r\nmd a2V5 b k q\r\nget key\r\n", ""),
    ("27", "b: undecodable keys", b"mg !!!! b\r\nmd !!!! b\r\nma !!!! b\r\nms !!!! 1 b\r\nv\r\n", ""),
    ("27", "u: no bump (h stays 0)", b"set u27 0 0 1\r\nv\r\nmg u27 u h\r\nmg u27 h\r\nmg u27 h\r\n", ""),
    ("27", "h and l after a get", b"set h27 0 0 1\r\nv\r\nget h27\r\nmg h27 h l\r\n", ""),
    ("27", "N: vivify on miss, W then Z", b"mg viv27 N30 s t v\r\nmg viv27 N30 v t\r\nmg viv27 s\r\n", "ttl"),
    ("27", "R: recache win below the ttl", b"set r27 0 10 1\r\nv\r\nmg r27 R30 t\r\nmg r27 R30 t\r\nmg r27 R5\r\n", "ttl"),
    ("27", "md I T, X W, ms I with an old cas", b"set s27 0 0 1\r\nv\r\nmd s27 I T30\r\nmg s27 v t\r\nmg s27 v\r\n"
     b"ms s27 1 C1 I\r\nw\r\nmg s27 v\r\nget s27\r\n", "ttl"),
    ("27", "md T without I deletes", b"set d27 0 0 1\r\nv\r\nmd d27 T30\r\nmg d27\r\n", ""),
    ("27", "ma t T C q", b"set n27 0 0 1\r\n5\r\nma n27 t T30 v\r\nma n27 t\r\nma n27 C1\r\nma n27 q\r\nma n27 q v\r\nget n27\r\n",
     "ttl"),
    ("27", "ma N J vivify, MD, bad mode", b"ma nv27 N0 J10 v\r\nma nv27 N0 J10 v\r\nma nv27 MD D3 v\r\nma nv27 Mx\r\n", ""),
    ("27", "me", b"set me27 0 0 1\r\nv\r\nme me27\r\nme nokey27\r\nme\r\nme bWUyNw== b\r\nget me27\r\nme me27\r\n"
     b"ms bWUyOA== 1 b\r\nv\r\nme bWUyOA== b\r\n", "me"),
    ("27", "flag errors", b"mg k27 v v\r\nmg k27 !\r\nms k27 1 ! \r\nv\r\nmd k27 q q\r\nma k27 D\r\nma k27 Dx\r\nma k27 Jx\r\n"
     b"ms k27 1 Fx\r\nv\r\nms k27 1 Mxx\r\nv\r\n", ""),
    ("27", "too many flags; E is unknown to 1.6.18", b"mg k27 a b c d e f g h i j k l m n o p q r s\r\n"
     b"mg k27 c f h k l O q s t u v E N1 R1 T1 P L\r\nms k27 1 c f h k l O q s t u v E N1 R1 T1 P L\r\nv\r\n", ""),
    ("27", "every known flag, on every command", b"set all27 0 0 1\r\n7\r\nmg all27 c f h k l O1 q s t u v N1 R1 T0 P L\r\n"
     b"ms all27 1 c f h k l O2 s t u v N1 R1 T0 P L\r\n8\r\nms all27 1 I F3 D1 J1 M1\r\n9\r\nms all27 1 I C1 q\r\n9\r\n"
     b"ma all27 c f h k l O4 s t u v N0 R1 T0 P L\r\nma all27 D2 J5 C0 M+ b\r\nma all27 I MI\r\n"
     b"md all27 c f h k l O3 s t u v N1 R1 P L\r\nmd all27 D1 J1 F1 M1\r\nmd all27 C0\r\nmg all27 v f\r\n", ""),
    ("27", "opaque over 32 bytes", b"mg k27 O" + b"1" * 33 + b"\r\nset k27 0 0 1\r\nv\r\nmg k27 O" + b"1" * 33 +
     b"\r\nmd k27 O" + b"1" * 33 + b"\r\n", ""),
    ("27", "ms modes (upper case only) and cas", b"ms k27 1 Ms\r\nv\r\nms k27 1 MS\r\nv\r\nms k27 1 ME\r\nv\r\n"
     b"ms k27 1 MR q\r\nv\r\nms k27 1 MA k O9\r\nv\r\nms k27 1 C999999 MA\r\nv\r\nms k27 1 C999999 ME\r\nv\r\nmg k27 v\r\n", ""),
    ("27", "bad tokens and bare verbs", b"mg k27 Tx\r\nmg k27 T\r\nmg\r\nms\r\nms k27\r\nmd\r\nma\r\nmx k\r\n", ""),
    ("27", "C0: md and ms compare it, ma does not", b"set c27 0 0 1\r\n1\r\nmd c27 C0\r\nms c27 1 C0\r\n2\r\nma c27 C0 v\r\n", ""),
    ("27", "misses echo O and k; q hides EN only", b"mg miss27 k O5 q\r\nmg miss27 k O5 s v\r\nmd miss27 q\r\nma miss27 q\r\n"
     b"md miss27 C5\r\n", ""),
    # 26: flush_all's argument.
    ("26", "flush_all invalid", b"flush_all invalid\r\n", ""),
    ("26", "flush_all noreply invalid", b"flush_all noreply x\r\n", ""),
    ("26", "flush_all too many", b"flush_all 1 2 3\r\n", ""),
    ("26", "flush_all 0 0", b"flush_all 0 0\r\n", ""),
]


def main():
    mc, kc = int(sys.argv[1]), int(sys.argv[2])
    only = sys.argv[3:]
    bad = 0
    for item, name, req, opts in ROWS:
        if only and item not in only:
            continue
        if "stats" in opts:
            want, got = stats_delta(mc, req), stats_delta(kc, req)
        else:
            want, got = norm(talk(mc, req), opts), norm(talk(kc, req), opts)
        if want == got:
            print(f"ok   [{item}] {name}: {want[:160]!r}")
        else:
            bad += 1
            print(f"FAIL [{item}] {name}\n       memcached: {want[:300]!r}\n       kcached:   {got[:300]!r}")
    print(f"{bad} of {sum(1 for r in ROWS if not only or r[0] in only)} rows differ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
