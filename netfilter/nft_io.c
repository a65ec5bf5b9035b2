// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The netlink side of the forward: read what the kernel holds, compare it
 * with what the spec asks for, and write the difference as one batch.
 *
 * Netlink to the kernel is synchronous: when sendmsg() returns, every ack and
 * error of the batch is already queued, so replies are read until EAGAIN.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "netfilter/nft_priv.h"

#define RECV_SIZE (1 << 16)
#define MSG_ROOM (1 << 15)	/* the most one message of ours can take */
#define ELEMS_PER_MSG 64

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

/* ---- dumps ----------------------------------------------------------- */

typedef int (*obj_cb)(const struct nlmsghdr *nlh, void *data);

struct dump_ctx {
	obj_cb cb;
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

/*
 * One request; every reply goes to cb. Returns 0, or -errno from the kernel
 * (-ENOENT for an object that does not exist).
 */
static int request(struct nf_sock *s, struct nlmsghdr *nlh, obj_cb cb, void *data,
		   struct nf_err *err)
{
	struct dump_ctx d = { cb, data, 0 };
	uint32_t seq = nlh->nlmsg_seq;
	const char *msg;
	ssize_t n;
	int r;

	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(s->nl, s->rbuf, RECV_SIZE);
		if (n < 0)
			return -errno;
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

/* buf holds MNL_SOCKET_BUFFER_SIZE bytes */
static struct nlmsghdr *req_hdr(struct nf_sock *s, char *buf, uint16_t type, uint16_t family,
				uint16_t flags)
{
	/* what libnftnl leaves unwritten (padding) must not go to the kernel as stack garbage */
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE);
	/* no NLM_F_ACK: a GET answers with the object or an error, a dump ends in DONE */
	return nftnl_nlmsg_build_hdr(buf, type, family, flags, ++s->seq);
}

static int ignore_cb(const struct nlmsghdr *nlh, void *data)
{
	return 0;
}

/* ---- the kernel's state ---------------------------------------------- */

struct foreign_state {
	bool exists;
	struct nftnl_rule **ours; /* our tagged rules, in chain order */
	size_t n_ours;
	bool at_head; /* ours are the first rules of the chain */
};

struct actual {
	bool table;
	char comment[128];
	struct nftnl_chain *chains[16];
	size_t n_chains;
	struct nftnl_set *sets[16];
	size_t n_sets;
	struct nftnl_rule **rules;
	size_t n_rules;
	struct foreign_state foreign[8];
};

static void actual_free(struct actual *a)
{
	for (size_t i = 0; i < a->n_chains; i++)
		nftnl_chain_free(a->chains[i]);
	for (size_t i = 0; i < a->n_sets; i++)
		nftnl_set_free(a->sets[i]);
	for (size_t i = 0; i < a->n_rules; i++)
		nftnl_rule_free(a->rules[i]);
	free(a->rules);
	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		for (size_t i = 0; i < a->foreign[c].n_ours; i++)
			nftnl_rule_free(a->foreign[c].ours[i]);
		free(a->foreign[c].ours);
	}
	memset(a, 0, sizeof(*a));
}

static int table_comment_cb(const struct nftnl_udata *attr, void *data)
{
	if (nftnl_udata_type(attr) == NFTNL_UDATA_TABLE_COMMENT)
		snprintf(data, 128, "%s", (const char *)nftnl_udata_get(attr));
	return 0;
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct actual *a = data;
	struct nftnl_table *t = nftnl_table_alloc();
	uint32_t len;
	const void *ud;

	if (!t)
		return -ENOMEM;
	if (nftnl_table_nlmsg_parse(nlh, t) < 0) {
		nftnl_table_free(t);
		return -EBADMSG;
	}
	a->table = true;
	if (nftnl_table_is_set(t, NFTNL_TABLE_USERDATA)) {
		ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
		if (ud)
			nftnl_udata_parse(ud, len, table_comment_cb, a->comment);
	}
	nftnl_table_free(t);
	return 0;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct actual *a = data;
	struct nftnl_chain *c;

	if (a->n_chains == sizeof(a->chains) / sizeof(a->chains[0]))
		return 0; /* we make five: the text compare already differs */
	c = nftnl_chain_alloc();
	if (!c)
		return -ENOMEM;
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0) {
		nftnl_chain_free(c);
		return -EBADMSG;
	}
	/* chain dumps are not filtered by table in the kernel */
	if (strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), NF_TABLE_NAME)) {
		nftnl_chain_free(c);
		return 0;
	}
	a->chains[a->n_chains++] = c;
	return 0;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct actual *a = data;
	struct nftnl_set *s;

	if (a->n_sets == sizeof(a->sets) / sizeof(a->sets[0]))
		return 0;
	s = nftnl_set_alloc();
	if (!s)
		return -ENOMEM;
	if (nftnl_set_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		return -EBADMSG;
	}
	a->sets[a->n_sets++] = s;
	return 0;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	return nftnl_set_elems_nlmsg_parse(nlh, data) < 0 ? -EBADMSG : 0;
}

