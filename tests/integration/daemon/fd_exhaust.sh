#!/usr/bin/env bash
# File-descriptor exhaustion (issue 13 item 6): kcached under `prlimit --nofile=1024` with 1,100
# half-open HTTP connections (a partial header each, never finished). memcached keeps answering
# during and after, /healthz answers again once the header deadline has cut the half-open ones,
# and the log grows by a bounded number of lines (no line per refused accept).
source "$(dirname "$0")/../../lib/common.sh"
need prlimit python3 curl nc
ABS_KCACHED=$(readlink -f "$KCACHED")
cat >"$TMP/kcached-1024" <<EOS
#!/bin/sh
exec prlimit --nofile=1024:1024 "$ABS_KCACHED" "\$@"
EOS
chmod +x "$TMP/kcached-1024"
KCACHED=$TMP/kcached-1024
start_kcached fdx --threads 2
lines0=$(wc -l <"$KC_LOG")

# 1,100 half-open connections, held until $TMP/release exists.
python3 - "${KC_HTTP%:*}" "${KC_HTTP##*:}" "$TMP" <<'EOP' &
import os, resource, socket, sys, time
host, port, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
socks = []
for i in range(1100):
    s = socket.create_connection((host, port), timeout=10)
    try:
        s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    except OSError:
        pass
    socks.append(s)
open(os.path.join(tmp, "held"), "w").close()
deadline = time.time() + 120
while not os.path.exists(os.path.join(tmp, "release")) and time.time() < deadline:
    time.sleep(0.2)
for s in socks:
    s.close()
EOP
holder=$!
KC_PIDS+=("$holder")
for _ in $(seq 300); do [ -e "$TMP/held" ] && break; kill -0 $holder 2>/dev/null || fail "holder died"; sleep 0.1; done
[ -e "$TMP/held" ] || fail "could not open 1,100 connections"
ok "1,100 half-open HTTP connections open"

expect_eq "memcached during" "$(mc 'set k 0 0 2\r\nhi\r\nget k\r\n' | tr -d '\r')" "$(printf 'STORED\nVALUE k 0 2\nhi\nEND')"

healthy=0
for _ in $(seq 60); do
	if [ "$(curl -s -m 2 "http://$KC_HTTP/healthz" 2>/dev/null)" = ok ]; then healthy=1; break; fi
	sleep 1
done
[ $healthy = 1 ] || fail "/healthz did not answer again while the half-open connections were held"
ok "/healthz answers again (the header deadline cut the half-open connections)"
touch "$TMP/release"
wait $holder || true
expect_eq "memcached after" "$(mc 'set k2 0 0 2\r\nho\r\nget k2\r\n' | tr -d '\r')" "$(printf 'STORED\nVALUE k2 0 2\nho\nEND')"
alive
grown=$(($(wc -l <"$KC_LOG") - lines0))
echo "log grew by $grown lines"
[ "$grown" -lt 50 ] || { tail -20 "$KC_LOG" >&2; fail "log grew by $grown lines (want < 50)"; }
ok "log bounded ($grown lines)"
grep -q 'max-conns' "$KC_LOG" || fail "no notice that max-conns was clamped to the descriptor limit"
ok "clamp notice: $(grep -m1 'max-conns' "$KC_LOG" | cut -c1-200)"
stop_kcached
