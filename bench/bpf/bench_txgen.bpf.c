// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bench_txgen.bpf.c: the frame source of kcache-bench --flood-xdp (tools/bench/bench_xdp.c). Run
 * by BPF_PROG_TEST_RUN in live-frames mode, it sends every frame it is given out of one interface
 * (XDP_REDIRECT to its ndo_xdp_xmit); on a veth, that puts the frame in the peer's receive ring
 * without an skb, as a NIC's receive ring would hold it. It never looks at or changes the frame:
 * the loader builds it (addresses and checksums) and checks where it may go.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Interface the frames leave by (set by the loader before load). */
const volatile __u32 kb_ifindex = 0;

SEC("xdp")
int kb_txgen(struct xdp_md *ctx)
{
	return bpf_redirect(kb_ifindex, 0);
}

/* The probe: one live-frames call with this program says whether the kernel accepts the mode,
 * and sends nothing (the frame is dropped, not redirected). */
SEC("xdp")
int kb_txgen_probe(struct xdp_md *ctx)
{
	return XDP_DROP;
}
