/* proto_cmd.c: the command toolkit that proto_text.c (classic commands) and proto_meta.c (meta
 * commands) both call: tokens and strict number parsing, the lower-tier hooks of a command, the
 * reply helpers, the memory tier's results as protocol results, reading a value block, and
 * exptime conversion (kc_proto_exptime, declared in proto_text.h). A leaf of the protocol: it
 * calls neither command file. Declared in proto_int.h. */
#include "serve/proto_int.h"

#include <string.h>

#include "core/num.h"

#define REALTIME_MAXDELTA (60 * 60 * 24 * 30) /* memcached: above this, exptime is absolute */

int64_t kc_proto_exptime(int64_t exptime, int64_t now)
{
	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return 1; /* in the past: stored, never returned */
	if (exptime > REALTIME_MAXDELTA)
		return exptime <= now ? 1 : exptime;
	return now + exptime;
}

bool kc_tok_next(const char **cur, const char *end, struct kc_tok *t)
{
	const char *p = *cur;

	while (p < end && *p == ' ')
		p++;
	if (p == end) {
		*cur = p;
		return false;
	}
	t->p = p;
	while (p < end && *p != ' ')
		p++;
	t->n = (size_t)(p - t->p);
	*cur = p;
	return true;
}

size_t kc_tokenize(const char *line, size_t n, struct kc_tok *t, size_t max)
{
	const char *cur = line, *end = line + n;
	size_t i = 0;
	struct kc_tok tmp;

	while (kc_tok_next(&cur, end, i < max ? &t[i] : &tmp))
		i++;
	return i;
}

bool kc_tok_is(const struct kc_tok *t, const char *s)
{
	size_t n = strlen(s);

	return t->n == n && memcmp(t->p, s, n) == 0;
}

bool kc_tok_u64(const struct kc_tok *t, uint64_t *out)
{
	return kc_parse_u64n(t->p, t->n, UINT64_MAX, out) == 0;
}

