# redis_tls_lib.bash: sourced after tests/lib/common.sh by the tests that need a redis-server
# with TLS (tiers/redis_tls.sh, audit/audit_redis_tls.sh). Makes a throwaway CA in $D ($TMP/pki)
# with a server certificate for localhost and 127.0.0.1, a client certificate, and another CA
# that signed nothing here; start_tls starts a TLS-only redis-server on loopback.
need openssl redis-server redis-cli

D=$TMP/pki
mkdir -p "$D"
cert() { # NAME CN [SAN]: a key and a certificate signed by the test CA
	openssl req -newkey rsa:2048 -nodes -keyout "$D/$1.key" -out "$D/$1.csr" -subj "/CN=$2" \
		2>/dev/null || fail "openssl req $1"
	printf '%s\n' "${3:+subjectAltName=$3}" >"$D/$1.ext"
	openssl x509 -req -in "$D/$1.csr" -CA "$D/ca.crt" -CAkey "$D/ca.key" -CAcreateserial \
		-days 2 -out "$D/$1.crt" -extfile "$D/$1.ext" 2>/dev/null || fail "openssl x509 $1"
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/ca.key" -out "$D/ca.crt" -days 2 \
	-subj "/CN=kcache test CA" 2>/dev/null || fail "openssl: test CA"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/other.key" -out "$D/other.crt" -days 2 \
	-subj "/CN=another CA" 2>/dev/null || fail "openssl: other CA"
cert server localhost "DNS:localhost,IP:127.0.0.1"
cert client kcache-client

# tls_cli PORT [redis-cli args...]: redis-cli over TLS with the test CA and client certificate.
tls_cli() {
	local port=$1; shift
	redis-cli --tls --cacert "$D/ca.crt" --cert "$D/client.crt" --key "$D/client.key" \
		-p "$port" "$@"
}

# start_tls NAME PORT AUTH_CLIENTS [redis-server args...]: TLS only, on 127.0.0.1 and
# 127.0.0.2 (not in the cert); sets TLS_PID; waits until it answers (PONG, or NOAUTH when
# it was given --requirepass).
start_tls() {
	local name=$1 port=$2 auth=$3; shift 3
	redis-server --port 0 --tls-port "$port" --bind "127.0.0.1 127.0.0.2" --save '' \
		--appendonly no --dir "$TMP" --tls-cert-file "$D/server.crt" \
		--tls-key-file "$D/server.key" --tls-ca-cert-file "$D/ca.crt" \
		--tls-auth-clients "$auth" "$@" >"$TMP/redis-$name.log" 2>&1 &
	TLS_PID=$!
	KC_PIDS+=("$TLS_PID")
	for _ in $(seq 100); do
		tls_cli "$port" ping 2>&1 | grep -qE 'PONG|NOAUTH' && return
		sleep 0.1
	done
	fail "TLS redis-server did not start"
}
