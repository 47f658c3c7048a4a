# kernel_lib.bash: sourced by the kernel-tier tests (kernel_*.sh) after common.sh and netns.sh.
# Builds kc_consist and makes the pair they all use: a server namespace S (198.18.0.1 on DS,
# where kcached attaches XDP) and a client namespace C (198.18.0.2 on DC, with a pass-through
# XDP program so XDP_TX replies arrive), a private pin folder PIN, and kc() to run kc_consist
# in C against the server. All of it is removed at exit.
cc -O2 -Wall -Wextra -Werror -pthread -o "$TMP/kc_consist" tests/integration/kernel/kc_consist.c
S=kcs$$ C=kcc$$ DS=kcs$$a DC=kcc$$b PIN=/sys/fs/bpf/kctest-$$
on_exit "rm -rf $PIN"
netns_add "$S"
netns_add "$C"
netns_veth "$S" "$DS" 198.18.0.1/24 "$C" "$DC" 198.18.0.2/24
netns_xdp_pass "$C" "$DC"
kc() { in_ns "$C" "$TMP/kc_consist" "$1" 198.18.0.1 "$NETNS_PORT" "${@:2}"; }
