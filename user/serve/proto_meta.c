/* proto_meta.c: memcached's meta commands mg, ms, md, mn and ma.
 *
 * Flags supported (memcached 1.6 names):
 *   mg <key> [c f k O<opaque> q s t v T<ttl>]       -> VA <len> <flags>, HD <flags>, EN
 *   ms <key> <len> [c C<cas> F<flags> k M<mode> O q T<ttl>]  -> HD, NS, EX, NF
 *   md <key> [C<cas> k O q]                        -> HD, NF, EX
 *   ma <key> [c D<delta> J<initial> k M<mode> N<ttl> O q v] -> HD, VA, NF, NS
 *   mn                                             -> MN
 * Return flags are echoed in the order given. Unsupported flags (b, h, l, I, E, ...) get
 * "CLIENT_ERROR invalid flag" rather than a silently wrong answer. q hides the uninteresting
 * reply (EN for mg, HD for ms/ma, HD and NF for md); errors are always sent.
 */
#include "serve/proto_int.h"

#include <string.h>

struct meta {
	struct kc_tok *flags; /* the flag tokens, for echoing in order */
	size_t nflags;
	bool q, v, has_T, has_C, has_N, has_F;
	int64_t T, N; /* ttl values as given (memcached exptime) */
	uint64_t C, D, J;
	uint32_t F;
	char M;
};

static const char *const bad_flag = "CLIENT_ERROR invalid flag\r\n";
static const char *const bad_format = "CLIENT_ERROR bad command line format\r\n";

/* Parses flags; `allowed` lists the flag letters this command accepts. */
static bool parse_flags(struct kc_cmd *cmd, struct kc_tok *t, size_t n, const char *allowed,
			struct meta *m)
{
	memset(m, 0, sizeof(*m));
	m->flags = t;
	m->nflags = n;
	m->D = 1;
	for (size_t i = 0; i < n; i++) {
		char f = t[i].p[0];
		struct kc_tok val = {t[i].p + 1, t[i].n - 1};
		int32_t i32;
		bool ok = true;

		if (!strchr(allowed, f)) {
			kc_reply_error(cmd, KC_RES_CLIENT_ERROR, bad_flag);
			return false;
		}
		switch (f) {
		case 'q':
			m->q = true;
			break;
		case 'v':
			m->v = true;
			break;
		case 'T':
		case 'N':
			ok = kc_tok_i32(&val, &i32);
			if (f == 'T') {
				m->T = i32;
				m->has_T = true;
			} else {
				m->N = i32;
				m->has_N = true;
			}
			break;
		case 'C':
			ok = kc_tok_u64(&val, &m->C);
			m->has_C = true;
			break;
		case 'D':
			ok = kc_tok_u64(&val, &m->D);
			break;
		case 'J':
			ok = kc_tok_u64(&val, &m->J);
			break;
		case 'F':
			ok = kc_tok_u32(&val, &m->F);
			m->has_F = true;
			break;
		case 'M':
			ok = val.n == 1;
			m->M = val.n ? val.p[0] : 0;
			break;
		case 'O':
			ok = val.n <= 32;
			break;
		default:
			ok = val.n == 0;
			break; /* c f k s t: no value */
		}
		if (!ok) {
			kc_reply_error(cmd, KC_RES_CLIENT_ERROR, bad_format);
			return false;
		}
	}
	return true;
}

/* Appends the return flags the request asked for, in its order. */
static void echo_flags(struct kc_buf *out, const struct meta *m, const struct kc_tok *key,
		       struct kc_item *it, uint64_t cas)
{
	char num[24];

	for (size_t i = 0; i < m->nflags; i++) {
		const struct kc_tok *f = &m->flags[i];
		uint64_t v;
		int64_t ttl;

		switch (f->p[0]) {
		case 'O':
			kc_buf_append(out, " ", 1);
			kc_buf_append(out, f->p, f->n);
			continue;
		case 'k':
			kc_buf_append(out, " k", 2);
			kc_buf_append(out, key->p, key->n);
			continue;
		case 'c':
			v = cas;
			break;
		case 'f':
			v = it ? it->flags : 0;
			break;
		case 's':
			v = it ? it->nval : 0;
			break;
		case 't':
			ttl = it ? atomic_load(&it->exptime) : 0;
			if (ttl == 0) {
				kc_buf_append(out, " t-1", 4);
				continue;
			}
			ttl -= kc_mem_now();
			v = ttl > 0 ? (uint64_t)ttl : 0;
			break;
		default:
			continue;
		}
		num[0] = ' ';
		num[1] = f->p[0];
		kc_buf_append(out, num, (size_t)(kc_u64toa(v, num + 2) - num));
	}
}

static void reply_code(struct kc_cmd *cmd, const char *code, const struct meta *m,
		       const struct kc_tok *key, struct kc_item *it, uint64_t cas)
{
	kc_buf_append(cmd->out, code, 2);
	echo_flags(cmd->out, m, key, it, cas);
	kc_buf_append(cmd->out, "\r\n", 2);
}

