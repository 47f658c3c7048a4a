#!/usr/bin/env bash
# Installs every Debian package that kcache's build, tests and benchmarks need, and the npm
# packages of tools/node/ (an S3 server for the object store tests), pinned by its lock file.
# Idempotent: when everything is present it touches nothing and asks no registry.
# Usage: tools/deps.sh            (as root)
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: compilers, BPF toolchain and the libraries kcached links.
build=(make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	libevent-dev libyaml-dev libssl-dev libxxhash-dev libhiredis-dev libzstd-dev
	libcurl4-openssl-dev libcmocka-dev libclang-rt-14-dev)
# Tests: real peers and real clients, plus the network tools for namespaces.
tests=(libmemcached-tools memcached redis-server redis-tools prometheus
	netcat-openbsd iproute2 curl procps psmisc xdp-tools jq ethtool
	openssl            # tests/integration/tiers/redis_tls.sh makes a throwaway CA
	auditd             # auditd: bench/audit-overhead.sh compares against it
	nftables iptables  # bench/policy-drop.sh compares kcached's policy against them
	nutcracker)        # twemproxy: bench/tiers.sh's floor for a hop in front of Redis
# Static analysis for `make check`.
check=(clang-format clang-tidy cppcheck)
# Node runs tools/node/s3rver.js (tests/integration/tiers/store_s3.sh); a node already on the PATH
# (20 or newer) is used as it is.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then tests+=(nodejs npm); fi

missing=()
for p in "${build[@]}" "${tests[@]}" "${check[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps: all ${#build[@]}+${#tests[@]}+${#check[@]} packages present"
elif [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; run 'make deps' as root" >&2
	exit 1
else
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian's packaged servers may start themselves; tests start their own.
	for svc in memcached redis-server prometheus auditd nutcracker; do
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
			systemctl stop "$svc" || true
		fi
	done
	echo "deps: done"
fi

# npm packages, exactly as tools/node/package-lock.json pins them. npm leaves its own copy of
# the lock in node_modules/.package-lock.json: when that is newer than ours, the install is
# current and npm is not run at all (nothing is asked of the registry).
node_dir=tools/node
if [ -f "$node_dir/node_modules/.package-lock.json" ] &&
	[ "$node_dir/node_modules/.package-lock.json" -nt "$node_dir/package-lock.json" ]; then
	echo "deps: npm packages of $node_dir present"
else
	echo "deps: npm ci in $node_dir"
	(cd "$node_dir" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
fi