bool kc_tok_u32(const struct kc_tok *t, uint32_t *out)
{
	uint64_t v;

	if (!kc_tok_u64(t, &v) || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

bool kc_tok_i32(const struct kc_tok *t, int32_t *out)
{
	struct kc_tok u = *t;
	bool neg = false;
	uint64_t v;

	if (u.n > 0 && u.p[0] == '-') {
		neg = true;
		u.p++;
		u.n--;
	}
	if (!kc_tok_u64(&u, &v) || v > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX))
		return false;
	*out = neg ? (int32_t)(-(int64_t)v) : (int32_t)v;
	return true;
}

bool kc_cmd_need(struct kc_cmd *cmd, const char *key, size_t nkey)
{
	struct kc_proto_conn *c = cmd->conn;

	if (!c->pend || !kc_pend_need(c->pend, c->env->mem, key, nkey))
		return false;
	cmd->suspend = true;
	return true;
}

struct kc_item *kc_cmd_below(struct kc_cmd *cmd, const char *key, size_t nkey)
{
	struct kc_proto_conn *c = cmd->conn;

	return c->pend ? kc_pend_lookup(c->pend, key, nkey, &cmd->suspend) : NULL;
}

void kc_cmd_wrote(struct kc_cmd *cmd, const char *key, size_t nkey)
{
	if (cmd->conn->pend) {
		kc_pend_wrote(cmd->conn->pend, key, nkey);
		cmd->wrote = true;
	}
}

void kc_reply(struct kc_cmd *cmd, const char *s)
{
	if (!cmd->noreply)
		kc_buf_append(cmd->out, s, strlen(s));
}

void kc_reply_error(struct kc_cmd *cmd, enum kc_res res, const char *s)
{
	cmd->res = res;
	cmd->out->len = cmd->out_mark; /* drop a partial reply (e.g. VALUEs before a bad key) */
	if (!cmd->noreply)
		kc_buf_append(cmd->out, s, strlen(s));
}

void kc_cmd_count_get(struct kc_cmd *cmd, bool touch, unsigned n, unsigned hits)
{
	struct kc_stats *s = cmd->conn->stats;

	if (touch) {
		atomic_fetch_add_explicit(&s->touch_cmds, n, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&s->get_cmds, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->get_hits, hits, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->get_misses, n - hits, memory_order_relaxed);
}

void kc_udp_refuse(struct kc_cmd *cmd, enum kc_udp_refusal why, bool quiet)
{
	struct kc_proto_conn *c = cmd->conn;

	cmd->res = why == KC_UDP_REFUSED_SIZE ? KC_RES_SERVER_ERROR : KC_RES_CLIENT_ERROR;
	cmd->out->len = cmd->out_mark = 0; /* over UDP, out is this datagram's reply only */
	if (!quiet)
		kc_buf_puts(cmd->out,
			    why == KC_UDP_REFUSED_SIZE ? KC_UDP_TOO_LARGE : KC_UDP_NOT_ALLOWED);
	c->close = true;
	atomic_fetch_add_explicit(&c->stats->udp_refused[why], 1, memory_order_relaxed);
}

bool kc_cmd_room(struct kc_cmd *cmd, size_t more)
{
	struct kc_proto_conn *c = cmd->conn;

	if (c->proto == KC_PROTO_UDP) {
		if (!c->env->udp_out_max || cmd->out->len + more <= c->env->udp_out_max)
			return true;
		kc_udp_refuse(cmd, KC_UDP_REFUSED_SIZE, false);
		return false;
	}
	if (cmd->out->len - cmd->out_mark + more <= KC_GET_REPLY_MAX)
		return true;
	kc_reply_error(cmd, KC_RES_SERVER_ERROR,
		       "SERVER_ERROR out of memory writing get response\r\n");
	return false;
}

enum kc_res kc_mem_res(enum kc_mem_result r)
{
	switch (r) {
	case KC_STORED:
		return KC_RES_STORED;
	case KC_NOT_STORED:
		return KC_RES_NOT_STORED;
	case KC_EXISTS:
		return KC_RES_EXISTS;
	case KC_NOT_FOUND:
		return KC_RES_NOT_FOUND;
	case KC_DELETED:
		return KC_RES_DELETED;
	case KC_TOUCHED:
		return KC_RES_TOUCHED;
	case KC_NON_NUMERIC:
		return KC_RES_CLIENT_ERROR;
	case KC_TOO_LARGE:
	case KC_NO_MEMORY:
		return KC_RES_SERVER_ERROR;
	}
	return KC_RES_SERVER_ERROR;
}

ssize_t kc_cmd_value(struct kc_cmd *cmd, const struct kc_tok *key, uint32_t flags, int64_t exptime,
		     int32_t vlen, const char *data, size_t avail, struct kc_item **out_item)
{
	struct kc_proto_conn *c = cmd->conn;
	size_t need = (size_t)vlen + 2;
	struct kc_item *it;

	*out_item = NULL;
	if ((size_t)key->n + (size_t)vlen > c->env->item_max) {
		/* memcached: reply, swallow the value, and drop any stale copy for a set. */
		kc_reply_error(cmd, KC_RES_SERVER_ERROR,
			       "SERVER_ERROR object too large for cache\r\n");
		if (cmd->op == KC_OP_SET || cmd->op == KC_OP_MS) {
			kc_mem_delete(c->env->mem, key->p, key->n, 0);
			kc_cmd_wrote(cmd, key->p, key->n);
		}
		size_t now = avail < need ? avail : need;

		c->swallow = need - now;
		return (ssize_t)now;
	}
	if (avail < need)
		return -1;
	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR, "CLIENT_ERROR bad data chunk\r\n");
		return (ssize_t)need;
	}
	it = kc_item_new(key->p, key->n, flags, exptime, (size_t)vlen);
	if (!it) {
		kc_reply_error(cmd, KC_RES_SERVER_ERROR,
			       "SERVER_ERROR out of memory storing object\r\n");
		return (ssize_t)need;
	}
	memcpy(kc_item_value(it), data, (size_t)vlen);
	*out_item = it;
	return (ssize_t)need;
}