struct rules {
	struct nftnl_rule ***arr;
	size_t *n;
	bool only_ours;
	size_t seen; /* rules seen, ours or not */
	bool at_head;
};

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rules *rs = data;
	struct nftnl_rule *r = nftnl_rule_alloc(), **grown;
	const char *tag;

	if (!r)
		return -ENOMEM;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0) {
		nftnl_rule_free(r);
		return -EBADMSG;
	}
	rs->seen++;
	if (rs->only_ours) {
		tag = nf_exempt_tag(r);
		if (!tag || strncmp(tag, NF_TAG " ", strlen(NF_TAG) + 1)) {
			nftnl_rule_free(r);
			return 0;
		}
		if (rs->seen != *rs->n + 1)
			rs->at_head = false;
	}
	grown = realloc(*rs->arr, (*rs->n + 1) * sizeof(**rs->arr));
	if (!grown) {
		nftnl_rule_free(r);
		return -ENOMEM;
	}
	*rs->arr = grown;
	grown[(*rs->n)++] = r;
	return 0;
}

static int dump_rules(struct nf_sock *s, uint16_t family, const char *table, const char *chain,
		      struct rules *rs, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;
	int ret;

	if (!r)
		return -ENOMEM;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	if (chain)
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nlh = req_hdr(s, buf, NFT_MSG_GETRULE, family, NLM_F_DUMP);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	ret = request(s, nlh, rule_cb, rs, err);
	return ret == -ENOENT ? 0 : ret;
}

/* Does TABLE CHAIN exist in FAMILY? 1, 0, or -errno. */
static int chain_exists(struct nf_sock *s, uint16_t family, const char *table, const char *chain,
			struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;
	int ret;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
	nlh = req_hdr(s, buf, NFT_MSG_GETCHAIN, family, 0);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	ret = request(s, nlh, ignore_cb, NULL, err);
	if (ret == -ENOENT)
		return 0;
	return ret < 0 ? ret : 1;
}

/* Requests about our table, each with only the table's name filled in. */
static int put_table(struct nlmsghdr *nlh)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NF_TABLE_NAME);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return 0;
}

static int put_chain(struct nlmsghdr *nlh)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NF_TABLE_NAME);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return 0;
}

static int put_set(struct nlmsghdr *nlh)
{
	struct nftnl_set *st = nftnl_set_alloc();

	if (!st)
		return -ENOMEM;
	nftnl_set_set_str(st, NFTNL_SET_TABLE, NF_TABLE_NAME);
	nftnl_set_nlmsg_build_payload(nlh, st);
	nftnl_set_free(st);
	return 0;
}

static int table_request(struct nf_sock *s, uint16_t type, uint16_t flags,
			 int (*put)(struct nlmsghdr *), obj_cb cb, void *data, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = req_hdr(s, buf, type, NFPROTO_INET, flags);
	int r = put(nlh);

	return r < 0 ? r : request(s, nlh, cb, data, err);
}

