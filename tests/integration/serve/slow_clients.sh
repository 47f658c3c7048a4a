#!/usr/bin/env bash
# Slowloris on the memcached port (issue 13, item 15): with --max-conns 10 and --request-timeout 3, ten connections that
# half-send a set lock everyone out until request-timeout closes them; then a new client is
# served. A connection that sends complete commands slowly is never cut; an idle one is closed
# after idle-timeout. (KC_SLOW_REQUEST_TIMEOUT=0 runs it with the limit off: it must fail.)
source "$(dirname "$0")/../../lib/common.sh"
need python3 nc
start_kcached slow --max-conns 10 --request-timeout "${KC_SLOW_REQUEST_TIMEOUT:-3}" --idle-timeout 4
sleep 0.5 # the start check's connection is closed by now
python3 - "$KC_PORT" <<'PY' || fail "slow clients"
import socket, sys, time
port = int(sys.argv[1])

def conn():
    return socket.create_connection(("127.0.0.1", port))

def ask(s, req, t=5.0):
    s.settimeout(t)
    s.sendall(req)
    try:
        return s.recv(4096)
    except socket.timeout:
        return None

def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)

# Ten half-sent sets fill --max-conns 10.
half = []
for i in range(10):  # at once: request-timeout runs from here
    s = conn()
    s.sendall(b"set k%d 0 0 100\r\nabc" % i)
    half.append(s)
# Each worker accepts from its own listener (SO_REUSEPORT): give both time to accept their
# share of the ten before the eleventh comes (well within request-timeout).
time.sleep(0.5)
r = ask(conn(), b"version\r\n", 1.0)
if not r or not r.startswith(b"SERVER_ERROR too many open connections"):
    fail("an 11th connection was not refused while 10 are open: %r" % r)
print("ok: the 11th connection is refused while 10 half-sent sets are open")
# Bounded wait: only turns "never served" into a failure.
served = None
for _ in range(150):
    r = ask(conn(), b"version\r\n", 2.0)
    if r and r.startswith(b"VERSION"):
        served = r
        break
    time.sleep(0.2)
if not served:
    fail("a new client was never served: the half-sent sets still hold every slot")
print("ok: a new client is served after request-timeout")
for i, s in enumerate(half):
    s.settimeout(30)
    try:
        rest = s.recv(4096)
    except (socket.timeout, ConnectionResetError) as e:
        fail("half-sent set %d: %r, expected a close" % (i, e))
    if rest != b"":
        fail("half-sent set %d got %r, expected a close without a reply" % (i, rest))
print("ok: the 10 half-sent sets were closed without a reply")
s = conn()
if ask(s, b"get k0\r\n") != b"END\r\n":
    fail("a half-sent set stored something")
print("ok: nothing half-sent was stored")

# Complete commands, one a second for 6 s (past request-timeout, each under idle-timeout).
for i in range(6):
    r = ask(s, b"version\r\n")
    if not r or not r.startswith(b"VERSION"):
        fail("a slow but complete client was cut after %d commands: %r" % (i, r))
    time.sleep(1)
print("ok: a client sending complete commands slowly is kept")

# Idle: closed after idle-timeout (bounded wait).
s.settimeout(60)
try:
    r = s.recv(4096)
except socket.timeout:
    fail("an idle connection was not closed after idle-timeout")
if r != b"":
    fail("idle connection got %r" % r)
print("ok: an idle connection is closed after idle-timeout")
PY
alive
stop_kcached
