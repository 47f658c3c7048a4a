#!/usr/bin/env bash
# The Redis client over TLS (rediss://) against a real redis-server with a throwaway CA made here:
# by name (SNI + hostname check, resolved without blocking) and by IP, a wrong CA and a name the
# certificate does not hold (clear verification errors), insecure=1, mutual TLS with a client
# certificate, and a CA file that cannot be read (kc_redis_new refuses it).
source "$(dirname "$0")/../../lib/common.sh"
source "$(dirname "$0")/redis_lib.bash"
source "$(dirname "$0")/redis_tls_lib.bash"

T=$(free_port)
start_tls tls "$T" no

drv_start byname "rediss://localhost:$T/1?ca=$D/ca.crt" --timeout 2000
ask_eq "rediss:// by name: SNI, hostname verified" "up 5000" "up"
ask_eq "SET over TLS" "cmd SET tls:k \xff\x00v" "reply status OK"
ask_eq "GET over TLS" "cmd GET tls:k" 'reply string \xff\x00v'
ask_eq "pipelined over TLS, one value of 1 MiB" "pipe 100" "pipe ok"
ask_eq "a burst over TLS" "burst 3000" "burst ok=3000 fail=0 err=-"
drv_quit

drv_start byip "rediss://127.0.0.1:$T?ca=$D/ca.crt" --timeout 2000
ask_eq "rediss:// by IP: the IP SAN verified" "up 5000" "up"
ask_eq "GET in db 0" "cmd DBSIZE" "reply int 0"
drv_quit

drv_start wrongca "rediss://127.0.0.1:$T?ca=$D/other.crt" --timeout 2000
ask_eq "a wrong CA: never up" "up 1500" "still down"
ask_eq "commands fail fast" "cmd PING" "fail not connected"
n=$(log_count 'TLS with 127.0.0.1:[0-9]+: certificate verify failed: (unable to get local issuer certificate|self-signed certificate in certificate chain)')
expect_eq "the verification error is logged once" "$n" 1
drv_end

drv_start wrongname "rediss://127.0.0.2:$T?ca=$D/ca.crt" --timeout 2000
ask_eq "an address the certificate does not name: never up" "up 1500" "still down"
[ "$(log_count 'certificate verify failed: IP address mismatch')" -eq 1 ] ||
	fail "no 'IP address mismatch' in the log"
ok "the mismatch is logged"
drv_end

drv_start insecure "rediss://127.0.0.2:$T?ca=$D/other.crt&insecure=1" --timeout 2000
ask_eq "insecure=1 skips verification" "up 5000" "up"
drv_quit

M=$(free_port)
start_tls mtls "$M" yes
drv_start nocert "rediss://127.0.0.1:$M?ca=$D/ca.crt" --timeout 2000
ask_eq "mutual TLS without a client certificate: never up" "up 1500" "still down"
[ "$(log_count 'cannot connect .*: TLS with 127.0.0.1:[0-9]+: .*certificate required')" -eq 1 ] ||
	fail "the missing client certificate is not logged"
ok "the server's refusal is logged"
drv_end
drv_start mtls "rediss://127.0.0.1:$M?ca=$D/ca.crt&cert=$D/client.crt&key=$D/client.key" \
	--timeout 2000
ask_eq "mutual TLS with a client certificate" "up 5000" "up"
ask_eq "and commands" "cmd ECHO hi" "reply string hi"
drv_quit

out=$("$DRV" "rediss://127.0.0.1:$T?ca=$D/missing.crt" 2>&1 </dev/null || true)
[ "$out" == "new failed: redis TLS: CA file $D/missing.crt: No such file or directory" ] ||
	fail "missing CA: got '$out'"
ok "a CA file that cannot be read is refused: ${out#new failed: }"
