// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The nftables socket: requests, and the one batch that carries a change.
 * Every message of a batch has its own seq and remembers the object it is
 * about, so a refusal names that object along with the kernel's own text.
 *
 * Netlink to the kernel is synchronous: when sendmsg() returns, every ack and
 * error of the batch is already queued, so replies are read until EAGAIN.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>

#include "netfilter/nft_priv.h"

#define RECV_SIZE (1 << 16)
#define MSG_ROOM (1 << 15) /* the most one message of ours can take */

struct nf_sock {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	char *rbuf;
};

int nf_sock_open(struct nf_sock **out)
{
	struct nf_sock *s;
	int one = 1, r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->rbuf = malloc(RECV_SIZE);
	if (!s->rbuf) {
		r = -ENOMEM;
		goto err_free;
	}
	s->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!s->nl) {
		r = -errno;
		goto err_free;
	}
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto err_close;
	}
	/* the kernel's reason, not just an errno; acks without the request echoed */
	mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)time(NULL);
	*out = s;
	return 0;
err_close:
	mnl_socket_close(s->nl);
err_free:
	free(s->rbuf);
	free(s);
	return r;
}

uint32_t nf_sock_portid(const struct nf_sock *s)
{
	return s->portid;
}

void nf_sock_close(struct nf_sock *s)
{
	if (!s)
		return;
	mnl_socket_close(s->nl);
	free(s->rbuf);
	free(s);
}

/* ---- errors ---------------------------------------------------------- */

static void err_set(struct nf_err *err, int error, const char *object, const char *msg)
{
	if (!err || err->error)
		return;
	err->error = error;
	snprintf(err->object, sizeof(err->object), "%s", object ? object : "");
	snprintf(err->msg, sizeof(err->msg), "%s", msg ? msg : "");
}

/* The error code and extended-ack message of an NLMSG_ERROR reply. */
static int parse_nlerr(const struct nlmsghdr *nlh, const char **msg)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;
	size_t off;

	*msg = NULL;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return -EBADMSG;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
		if (mnl_nlmsg_size(off) <= nlh->nlmsg_len) {
			int len = (int)(nlh->nlmsg_len - mnl_nlmsg_size(off));

			for (attr = (const void *)((const char *)e + off); mnl_attr_ok(attr, len);
			     len -= (int)MNL_ALIGN(attr->nla_len), attr = mnl_attr_next(attr))
				if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
				    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
					*msg = mnl_attr_get_str(attr);
		}
	}
	return e->error;
}

/* ---- requests ---------------------------------------------------------- */

struct dump_ctx {
	nf_obj_cb cb;
	void *data;
	int err;
};

static int dump_data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *d = data;
	int r = d->cb(nlh, d->data);

	if (r < 0) {
		d->err = r;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

/* What a buffer of replies holds: a message flagged NLM_F_DUMP_INTR, the dump's end. */
static void dump_scan(const char *buf, ssize_t n, bool *intr, bool *end)
{
	int len = (int)n;

	for (const struct nlmsghdr *h = (const void *)buf; mnl_nlmsg_ok(h, len);
	     h = mnl_nlmsg_next(h, &len)) {
		*intr |= h->nlmsg_flags & NLM_F_DUMP_INTR;
		*end |= h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR;
	}
}

int nf_request(struct nf_sock *s, struct nlmsghdr *nlh, nf_obj_cb cb, void *data,
	       struct nf_err *err)
{
	struct dump_ctx d = { cb, data, 0 };
	uint32_t seq = nlh->nlmsg_seq;
	bool intr = false, end = false;
	const char *msg;
	ssize_t n;
	int r;

	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(s->nl, s->rbuf, RECV_SIZE);
		if (n < 0)
			return -errno;
		/*
		 * The ruleset changed while the kernel was dumping it: what came is
		 * not one state. The rest is read to its end, so that the next
		 * request finds no stale replies, and the caller reads again.
		 */
		if (nlh->nlmsg_flags & NLM_F_DUMP) {
			dump_scan(s->rbuf, n, &intr, &end);
			if (intr) {
				if (end)
					return -EINTR;
				continue;
			}
		}
		/* NLMSG_ERROR carries the errno; read it ourselves to keep the extack */
		const struct nlmsghdr *h = (const struct nlmsghdr *)s->rbuf;
		if (mnl_nlmsg_ok(h, (int)n) && h->nlmsg_type == NLMSG_ERROR) {
			r = parse_nlerr(h, &msg);
			if (r < 0 && r != -ENOENT)
				err_set(err, r, NULL, msg);
			return r;
		}
		r = mnl_cb_run(s->rbuf, n, seq, s->portid, dump_data_cb, &d);
		if (r == MNL_CB_ERROR)
			return d.err ? d.err : -errno;
		if (r == MNL_CB_STOP)
			return d.err;
		if (!(nlh->nlmsg_flags & NLM_F_DUMP))
			return d.err;
	}
}

