# s3_lib.bash: s3_start runs s3rver (tools/node, installed by `make deps`) on a free loopback
# port with a bucket "kcache"; sets S3_PORT and S3_URL and exports the credentials it accepts.
s3_start() {
	need node ss
	[ -d tools/node/node_modules/@20minutes/s3rver ] || fail "s3rver is not installed: run 'make deps'"
	S3_PORT=$(free_port)
	node tools/node/s3rver.js -d "$TMP/s3" -a 127.0.0.1 -p "$S3_PORT" --configure-bucket kcache \
		>"$TMP/s3rver.log" 2>&1 &
	KC_PIDS+=($!)
	for _ in $(seq 100); do
		ss -Htln "( sport = :$S3_PORT )" | grep -q . && break
		kill -0 "${KC_PIDS[-1]}" 2>/dev/null || { cat "$TMP/s3rver.log" >&2; fail "s3rver exited"; }
		sleep 0.1
	done
	ss -Htln "( sport = :$S3_PORT )" | grep -q . || fail "s3rver did not listen within 10 s"
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
	unset AWS_SESSION_TOKEN
	S3_URL="s3://kcache/t$$/?endpoint=http://127.0.0.1:$S3_PORT&region=us-east-1"
}
