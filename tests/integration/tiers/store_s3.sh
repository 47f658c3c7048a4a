#!/usr/bin/env bash
# Object store, S3 backend, against a real S3 server: s3rver (tools/node, installed by
# `make deps`), which verifies AWS Signature V4, on a free loopback port with its own data
# directory. Round trips, a miss on 404, a wrong secret or access key giving a clear 403 error,
# an unreachable endpoint (a warning at open, then errors), a server that never answers (the
# timeout), and a bit flipped in the object file as s3rver keeps it on disk (CORRUPT, then gone).
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/store_lib.bash"
source "$(dirname "$0")/s3_lib.bash"
s3_start
PORT=$S3_PORT
ok "s3rver on 127.0.0.1:$PORT"
SPEC="s3://kcache/run-$$/?endpoint=http://127.0.0.1:$PORT&region=us-east-1"

printf 'hello s3' >"$TMP/small"
st put "$SPEC" greeting "$TMP/small"
expect_rc "put" 0
grep -q 'warn' "$TMP/st.err" && fail "a warning at open with a healthy server: $(cat "$TMP/st.err")"
st get "$SPEC" greeting "$TMP/out"
expect_rc "get" 0
cmp -s "$TMP/out" "$TMP/small" || fail "get returned other bytes"
head -c 3000000 /dev/urandom >"$TMP/big"
st -x put "$SPEC" 00ff2f0a6b "$TMP/big"
expect_rc "put of 3 MB under a binary key" 0
st -x get "$SPEC" 00ff2f0a6b "$TMP/out"
expect_rc "get of 3 MB under a binary key" 0
cmp -s "$TMP/out" "$TMP/big" || fail "3 MB value differs"
printf '' >"$TMP/empty"
st put "$SPEC" empty "$TMP/empty"
expect_rc "put of an empty value" 0
st get "$SPEC" empty "$TMP/out"
expect_rc "get of an empty value" 0
[ ! -s "$TMP/out" ] || fail "empty value came back with bytes"
printf 'second' >"$TMP/small2"
st put "$SPEC" greeting "$TMP/small2"
st get "$SPEC" greeting "$TMP/out"
cmp -s "$TMP/out" "$TMP/small2" || fail "overwrite not seen"
ok "overwrite"

st get "$SPEC" never-stored
expect_rc "404 is a miss" 1
st del "$SPEC" greeting
expect_rc "del" 0
st del "$SPEC" greeting
expect_rc "del of an absent key is a miss" 1
st get "$SPEC" greeting
expect_rc "get after del" 1

# 4 threads through one store (its pool of curl handles): no torn or crossed value. Each
# thread has keys of its own: s3rver writes an object's file in place, so a GET racing a PUT
# of the same key there can see a partial file (real S3 replaces objects atomically).
st -p stress "$SPEC" 4 150
expect_rc "4 threads put, get and del through one store" 0

# Wrong credentials: s3rver checks the signature, the store says why.
AWS_SECRET_ACCESS_KEY=not-the-secret st get "$SPEC" empty
expect_rc "wrong secret: get fails" 2
expect_err "wrong secret: clear error" "s3: 403 SignatureDoesNotMatch (GET /kcache/run-$$/"
AWS_SECRET_ACCESS_KEY=not-the-secret st put "$SPEC" empty "$TMP/small"
expect_rc "wrong secret: put fails" 2
expect_err "wrong secret: put error" "s3: 403 SignatureDoesNotMatch (PUT"
AWS_ACCESS_KEY_ID=NOBODY st get "$SPEC" empty
expect_rc "unknown access key" 2
expect_err "unknown access key: clear error" "s3: 403 InvalidAccessKeyId"
st get "$SPEC" empty "$TMP/out"
expect_rc "the object is unharmed by the refused put" 0
[ ! -s "$TMP/out" ] || fail "the refused put changed the object"

# Corruption: flip a bit in the value of the object file as s3rver stores it.
head -c 5000 /dev/urandom >"$TMP/v"
st put "$SPEC" flipme "$TMP/v"
expect_rc "put flipme" 0
a=$(addr flipme)
f=$(find "$TMP/s3/kcache" -path "*/run-$$/${a:0:2}/${a:2:2}/${a}._S3rver_object")
[ -f "$f" ] || fail "object file of flipme not found under $TMP/s3"
flip_byte "$f" 2000
st get "$SPEC" flipme
expect_rc "bit flip is CORRUPT" 4
expect_err "corruption names the cause" "checksum mismatch"
st get "$SPEC" flipme
expect_rc "the corrupt object was removed" 1

# Unreachable endpoint: open only warns; calls fail with curl's reason.
DEAD=$(free_port)
DSPEC="s3://kcache/x?endpoint=http://127.0.0.1:$DEAD"
st get "$DSPEC" k
expect_rc "unreachable: get is an error, not an open error" 2
expect_err "unreachable: warned at open" "not usable now"
expect_err "unreachable: the reason" "Couldn't connect to server"
st put "$DSPEC" k "$TMP/small"
expect_rc "unreachable: put is an error" 2

# A server that accepts connections and never answers: the request times out.
SLOW=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); time.sleep(120)' "$SLOW" &
KC_PIDS+=($!)
for _ in $(seq 50); do ss -Htln "( sport = :$SLOW )" | grep -q . && break; sleep 0.1; done
st -t 300 get "s3://kcache/x?endpoint=http://127.0.0.1:$SLOW" k
expect_rc "silent server: error" 2
expect_err "silent server: timeout" "s3: timeout after 300 ms"

# A malformed spec is an open error.
st get "s3://kcache/x?endpoint=http://127.0.0.1:$PORT&speed=fast" k
expect_rc "malformed spec" 5
expect_err "malformed spec: why" "unknown option \"speed\""
kill -0 "${KC_PIDS[0]}" || fail "s3rver died"
ok "s3rver still up"