static int read_actual(struct nf_sock *s, struct actual *a, struct nf_err *err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int r;

	memset(a, 0, sizeof(*a));

	r = table_request(s, NFT_MSG_GETTABLE, 0, put_table, table_cb, a, err);
	if (r < 0 && r != -ENOENT)
		goto err;

	if (a->table) {
		if ((r = table_request(s, NFT_MSG_GETCHAIN, NLM_F_DUMP, put_chain, chain_cb, a, err)) < 0 ||
		    (r = table_request(s, NFT_MSG_GETSET, NLM_F_DUMP, put_set, set_cb, a, err)) < 0)
			goto err;
		for (size_t i = 0; i < a->n_sets; i++) {
			nlh = req_hdr(s, buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP);
			nftnl_set_elems_nlmsg_build_payload(nlh, a->sets[i]);
			if ((r = request(s, nlh, elems_cb, a->sets[i], err)) < 0)
				goto err;
		}

		struct rules rs = { &a->rules, &a->n_rules, false, 0, true };
		if ((r = dump_rules(s, NFPROTO_INET, NF_TABLE_NAME, NULL, &rs, err)) < 0)
			goto err;
	}

	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		const struct nf_foreign_chain *fc = &nf_foreign_chains[c];
		struct foreign_state *f = &a->foreign[c];

		r = chain_exists(s, fc->family, fc->table, fc->chain, err);
		if (r < 0)
			goto err;
		f->exists = r;
		f->at_head = true;
		if (!f->exists)
			continue;
		struct rules rs = { &f->ours, &f->n_ours, true, 0, true };
		if ((r = dump_rules(s, fc->family, fc->table, fc->chain, &rs, err)) < 0)
			goto err;
		f->at_head = rs.at_head;
	}
	return 0;
err:
	actual_free(a);
	return r;
}

/* ---- comparing ------------------------------------------------------- */

struct text {
	char *buf;
	size_t len, cap;
	int err;
};

static void text_add(struct text *t, int (*fn)(const void *, char *, size_t), const void *obj)
{
	size_t need = 1 << 14;

	if (t->err)
		return;
	for (;;) {
		if (t->cap - t->len < need) {
			char *b = realloc(t->buf, t->cap + need * 2);

			if (!b) {
				t->err = -ENOMEM;
				return;
			}
			t->buf = b;
			t->cap += need * 2;
		}
		int r = fn(obj, t->buf + t->len, t->cap - t->len - 1);
		if (r == -ENOSPC) {
			need = (t->cap - t->len) * 2;
			continue;
		}
		if (r < 0) {
			t->err = r;
			return;
		}
		t->len += strlen(t->buf + t->len);
		t->buf[t->len++] = '\n';
		t->buf[t->len] = 0;
		return;
	}
}

