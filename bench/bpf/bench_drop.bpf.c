// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bench_drop.bpf.c: the floor of bench/policy-drop.sh. An XDP program that drops every frame
 * without looking at it: what a drop costs when deciding it is free. The bench subtracts its
 * cost per packet from every dropper's to get what the dropper's own decision costs. Loaded by
 * iproute2 (`ip link set dev X xdpdrv obj ... sec xdp`); the veth's own counters count its
 * drops (ethtool -S: rx_queue_N_xdp_drops).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int kb_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}