static bool check_key(struct kc_cmd *cmd, size_t nt, const struct kc_tok *key)
{
	if (nt < 2 || key->n > KC_KEY_MAX) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR, bad_format);
		return false;
	}
	return true;
}

static void meta_get(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	struct kc_mem *mem = cmd->conn->env->mem;
	struct kc_item *it;
	struct meta m;

	if (!check_key(cmd, nt, &t[1]) || !parse_flags(cmd, t + 2, nt - 2, "cfkOqstvT", &m))
		return;
	it = m.has_T ? kc_mem_get_touch(mem, t[1].p, t[1].n, kc_proto_exptime(m.T, kc_mem_now()))
		     : kc_mem_get(mem, t[1].p, t[1].n);
	if (it && m.has_T)
		kc_cmd_wrote(cmd, t[1].p, t[1].n);
	if (!it) {
		it = kc_cmd_below(cmd, t[1].p, t[1].n);
		if (cmd->suspend)
			return;
	}
	if (cmd->conn->env->on_get)
		cmd->conn->env->on_get(cmd->conn->env->on_get_ctx, t[1].p, t[1].n, it);
	if (!it) {
		cmd->res = KC_RES_MISS;
		if (!m.q)
			kc_buf_append(cmd->out, "EN\r\n", 4);
		return;
	}
	cmd->res = KC_RES_HIT;
	if (m.v && cmd->conn->proto == KC_PROTO_UDP && !kc_cmd_room(cmd, it->nval)) {
		kc_item_put(it);
		return;
	}
	if (m.v) {
		char hdr[24] = "VA ";

		kc_buf_append(cmd->out, hdr, (size_t)(kc_u64toa(it->nval, hdr + 3) - hdr));
		echo_flags(cmd->out, &m, &t[1], it, it->cas);
		kc_buf_append(cmd->out, "\r\n", 2);
		kc_buf_append(cmd->out, kc_item_value(it), it->nval);
		kc_buf_append(cmd->out, "\r\n", 2);
	} else {
		reply_code(cmd, "HD", &m, &t[1], it, it->cas);
	}
	kc_item_put(it);
}

static ssize_t meta_set(struct kc_cmd *cmd, struct kc_tok *t, size_t nt, const char *data,
			size_t avail)
{
	struct kc_item *it;
	struct meta m;
	int32_t vlen;
	uint64_t cas = 0;
	enum kc_store_mode mode;

	if (!check_key(cmd, nt, &t[1]))
		return 0;
	if (nt < 3 || !kc_tok_i32(&t[2], &vlen) || vlen < 0) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR, "CLIENT_ERROR bad data chunk\r\n");
		return 0;
	}
	if (!parse_flags(cmd, t + 3, nt - 3, "cCFkMOqT", &m)) {
		/* The value still follows the line: swallow it so it is not read as commands. */
		size_t need = (size_t)vlen + 2, now = avail < need ? avail : need;

		cmd->conn->swallow = need - now;
		return (ssize_t)now;
	}
	switch (m.M ? m.M : 'S') {
	case 'S':
	case 's':
		mode = m.has_C ? KC_CAS : KC_SET;
		break;
	case 'E':
	case 'e':
		mode = KC_ADD;
		break;
	case 'A':
	case 'a':
		mode = KC_APPEND;
		break;
	case 'P':
	case 'p':
		mode = KC_PREPEND;
		break;
	case 'R':
	case 'r':
		mode = KC_REPLACE;
		break;
	default:
		mode = (enum kc_store_mode) - 1;
		break;
	}
	if ((int)mode < 0 || (m.has_C && mode != KC_CAS)) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR, "CLIENT_ERROR invalid mode for ms\r\n");
		size_t need = (size_t)vlen + 2, now = avail < need ? avail : need;

		cmd->conn->swallow = need - now;
		return (ssize_t)now;
	}
	if (mode == KC_ADD && kc_cmd_need(cmd, t[1].p, t[1].n))
		return 0; /* add must know whether the key exists below before it stores */
	ssize_t used =
	    kc_store_value(cmd, &t[1], m.F, m.has_T ? kc_proto_exptime(m.T, kc_mem_now()) : 0, vlen,
			   data, avail, &it);
	if (used < 0 || !it)
		return used;
	enum kc_mem_result r = kc_mem_store(cmd->conn->env->mem, mode, it, m.C, &cas);

	kc_item_put(it);
	if ((r == KC_NOT_STORED || r == KC_NOT_FOUND) && mode != KC_ADD &&
	    kc_cmd_need(cmd, t[1].p, t[1].n))
		return 0; /* no key in memory: it may be below */
	cmd->res = kc_mem_res(r);
	switch (r) {
	case KC_STORED:
		kc_cmd_wrote(cmd, t[1].p, t[1].n);
		if (!m.q)
			reply_code(cmd, "HD", &m, &t[1], NULL, cas);
		break;
	case KC_NOT_STORED:
		reply_code(cmd, "NS", &m, &t[1], NULL, 0);
		break;
	case KC_EXISTS:
		reply_code(cmd, "EX", &m, &t[1], NULL, 0);
		break;
	case KC_NOT_FOUND:
		reply_code(cmd, "NF", &m, &t[1], NULL, 0);
		break;
	default:
		kc_reply_error(cmd, KC_RES_SERVER_ERROR,
			       "SERVER_ERROR out of memory storing object\r\n");
		break;
	}
	return used;
}

