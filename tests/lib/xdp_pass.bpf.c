// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdp_pass.bpf.c: an XDP program that passes every frame. Attached natively to the peer end of
 * a veth pair in tests, because veth delivers XDP_TX/redirected frames to a peer only when that
 * peer runs an XDP program of its own. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int kc_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
