#!/usr/bin/env bash
# Installs every Debian package that kcache's build, tests and benchmarks need.
# Idempotent: when everything is present it touches nothing and asks no registry.
# Usage: tools/deps.sh            (as root)
set -euo pipefail

# Build: compilers, BPF toolchain and the libraries kcached links.
build=(make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	libevent-dev libyaml-dev libssl-dev libxxhash-dev libhiredis-dev libzstd-dev
	libcurl4-openssl-dev libcmocka-dev libclang-rt-14-dev)
# Tests: real peers and real clients, plus the network tools for namespaces.
tests=(libmemcached-tools memcached redis-server redis-tools prometheus
	netcat-openbsd iproute2 curl procps psmisc xdp-tools jq ethtool
	auditd         # auditd: bench/audit-overhead.sh compares against it
	nftables iptables) # bench/policy-drop.sh compares kcached's policy against them
# Static analysis for `make check`.
check=(clang-format clang-tidy cppcheck)

missing=()
for p in "${build[@]}" "${tests[@]}" "${check[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps: all ${#build[@]}+${#tests[@]}+${#check[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; run 'make deps' as root" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's packaged servers may start themselves; tests start their own.
for svc in memcached redis-server prometheus auditd; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done
echo "deps: done"
