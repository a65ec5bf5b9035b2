// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * For the daemon's benchmark: prints one line per netlink event, stamped
 * with CLOCK_MONOTONIC in microseconds, until killed:
 *
 *   T addr add|del IFINDEX ADDRESS
 *   T nft MSG TABLE PORTID FAMILY CHAIN HOOK
 *
 * so a script can pair a tampering or an address change with the daemon's
 * answer as the kernel reported both, without a poll loop's granularity.
 *
 * `nlstamp follow` narrows the nftables monitor as the daemon does: a watch
 * learns the base chains on the path and the chains they jump to, and
 * after each read the monitor's filter follows them. A line then ends in "concerns" or "ignored",
 * the watch's verdict.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "netfilter/monitor.h"
#include "netfilter/nft.h"

static struct nf_watch *watch;

static unsigned long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

static void print(const struct nl_event *ev, void *data)
{
	char a[64];
	unsigned long long t = *(unsigned long long *)data;

	if (ev->type == NL_EV_ADDR)
		printf("%llu addr %s %d %s\n", t, ev->removed ? "del" : "add", ev->ifindex,
		       inet_ntop(ev->addr.family, ev->addr.bytes, a, sizeof(a)) ? a : "?");
	else if (ev->type == NL_EV_NFT)
		printf("%llu nft %u %s %u %u %s %d%s\n", t, ev->nft_msg,
		       ev->table[0] ? ev->table : "-", ev->portid, ev->nfproto,
		       ev->chain[0] ? ev->chain : "-", ev->hook,
		       !watch			      ? ""
		       : nf_watch_concerns(watch, ev) ? " concerns"
						      : " ignored");
}

int main(int argc, char **argv)
{
	struct nl_monitor *m[2];
	struct pollfd p[2];
	struct nf_sock *s;
	struct nf_err e = { 0 };

	if (nl_monitor_open(NL_MON_RTNL, &m[0]) < 0 || nl_monitor_open(NL_MON_NFT, &m[1]) < 0) {
		perror("nlstamp: netlink");
		return 1;
	}
	if (argc > 1 && !strcmp(argv[1], "follow") &&
	    (nf_sock_open(&s) < 0 || nf_watch_new(s, &watch, &e) < 0 ||
	     nf_watch_reach(watch, s, &e) < 0 || nf_watch_follow(watch, m[1]) < 0)) {
		fprintf(stderr, "nlstamp: cannot follow the base chains: %s\n", e.msg);
		return 1;
	}
	for (int i = 0; i < 2; i++)
		p[i] = (struct pollfd){ .fd = nl_monitor_fd(m[i]), .events = POLLIN };
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (poll(p, 2, -1) < 0)
			continue;
		for (int i = 0; i < 2; i++)
			if (p[i].revents & POLLIN) {
				unsigned long long t = now_us();

				nl_monitor_read(m[i], print, &t);
				if (watch && i == 1) {
					nf_watch_reach(watch, s, &e);
					nf_watch_follow(watch, m[1]);
				}
			}
		fflush(stdout);
	}
}
