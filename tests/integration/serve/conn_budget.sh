#!/usr/bin/env bash
# sanitizers: no (RSS is the thing measured; ASan's shadow memory would swamp it)
# The connection buffer budget (issue 13, item 12): 1,000 clients that never read the replies
# to their gets of a large value, then 300 incomplete 1 MB sets, each with --memory 64M: RSS
# stays within the budget (conn-buffer-budget, by default memory / 4) plus the daemon's
# baseline, and a new client is still served. (Before the budget: 1.3 GB with 80 clients.)
source "$(dirname "$0")/../../lib/common.sh"
need python3 nc
ulimit -n 4096 || skip "cannot raise the descriptor limit to 4096"
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# Slack over the budget: each connection's own structures and libevent's (about 1 KiB each,
# 1 MiB for 1,000), malloc's per-thread arenas keeping freed chunks (two workers), and pages
# of buffers freed to the allocator but not yet returned to the kernel: 16 MiB.
SLACK_KB=$((16 << 10))

# hold.py N REQUEST_KIND: opens N connections, sends each its requests, never reads; waits
# until the daemon's RSS has not grown for 5 s (at most 90 s), prints it, keeps the
# connections open until stdin closes.
cat >"$TMP/hold.py" <<'PY'
import socket, sys, time
port, n, kind, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def rss():
    for l in open("/proc/%s/status" % pid):
        if l.startswith("VmRSS"):
            return int(l.split()[1])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    if kind == "gets":
        req = b"get big\r\n" * 200
    else:
        req = b"set s%d 0 0 1000000\r\n" % i + b"x" * 900000
    socks.append([s, req])
def push():  # each request as far as the daemon takes it
    for e in socks:
        try:
            while e[1]:
                e[1] = e[1][e[0].send(e[1]):]
        except BlockingIOError:
            pass
push()
last, most, t0 = time.monotonic(), rss(), time.monotonic()
while time.monotonic() - last < 5 and time.monotonic() - t0 < 90:
    time.sleep(0.5)
    push()
    r = rss()
    if r > most:
        most, last = r, time.monotonic()
print(most, flush=True)
sys.stdin.read()
PY

for kind in gets sets; do
	if [ $kind = gets ]; then n=1000; else n=300; fi
	start_kcached "budget-$kind" --memory 64M --request-timeout 0 --max-conns 2000
	budget=$(sed -n 's/.*conn-buffer-budget: \([0-9]*\) bytes.*/\1/p' "$KC_LOG")
	[ -n "$budget" ] || fail "no conn-buffer-budget line in the log"
	[ "$budget" -eq $((16 << 20)) ] || fail "default budget $budget, want memory / 4 = 16 MiB"
	{ printf 'set big 0 0 262144\r\n'; head -c 262144 /dev/zero | tr '\0' v; printf '\r\nset small 0 0 2\r\nok\r\n'; } |
		nc -N -w5 127.0.0.1 "$KC_PORT" >/dev/null
	base=$(rss_kb "$KC_PID")
	coproc HOLD { python3 "$TMP/hold.py" "$KC_PORT" "$n" "$kind" "$KC_PID"; }
	read -r -t 150 peak <&"${HOLD[0]}" || fail "$kind: the clients did not report"
	grew=$((peak - base))
	echo "$kind: $n clients: RSS baseline $base KiB, peak $peak KiB, grew $grew KiB;" \
		"budget $((budget >> 10)) KiB + slack $SLACK_KB KiB"
	[ "$grew" -le $(((budget >> 10) + SLACK_KB)) ] ||
		fail "$kind: RSS grew $grew KiB, over the budget $((budget >> 10)) KiB + $SLACK_KB KiB"
	ok "$kind: $n clients: RSS within the buffer budget"
	expect_eq "$kind: a new client is served meanwhile" "$(mc 'get small\r\n')" $'VALUE small 0 2\r\nok\r\nEND\r'
	exec {HOLD[1]}>&-
	wait "$HOLD_PID" 2>/dev/null || true
	alive
	stop_kcached
done