static int table_text(const void *comment, char *buf, size_t len)
{
	int n = snprintf(buf, len, "table inet %s \"%s\"", NF_TABLE_NAME, (const char *)comment);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static int foreign_text(const void *fc, char *buf, size_t len)
{
	const struct nf_foreign_chain *f = fc;
	int n = snprintf(buf, len, "exempt %u %s %s", f->family, f->table, f->chain);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static int by_name_set(const void *a, const void *b)
{
	return strcmp(nftnl_set_get_str(*(struct nftnl_set *const *)a, NFTNL_SET_NAME),
		      nftnl_set_get_str(*(struct nftnl_set *const *)b, NFTNL_SET_NAME));
}

static int by_name_chain(const void *a, const void *b)
{
	return strcmp(nftnl_chain_get_str(*(struct nftnl_chain *const *)a, NFTNL_CHAIN_NAME),
		      nftnl_chain_get_str(*(struct nftnl_chain *const *)b, NFTNL_CHAIN_NAME));
}

/*
 * One text for a whole state. Sets and chains sort by name; rules keep their
 * order within a chain; exemptions count only if they head their chain.
 */
static int state_text(struct text *t, bool table, const char *comment, struct nftnl_set **sets,
		      size_t n_sets, struct nftnl_chain **chains, size_t n_chains,
		      struct nftnl_rule **rules, size_t n_rules, struct nftnl_rule **exempt,
		      size_t n_exempt, const bool *exempt_ok)
{
	struct nftnl_set **ss = NULL;
	struct nftnl_chain **cs = NULL;
	struct nftnl_rule **rs = NULL;

	if (table) {
		ss = malloc((n_sets + 1) * sizeof(*ss));
		cs = malloc((n_chains + 1) * sizeof(*cs));
		rs = malloc((n_rules + 1) * sizeof(*rs));
		if (!ss || !cs || !rs) {
			t->err = -ENOMEM;
			goto out;
		}
		memcpy(ss, sets, n_sets * sizeof(*ss));
		memcpy(cs, chains, n_chains * sizeof(*cs));
		/* rules arrive chain by chain already; group them without reordering */
		size_t k = 0;
		qsort(cs, n_chains, sizeof(*cs), by_name_chain);
		for (size_t c = 0; c < n_chains; c++)
			for (size_t i = 0; i < n_rules; i++)
				if (!strcmp(nftnl_rule_get_str(rules[i], NFTNL_RULE_CHAIN),
					    nftnl_chain_get_str(cs[c], NFTNL_CHAIN_NAME)))
					rs[k++] = rules[i];
		for (size_t i = 0; i < n_rules; i++) {
			bool known = false;

			for (size_t c = 0; c < n_chains; c++)
				known |= !strcmp(nftnl_rule_get_str(rules[i], NFTNL_RULE_CHAIN),
						 nftnl_chain_get_str(cs[c], NFTNL_CHAIN_NAME));
			if (!known)
				rs[k++] = rules[i];
		}
		qsort(ss, n_sets, sizeof(*ss), by_name_set);
		text_add(t, table_text, comment);
		for (size_t i = 0; i < n_sets; i++)
			text_add(t, nf_set_text, ss[i]);
		for (size_t i = 0; i < n_chains; i++)
			text_add(t, nf_chain_text, cs[i]);
		for (size_t i = 0; i < k; i++)
			text_add(t, nf_rule_text, rs[i]);
	}
	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		const struct nf_foreign_chain *fc = &nf_foreign_chains[c];

		text_add(t, foreign_text, fc);
		if (exempt_ok && !exempt_ok[c]) {
			text_add(t, table_text, "not at head");
			continue;
		}
		for (size_t i = 0; i < n_exempt; i++)
			if (nftnl_rule_get_u32(exempt[i], NFTNL_RULE_FAMILY) == fc->family &&
			    !strcmp(nftnl_rule_get_str(exempt[i], NFTNL_RULE_TABLE), fc->table) &&
			    !strcmp(nftnl_rule_get_str(exempt[i], NFTNL_RULE_CHAIN), fc->chain))
				text_add(t, nf_rule_text, exempt[i]);
	}
out:
	free(ss);
	free(cs);
	free(rs);
	return t->err;
}

static int actual_text(const struct actual *a, struct text *t)
{
	struct nftnl_rule **ex = NULL;
	bool ok[8];
	size_t n = 0;
	int r;

	for (size_t c = 0; c < nf_n_foreign_chains; c++)
		n += a->foreign[c].n_ours;
	ex = malloc((n + 1) * sizeof(*ex));
	if (!ex)
		return -ENOMEM;
	n = 0;
	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		ok[c] = a->foreign[c].at_head;
		for (size_t i = 0; i < a->foreign[c].n_ours; i++)
			ex[n++] = a->foreign[c].ours[i];
	}
	r = state_text(t, a->table, a->comment, (struct nftnl_set **)a->sets, a->n_sets,
		       (struct nftnl_chain **)a->chains, a->n_chains, a->rules, a->n_rules, ex,
		       n, ok);
	free(ex);
	return r;
}

static int objs_text(const struct nf_objs *o, struct text *t)
{
	char comment[128];
	const void *ud;
	uint32_t len;

	comment[0] = 0;
	ud = nftnl_table_get_data(o->table, NFTNL_TABLE_USERDATA, &len);
	if (ud)
		nftnl_udata_parse(ud, len, table_comment_cb, comment);
	return state_text(t, true, comment, (struct nftnl_set **)o->sets, o->n_sets,
			  (struct nftnl_chain **)o->chains, o->n_chains, o->rules, o->n_rules,
			  o->exempt, o->n_exempt, NULL);
}

/* ---- writing --------------------------------------------------------- */

struct batch {
	char *buf;
	size_t len, cap;
	uint32_t seq_first, seq;
	char (*what)[96]; /* object of each seq, for error messages */
	size_t n_what;
	int err;
};

static struct nlmsghdr *batch_msg(struct batch *b, uint16_t type, uint16_t family,
				  uint16_t flags, const char *what)
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
		char (*w)[96] = realloc(b->what, n * sizeof(*w));

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