static void meta_delete(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	struct meta m;

	if (!check_key(cmd, nt, &t[1]) || !parse_flags(cmd, t + 2, nt - 2, "CkOq", &m))
		return;
	enum kc_mem_result r = kc_mem_delete(cmd->conn->env->mem, t[1].p, t[1].n, m.C);

	if (r == KC_NOT_FOUND && kc_cmd_need(cmd, t[1].p, t[1].n))
		return;
	cmd->res = kc_mem_res(r);
	if (r == KC_DELETED)
		kc_cmd_wrote(cmd, t[1].p, t[1].n);
	if (r == KC_EXISTS)
		reply_code(cmd, "EX", &m, &t[1], NULL, 0);
	else if (!m.q)
		reply_code(cmd, r == KC_DELETED ? "HD" : "NF", &m, &t[1], NULL, 0);
}

static void meta_arith(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	struct kc_mem *mem = cmd->conn->env->mem;
	struct meta m;
	uint64_t result, cas = 0;
	int incr;

	if (!check_key(cmd, nt, &t[1]) || !parse_flags(cmd, t + 2, nt - 2, "cDJkMNOqv", &m))
		return;
	switch (m.M ? m.M : 'I') {
	case 'I':
	case 'i':
	case '+':
		incr = 1;
		break;
	case 'D':
	case 'd':
	case '-':
		incr = 0;
		break;
	default:
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR, "CLIENT_ERROR invalid mode for ma\r\n");
		return;
	}
	enum kc_mem_result r = kc_mem_arith(mem, t[1].p, t[1].n, incr, m.D, &result, &cas);

	if (r == KC_NOT_FOUND && kc_cmd_need(cmd, t[1].p, t[1].n))
		return; /* before auto-vivifying: the key may be below */
	if (r == KC_NOT_FOUND && m.has_N) {
		/* Auto-vivify: store the initial value; a racing creator wins and we retry. */
		char num[24];
		size_t n = (size_t)(kc_u64toa(m.J, num) - num);
		struct kc_item *it =
		    kc_item_new(t[1].p, t[1].n, 0, kc_proto_exptime(m.N, kc_mem_now()), n);

		if (!it) {
			kc_reply_error(cmd, KC_RES_SERVER_ERROR, "SERVER_ERROR out of memory\r\n");
			return;
		}
		memcpy(kc_item_value(it), num, n);
		r = kc_mem_store(mem, KC_ADD, it, 0, &cas);
		kc_item_put(it);
		result = m.J;
		if (r == KC_NOT_STORED)
			r = kc_mem_arith(mem, t[1].p, t[1].n, incr, m.D, &result, &cas);
	}
	cmd->res = kc_mem_res(r);
	switch (r) {
	case KC_STORED:
		kc_cmd_wrote(cmd, t[1].p, t[1].n);
		cmd->res = KC_RES_OK;
		if (m.v) {
			char num[24], hdr[24] = "VA ";
			size_t n = (size_t)(kc_u64toa(result, num) - num);

			kc_buf_append(cmd->out, hdr, (size_t)(kc_u64toa(n, hdr + 3) - hdr));
			echo_flags(cmd->out, &m, &t[1], NULL, cas);
			kc_buf_append(cmd->out, "\r\n", 2);
			kc_buf_append(cmd->out, num, n);
			kc_buf_append(cmd->out, "\r\n", 2);
		} else if (!m.q) {
			reply_code(cmd, "HD", &m, &t[1], NULL, cas);
		}
		break;
	case KC_NOT_FOUND:
		reply_code(cmd, "NF", &m, &t[1], NULL, 0);
		break;
	case KC_NOT_STORED:
		reply_code(cmd, "NS", &m, &t[1], NULL, 0);
		break;
	case KC_NON_NUMERIC:
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
		break;
	default:
		kc_reply_error(cmd, KC_RES_SERVER_ERROR, "SERVER_ERROR out of memory\r\n");
		break;
	}
}

ssize_t kc_proto_meta(struct kc_cmd *cmd, struct kc_tok *t, size_t nt, const char *data,
		      size_t avail)
{
	switch (cmd->op) {
	case KC_OP_MG:
		meta_get(cmd, t, nt);
		return 0;
	case KC_OP_MS:
		return meta_set(cmd, t, nt, data, avail);
	case KC_OP_MD:
		meta_delete(cmd, t, nt);
		return 0;
	case KC_OP_MA:
		meta_arith(cmd, t, nt);
		return 0;
	case KC_OP_MN:
		cmd->res = KC_RES_OK;
		kc_buf_append(cmd->out, "MN\r\n", 4);
		return 0;
	default:
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return 0;
	}
}
