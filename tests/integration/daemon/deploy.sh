#!/usr/bin/env bash
# The shipped configurations load: deploy/kcached.yaml and the one inside the Kubernetes
# ConfigMap pass `kcached --check-config`, and the systemd unit names binaries we build.
# sanitizers: no
source "$(dirname "$0")/../../lib/common.sh"
out=$("$KCACHED" --check-config --config deploy/kcached.yaml) || fail "deploy/kcached.yaml: $out"
ok "deploy/kcached.yaml: $out"
# The ConfigMap's kcached.yaml block, unindented; paths it names that only exist in the pod
# (the audit key Secret) are pointed at local stand-ins.
sed -n '/kcached.yaml: |/,/^---/p' deploy/kubernetes/kcache.yaml | sed '1d;$d' | sed 's/^    //' >"$TMP/cm.yaml"
[ -s "$TMP/cm.yaml" ] || fail "no kcached.yaml in the ConfigMap"
out=$("$KCACHED" --check-config --config "$TMP/cm.yaml") || fail "ConfigMap kcached.yaml: $out"
ok "ConfigMap kcached.yaml: $out"
out=$("$KCACHED" --check-config --xdp-mode native --iface lo --net-policy deploy/policies/net-policy.yaml) ||
	fail "deploy/policies/net-policy.yaml: $out"
ok "deploy/policies/net-policy.yaml: $out"
for b in kcached kcachectl; do grep -q "/usr/local/bin/$b\|build/$b" deploy/systemd/kcached.service deploy/Dockerfile || fail "$b not installed by deploy files"; done
ok "deploy files name the binaries"
rc=0; "$KCACHED" --check-config --memory nope >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--check-config with a bad value: exit $rc, want 2"
ok "--check-config refuses a bad value"
