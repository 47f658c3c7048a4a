#!/usr/bin/env python3
"""pipeline_client.py PORT N [SEED] [TIMEOUT] [STALL]: sends N mixed memcached commands (set, get,
delete, incr, add over a small key pool) in one write and checks that every reply comes, in
order, byte for byte as a model of the cache says. Prints how many replies came and where the
first wrong or missing one is; exits 0 only if all N came and matched. TIMEOUT (s) bounds the whole run, STALL (s) the
time without a byte; both only turn a hang into a failure."""
import bisect
import random
import socket
import sys
import threading
import time


def build(n, seed, writes):
    """writes: the share of commands that change data (set 50%, delete 14%, incr 28% and add 8%
    of them); the rest are gets."""
    rnd = random.Random(seed)
    model = {}
    req, rep, ends, names = [], [], [], []
    pos = 0
    for i in range(n):
        k = "k%d" % rnd.randrange(2000)
        r = rnd.random()
        if r < writes * 0.50:
            v = str(rnd.randrange(1000000))
            req.append("set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            model[k] = v
            out = "STORED\r\n"
            name = "set"
        elif r >= writes:
            req.append("get %s\r\n" % k)
            out = ("VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(model[k]), model[k])
                   if k in model else "END\r\n")
            name = "get"
        elif r < writes * 0.64:
            req.append("delete %s\r\n" % k)
            out = "DELETED\r\n" if model.pop(k, None) is not None else "NOT_FOUND\r\n"
            name = "delete"
        elif r < writes * 0.92:
            d = rnd.randrange(1000)
            req.append("incr %s %d\r\n" % (k, d))
            if k in model:
                model[k] = str(int(model[k]) + d)
                out = model[k] + "\r\n"
            else:
                out = "NOT_FOUND\r\n"
            name = "incr"
        else:
            v = str(rnd.randrange(1000))
            req.append("add %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            if k in model:
                out = "NOT_STORED\r\n"
            else:
                model[k] = v
                out = "STORED\r\n"
            name = "add"
        rep.append(out)
        pos += len(out)
        ends.append(pos)
        names.append(name)
    return "".join(req).encode(), "".join(rep).encode(), ends, names


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 900
    stall = float(sys.argv[5]) if len(sys.argv) > 5 else 120
    writes = float(sys.argv[6]) if len(sys.argv) > 6 else 0.5
    req, want, ends, names = build(n, seed, writes)
    counts = {}
    for x in names:
        counts[x] = counts.get(x, 0) + 1
    print("requests: %d commands, %d bytes (%s); expecting %d reply bytes" %
          (n, len(req), " ".join("%s %d" % kv for kv in sorted(counts.items())), len(want)))
    s = socket.create_connection(("127.0.0.1", port))
    sender = threading.Thread(target=s.sendall, args=(req,), daemon=True)
    t0 = time.monotonic()
    sender.start()  # one write; the replies are read meanwhile
    got = bytearray()
    first = None
    s.settimeout(1.0)
    last = time.monotonic()
    while len(got) < len(want):
        now = time.monotonic()
        if now - t0 > timeout or now - last > stall:
            break
        try:
            b = s.recv(1 << 20)
        except socket.timeout:
            continue
        if not b:
            break
        if first is None:
            first = now - t0
        got += b
        last = now
    done = bisect.bisect_right(ends, len(got))
    bad = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None) \
        if got != want[:len(got)] else None
    print("stopped: %s" % ("all came" if len(got) >= len(want) else
                           "nothing for %.0f s" % (time.monotonic() - last)
                           if time.monotonic() - last > stall else "timeout or EOF"))
    print("received %d of %d reply bytes: %d complete replies of %d; first reply after %.1f s, "
          "last after %.1f s" % (len(got), len(want), done, n, first or -1, last - t0))
    if bad is not None:
        i = bisect.bisect_right(ends, bad)
        print("reply %d (%s) differs at byte %d: got %r, want %r" %
              (i, names[i], bad, bytes(got[bad:bad + 60]), want[bad:bad + 60]))
        return 1
    if len(got) != len(want):
        print("missing replies from %d (%s) on" % (done, names[done] if done < n else "-"))
        return 1
    print("all %d replies received, in order" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