static void batch_put(struct batch *b, struct nlmsghdr *nlh)
{
	if (nlh)
		b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

static int batch_init(struct batch *b, struct nf_sock *s)
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

static void batch_free(struct batch *b)
{
	free(b->buf);
	free(b->what);
}

static void b_table(struct batch *b, const struct nftnl_table *t, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = batch_msg(b, type, NFPROTO_INET, flags, "table inet " NF_TABLE_NAME);

	if (nlh)
		nftnl_table_nlmsg_build_payload(nlh, t);
	batch_put(b, nlh);
}

/* libnftnl declares nftnl_set_elem_clone() but does not export it */
static struct nftnl_set_elem *elem_copy(struct nftnl_set_elem *e)
{
	static const uint16_t attrs[] = { NFTNL_SET_ELEM_KEY, NFTNL_SET_ELEM_KEY_END,
					  NFTNL_SET_ELEM_DATA, NFTNL_SET_ELEM_FLAGS };
	struct nftnl_set_elem *c = nftnl_set_elem_alloc();
	const void *p;
	uint32_t len;

	for (size_t i = 0; c && i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (!nftnl_set_elem_is_set(e, attrs[i]))
			continue;
		p = nftnl_set_elem_get(e, attrs[i], &len);
		if (p && nftnl_set_elem_set(c, attrs[i], p, len) < 0) {
			nftnl_set_elem_free(c);
			c = NULL;
		}
	}
	return c;
}

static void b_set(struct batch *b, struct nftnl_set *s)
{
	char what[96];
	struct nlmsghdr *nlh;
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	struct nftnl_set *chunk = NULL;
	size_t n = 0;

	snprintf(what, sizeof(what), "set %s", nftnl_set_get_str(s, NFTNL_SET_NAME));
	nlh = batch_msg(b, NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL, what);
	if (nlh)
		nftnl_set_nlmsg_build_payload(nlh, s);
	batch_put(b, nlh);

	snprintf(what, sizeof(what), "elements of set %s", nftnl_set_get_str(s, NFTNL_SET_NAME));
	it = nftnl_set_elems_iter_create(s);
	if (!it) {
		b->err = -ENOMEM;
		return;
	}
	/* elements in messages of bounded size, each its own ack */
	for (e = nftnl_set_elems_iter_next(it);; e = nftnl_set_elems_iter_next(it)) {
		if (chunk && (!e || n == ELEMS_PER_MSG)) {
			nlh = batch_msg(b, NFT_MSG_NEWSETELEM, NFPROTO_INET,
					NLM_F_CREATE | NLM_F_EXCL, what);
			if (nlh)
				nftnl_set_elems_nlmsg_build_payload(nlh, chunk);
			batch_put(b, nlh);
			nftnl_set_free(chunk);
			chunk = NULL;
			n = 0;
		}
		if (!e)
			break;
		if (!chunk) {
			chunk = nftnl_set_alloc();
			if (!chunk) {
				b->err = -ENOMEM;
				break;
			}
			nftnl_set_set_str(chunk, NFTNL_SET_TABLE, NF_TABLE_NAME);
			nftnl_set_set_str(chunk, NFTNL_SET_NAME, nftnl_set_get_str(s, NFTNL_SET_NAME));
			nftnl_set_set_u32(chunk, NFTNL_SET_FAMILY, NFPROTO_INET);
		}
		struct nftnl_set_elem *c = elem_copy(e);
		if (!c) {
			b->err = -ENOMEM;
			break;
		}
		nftnl_set_elem_add(chunk, c);
		n++;
	}
	if (chunk)
		nftnl_set_free(chunk);
	nftnl_set_elems_iter_destroy(it);
}

static void b_chain(struct batch *b, const struct nftnl_chain *c)
{
	char what[96];
	struct nlmsghdr *nlh;

	snprintf(what, sizeof(what), "chain %s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	nlh = batch_msg(b, NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE | NLM_F_EXCL, what);
	if (nlh)
		nftnl_chain_nlmsg_build_payload(nlh, c);
	batch_put(b, nlh);
}

static const char *family_name(uint32_t f)
{
	return f == NFPROTO_IPV4 ? "ip" : f == NFPROTO_IPV6 ? "ip6" : "inet";
}

static void b_rule(struct batch *b, struct nftnl_rule *r, uint16_t type, uint16_t flags)
{
	char what[96];
	struct nlmsghdr *nlh;
	uint32_t fam = nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY);

	snprintf(what, sizeof(what), "%s rule in %s %s %s",
		 type == NFT_MSG_DELRULE ? "removing the" : "a", family_name(fam),
		 nftnl_rule_get_str(r, NFTNL_RULE_TABLE), nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	nlh = batch_msg(b, type, fam, flags, what);
	if (nlh)
		nftnl_rule_nlmsg_build_payload(nlh, r);
	batch_put(b, nlh);
}

static int batch_send(struct nf_sock *s, struct batch *b, struct nf_err *err)
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
	if (setsockopt(mnl_socket_get_fd(s->nl), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
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

static void foreign_present(const struct actual *a, bool *present)
{
	for (size_t c = 0; c < nf_n_foreign_chains; c++)
		present[c] = a->foreign[c].exists;
}

int nf_forward_up(struct nf_sock *s, const struct nf_forward_spec *spec, struct nf_err *err)
{
	struct text want = { 0 }, have = { 0 };
	struct nf_objs *o = NULL;
	struct actual a;
	struct batch b;
	bool present[8];
	int r;

	r = read_actual(s, &a, err);
	if (r < 0)
		return r;
	foreign_present(&a, present);
	r = nf_objs_build(spec, present, &o);
	if (r < 0)
		goto out;
	if ((r = objs_text(o, &want)) < 0 || (r = actual_text(&a, &have)) < 0)
		goto out;
	if (!strcmp(want.buf, have.buf)) {
		r = NF_UP_UNCHANGED;
		goto out;
	}

	if ((r = batch_init(&b, s)) < 0)
		goto out;
	/* replace the whole table: delete and add in one transaction */
	if (a.table) {
		b_table(&b, o->table, NFT_MSG_DELTABLE, 0);
	}
	b_table(&b, o->table, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	for (size_t i = 0; i < o->n_sets; i++)
		b_set(&b, o->sets[i]);
	for (size_t i = 0; i < o->n_chains; i++)
		b_chain(&b, o->chains[i]);
	for (size_t i = 0; i < o->n_rules; i++)
		b_rule(&b, o->rules[i], NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	for (size_t c = 0; c < nf_n_foreign_chains; c++)
		for (size_t i = 0; i < a.foreign[c].n_ours; i++)
			b_rule(&b, a.foreign[c].ours[i], NFT_MSG_DELRULE, 0);
	/* each insert goes to the head: insert in reverse to keep their order */
	for (size_t i = o->n_exempt; i-- > 0;)
		b_rule(&b, o->exempt[i], NFT_MSG_NEWRULE, NLM_F_CREATE);
	r = batch_send(s, &b, err);
	batch_free(&b);
	if (r == 0)
		r = NF_UP_CHANGED;
out:
	free(want.buf);
	free(have.buf);
	nf_objs_free(o);
	actual_free(&a);
	return r;
}

int nf_forward_down(struct nf_sock *s, bool *removed, struct nf_err *err)
{
	struct nftnl_table *t = NULL;
	struct actual a;
	struct batch b;
	size_t n = 0;
	int r;

	*removed = false;
	r = read_actual(s, &a, err);
	if (r < 0)
		return r;
	for (size_t c = 0; c < nf_n_foreign_chains; c++)
		n += a.foreign[c].n_ours;
	if (!a.table && !n)
		goto out;
	if ((r = batch_init(&b, s)) < 0)
		goto out;
	if (a.table) {
		t = nftnl_table_alloc();
		if (!t) {
			batch_free(&b);
			r = -ENOMEM;
			goto out;
		}
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, NF_TABLE_NAME);
		nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
		b_table(&b, t, NFT_MSG_DELTABLE, 0);
	}
	for (size_t c = 0; c < nf_n_foreign_chains; c++)
		for (size_t i = 0; i < a.foreign[c].n_ours; i++)
			b_rule(&b, a.foreign[c].ours[i], NFT_MSG_DELRULE, 0);
	r = batch_send(s, &b, err);
	batch_free(&b);
	if (t)
		nftnl_table_free(t);
	*removed = r == 0;
out:
	actual_free(&a);
	return r;
}

/* ---- status ---------------------------------------------------------- */

struct counter_ctx {
	uint64_t packets, bytes;
};

static int counter_cb(struct nftnl_expr *e, void *data)
{
	struct counter_ctx *c = data;

	if (!strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter")) {
		c->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		c->bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
	}
	return 0;
}

struct elem_find {
	const uint8_t *key;
	uint32_t klen;
	bool found;
	struct counter_ctx c;
};

static int elem_find_cb(struct nftnl_set_elem *e, void *data)
{
	struct elem_find *f = data;
	uint32_t len;
	const void *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);

	if (f->found || !k || len != f->klen || memcmp(k, f->key, len))
		return 0;
	f->found = true;
	nftnl_set_elem_expr_foreach(e, counter_cb, &f->c);
	return 0;
}

static struct nftnl_set *find_set(const struct actual *a, const char *name)
{
	for (size_t i = 0; i < a->n_sets; i++)
		if (!strcmp(nftnl_set_get_str(a->sets[i], NFTNL_SET_NAME), name))
			return a->sets[i];
	return NULL;
}

int nf_forward_status(struct nf_sock *s, const struct nf_forward_spec *spec,
		      struct nf_status *st, struct nf_err *err)
{
	static const char *const guests[NF_NFAM] = { "guests4", "guests6" };
	struct text want = { 0 }, have = { 0 };
	struct nf_objs *o = NULL;
	struct actual a;
	bool present[8];
	int r;

	memset(st, 0, sizeof(*st));
	r = read_actual(s, &a, err);
	if (r < 0)
		return r;
	st->table = a.table;
	foreign_present(&a, present);
	if (spec) {
		if ((r = nf_objs_build(spec, present, &o)) < 0 || (r = objs_text(o, &want)) < 0 ||
		    (r = actual_text(&a, &have)) < 0)
			goto out;
		st->matches = !strcmp(want.buf, have.buf);
	}
	for (size_t i = 0; i < a.n_rules; i++) {
		struct counter_ctx c = { 0 };

		if (strcmp(nftnl_rule_get_str(a.rules[i], NFTNL_RULE_CHAIN), "filter_pre"))
			continue;
		nftnl_expr_foreach(a.rules[i], counter_cb, &c);
		st->dropped_packets += c.packets;
		st->dropped_bytes += c.bytes;
	}
	if (spec) {
		st->fwd = calloc(spec->n_ports * NF_NFAM + 1, sizeof(*st->fwd));
		if (!st->fwd) {
			r = -ENOMEM;
			goto out;
		}
		for (int fam = 0; fam < NF_NFAM; fam++) {
			const struct nf_family *f = &spec->fam[fam];
			struct nftnl_set *set = find_set(&a, guests[fam]);
			unsigned int al = fam == NF_V4 ? 4 : 16;

			if (!f->enabled)
				continue;
			for (size_t i = 0; i < spec->n_ports; i++) {
				struct nf_fwd_status *fs = &st->fwd[st->n_fwd++];
				uint8_t key[24] = { 0 };
				uint16_t gp = htons(spec->ports[i].guest_port);
				struct elem_find ef = { key, al + 8, false, { 0 } };

				fs->port = spec->ports[i];
				fs->guest = f->guest;
				memcpy(key, f->guest.bytes, al);
				key[al] = spec->ports[i].proto;
				memcpy(key + al + 4, &gp, 2);
				if (set)
					nftnl_set_elem_foreach(set, elem_find_cb, &ef);
				fs->present = ef.found;
				fs->packets = ef.c.packets;
				fs->bytes = ef.c.bytes;
			}
		}
	}
	for (size_t c = 0; c < nf_n_foreign_chains; c++) {
		struct nf_exempt_status *es = &st->exempt[st->n_exempt++];

		es->chain = &nf_foreign_chains[c];
		es->chain_exists = a.foreign[c].exists;
		es->n_rules = a.foreign[c].n_ours;
		for (size_t i = 0; i < a.foreign[c].n_ours; i++) {
			struct counter_ctx cc = { 0 };

			nftnl_expr_foreach(a.foreign[c].ours[i], counter_cb, &cc);
			es->packets += cc.packets;
			es->bytes += cc.bytes;
		}
	}
	r = 0;
out:
	free(want.buf);
	free(have.buf);
	nf_objs_free(o);
	actual_free(&a);
	return r;
}

void nf_status_free(struct nf_status *st)
{
	if (!st)
		return;
	free(st->fwd);
	st->fwd = NULL;
}