struct nlmsghdr *nf_req_hdr(struct nf_sock *s, char *buf, uint16_t type, uint16_t family,
			    uint16_t flags)
{
	/* what libnftnl leaves unwritten (padding) must not go to the kernel as stack garbage */
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE);
	/* no NLM_F_ACK: a GET answers with the object or an error, a dump ends in DONE */
	return nftnl_nlmsg_build_hdr(buf, type, family, flags, ++s->seq);
}

/* ---- the batch -------------------------------------------------------- */

int nf_batch_init(struct nf_batch *b, struct nf_sock *s)
{
	memset(b, 0, sizeof(*b));
	b->cap = MSG_ROOM * 4;
	b->buf = malloc(b->cap);
	if (!b->buf)
		return -ENOMEM;
	b->seq_first = b->seq = s->seq + 1;
	b->what = calloc(64, sizeof(*b->what));
	if (!b->what) {
		free(b->buf);
		return -ENOMEM;
	}
	b->n_what = 64; /* what[0], the batch begin, stays "": no object of ours */
	nftnl_batch_begin(b->buf, b->seq++);
	b->len = NLMSG_ALIGN(((struct nlmsghdr *)b->buf)->nlmsg_len);
	return 0;
}

void nf_batch_free(struct nf_batch *b)
{
	free(b->buf);
	free(b->what);
}

struct nlmsghdr *nf_batch_msg(struct nf_batch *b, uint16_t type, uint16_t family, uint16_t flags,
			      const char *what)
{
	struct nlmsghdr *nlh;

	if (b->err)
		return NULL;
	if (b->cap - b->len < MSG_ROOM) {
		char *nb = realloc(b->buf, b->cap * 2 + MSG_ROOM);

		if (!nb) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->buf = nb;
		b->cap = b->cap * 2 + MSG_ROOM;
	}
	/* libnftnl leaves padding unwritten: no heap garbage to the kernel */
	memset(b->buf + b->len, 0, MSG_ROOM);
	size_t i = b->seq - b->seq_first;
	if (i >= b->n_what) {
		size_t n = b->n_what ? b->n_what * 2 : 64;
		char(*w)[96] = realloc(b->what, n * sizeof(*w));

		if (!w) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->what = w;
		b->n_what = n;
	}
	snprintf(b->what[i], sizeof(b->what[i]), "%s", what);
	nlh = nftnl_nlmsg_build_hdr(b->buf + b->len, type, family, flags | NLM_F_ACK, b->seq++);
	return nlh;
}

void nf_batch_put(struct nf_batch *b, struct nlmsghdr *nlh)
{
	if (nlh)
		b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

int nf_batch_send(struct nf_sock *s, struct nf_batch *b, struct nf_err *err)
{
	struct nlmsghdr *nlh;
	int size, first = 0;
	ssize_t n;

	if (b->err)
		return b->err;
	nlh = nftnl_batch_end(b->buf + b->len, b->seq);
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
	s->seq = b->seq;

	/* one sendmsg for the whole transaction: the socket must take it */
	size = (int)b->len + 4096;
	if (setsockopt(mnl_socket_get_fd(s->nl), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) <
	    0)
		setsockopt(mnl_socket_get_fd(s->nl), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (mnl_socket_sendto(s->nl, b->buf, b->len) < 0) {
		first = -errno;
		err_set(err, first, "the batch", NULL);
		return first;
	}
	for (;;) {
		n = recv(mnl_socket_get_fd(s->nl), s->rbuf, RECV_SIZE, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			if (!first)
				err_set(err, first = -errno, "reading the kernel's answer", NULL);
			break;
		}
		int len = (int)n;
		for (nlh = (struct nlmsghdr *)s->rbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const char *msg;
			int e;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			e = parse_nlerr(nlh, &msg);
			if (!e || first)
				continue;
			first = e;
			size_t i = nlh->nlmsg_seq - b->seq_first;
			err_set(err, e, i < b->n_what ? b->what[i] : NULL, msg);
		}
	}
	return first;
}
