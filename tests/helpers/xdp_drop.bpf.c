// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * For the netns tier: drops IPv4 TCP to port 5900 (the forward's host.port)
 * where it is attached, XDP or tc ingress, so a test can show a drop that no
 * nftables rule shows.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

static __always_inline int is_vnc(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_TCP)
		return 0;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > end)
		return 0;
	return tcp->dest == bpf_htons(5900);
}

SEC("xdp")
int xdp_drop_vnc(struct xdp_md *ctx)
{
	return is_vnc((void *)(long)ctx->data, (void *)(long)ctx->data_end) ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_drop_vnc(struct __sk_buff *skb)
{
	return is_vnc((void *)(long)skb->data, (void *)(long)skb->data_end) ? TC_ACT_SHOT
									    : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
