/* proto_meta.c: memcached's meta commands mg, ms, md, ma, mn and me, as memcached 1.6.18 answers
 * them (tests/integration/serve/compat_memcached.sh compares every flag side by side).
 *
 * Flags (memcached 1.6.18 names). Every command accepts every known flag, P and L included (a flag
 * that means nothing to it is ignored, as memcached does); an unknown one (E, which 1.6.18 does
 * not have yet, too) is "CLIENT_ERROR invalid flag", a repeated one "CLIENT_ERROR duplicate
 * flag"; md and ma say "CLIENT_ERROR invalid or duplicate flag" for every flag error.
 *   mg <key> [b c f h k l O q s t u v N R T]    -> VA <len> <flags>, HD <flags>, EN
 *   ms <key> <len> [b c C F I k M O q T]         -> HD, NS, EX, NF
 *   md <key> [b C I k O q T]                     -> HD, NF, EX
 *   ma <key> [b c C D J k M N O q t T v]         -> HD, VA, NF, NS, EX
 *   mn -> MN;  me <key> [b] -> ME <key> exp= la= cas= fetch= cls= size=, EN
 * Return flags are echoed in the order given; mg appends Z (someone holds the lease), X (stale)
 * and W (this client won the lease: recache it). Leases: N<ttl> creates an empty item on a miss
 * and hands its W to the first client; R<ttl> hands W out when the item has less than ttl left;
 * md I marks an item stale (new cas, T sets its ttl) and hands W to the next mg; ms I with a cas
 * older than the item's stores the value but keeps it stale. The lease state (KC_ITEM_TOKEN,
 * KC_ITEM_STALE) lives in the memory tier only, like memcached's per-server state: it is not
 * written to the lower tiers, and a key refilled from below starts without it.
 * q hides the nominal reply only (EN for mg, HD for ms/md/ma); errors and NF/NS/EX are sent.
 * Deliberate difference: a t after a T that expired the item prints t0 (memcached prints the
 * expired time minus its clock as an unsigned number).
 */
#include "serve/proto_int.h"

#include <string.h>

#include "core/base64.h"

#define META_MAX_TOKENS 20 /* memcached's MFLAG_MAX_OPT_LENGTH: tokens + its end marker */
#define META_MAX_OPAQUE 32

struct meta {
	struct kc_tok *flags; /* the flag tokens, for echoing in order */
	size_t nflags;
	bool q, v, u, b, I, has_T, has_N, has_R, has_C;
	int64_t T, N, R; /* absolute deadlines (kc_proto_exptime) */
	uint64_t C, D, J;
	uint32_t F;
	char M;
};

static const char *const bad_format = "CLIENT_ERROR bad command line format\r\n";
static const char *const bad_token = "CLIENT_ERROR bad token in command line format\r\n";

/* Writes an error reply; meta errors ignore noreply (memcached's out_errstring). */
static void meta_error(struct kc_cmd *cmd, const char *s)
{
	cmd->noreply = false;
	kc_reply_error(cmd, KC_RES_CLIENT_ERROR, s);
}

/* memcached's _meta_flag_preparse: flags from t[0] on; key is decoded in place into kbuf when
 * b is given. Returns NULL, or the error line to send. */
static const char *parse_flags(struct kc_tok *t, size_t n, struct kc_tok *key, char *kbuf,
			       struct meta *m)
{
	const char *err = NULL;
	bool seen[128] = {0};
	int64_t now = kc_mem_now();

	memset(m, 0, sizeof(*m));
	m->flags = t;
	m->nflags = n;
	m->D = 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char f = (unsigned char)t[i].p[0];
		struct kc_tok val = {t[i].p + 1, t[i].n - 1};
		int32_t i32 = 0;

		if (f >= 127 || seen[f])
			return "CLIENT_ERROR duplicate flag\r\n";
		seen[f] = true;
		switch (f) {
		case 'b': {
			size_t len = kc_base64_decode(key->p, key->n, kbuf);

			m->b = true;
			if (len == 0)
				err = "CLIENT_ERROR error decoding key\r\n";
			else
				*key = (struct kc_tok){kbuf, len};
			break;
		}
		case 'N':
		case 'T':
		case 'R':
			if (!kc_tok_i32(&val, &i32)) {
				err = bad_token;
				break;
			}
			if (f == 'N') {
				m->has_N = true;
				m->N = kc_proto_exptime(i32, now);
			} else if (f == 'T') {
				m->has_T = true;
				m->T = kc_proto_exptime(i32, now);
			} else {
				m->has_R = true;
				m->R = kc_proto_exptime(i32, now);
			}
			break;
		case 'O':
		case 'P':
		case 'L':
		case 'k':
		case 's':
		case 't':
		case 'c':
		case 'f':
		case 'l':
		case 'h':
			break;
		case 'v':
			m->v = true;
			break;
		case 'u':
			m->u = true;
			break;
		case 'q':
			m->q = true;
			break;
		case 'I':
			m->I = true;
			break;
		case 'F':
			if (!kc_tok_u32(&val, &m->F))
				err = err ? err : bad_format;
			break;
		case 'C':
			if (!kc_tok_u64(&val, &m->C))
				err = bad_token;
			else
				m->has_C = true;
			break;
		case 'M':
			if (val.n != 1)
				err = "CLIENT_ERROR incorrect length for M token\r\n";
			else
				m->M = val.p[0];
			break;
		case 'J':
			if (!kc_tok_u64(&val, &m->J))
				err = "CLIENT_ERROR invalid numeric initial value\r\n";
			break;
		case 'D':
			if (!kc_tok_u64(&val, &m->D))
				err = "CLIENT_ERROR invalid numeric delta value\r\n";
			break;
		default:
			return "CLIENT_ERROR invalid flag\r\n";
		}
	}
	return err;
}

static void put_num(struct kc_buf *out, char flag, uint64_t v)
{
	char num[24] = {' ', flag};

	kc_buf_append(out, num, (size_t)(kc_u64toa(v, num + 2) - num));
}

static void put_ttl(struct kc_buf *out, int64_t exptime)
{
	int64_t ttl = exptime - kc_mem_now();

	if (exptime == 0)
		kc_buf_append(out, " t-1", 4);
	else
		put_num(out, 't', ttl > 0 ? (uint64_t)ttl : 0);
}

/* " k<key>", base64 and followed by " b" for a binary key: one stored with b, as memcached
 * marks the item (a reply about an item), or the request's b (a reply without one). */
static void put_key(struct kc_buf *out, bool binary, const struct kc_tok *key)
{
	char enc[KC_BASE64_LEN(KC_KEY_MAX)];

	kc_buf_append(out, " k", 2);
	if (!binary) {
		kc_buf_append(out, key->p, key->n);
		return;
	}
	kc_buf_append(out, enc, kc_base64_encode(key->p, key->n, enc));
	kc_buf_append(out, " b", 2);
}

/* The O and k flags, in order: all that a reply without an item echoes. False after an error
 * reply (an opaque longer than memcached's 32 bytes). */
static bool put_opaque_key(struct kc_cmd *cmd, const struct meta *m, const struct kc_tok *key)
{
	for (size_t i = 0; i < m->nflags; i++) {
		const struct kc_tok *f = &m->flags[i];

		if (f->p[0] == 'O') {
			if (f->n > META_MAX_OPAQUE) {
				meta_error(cmd, "CLIENT_ERROR opaque token too long\r\n");
				return false;
			}
			kc_buf_append(cmd->out, " ", 1);
			kc_buf_append(cmd->out, f->p, f->n);
		} else if (f->p[0] == 'k') {
			put_key(cmd->out, m->b, key);
		}
	}
	return true;
}

/* Checks what every meta command with a key checks first; false after the reply. */
static bool check_key(struct kc_cmd *cmd, size_t nt, const struct kc_tok *key, const char *too_long)
{
	if (nt < 2) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return false;
	}
	if (key->n > KC_KEY_MAX) {
		meta_error(cmd, bad_format);
		return false;
	}
	if (nt + 1 > META_MAX_TOKENS) {
		meta_error(cmd, too_long);
		return false;
	}
	return true;
}

/* mg's lease decision (memcached's W, Z and X). */
struct lease {
	bool created, won, had_token, stale;
};

static void lease_decide(struct lease *l, struct kc_item *it, const struct meta *m,
			 const struct kc_mem_seen *seen)
{
	unsigned st = seen->state;

	l->had_token = st & KC_ITEM_TOKEN;
	l->stale = st & KC_ITEM_STALE;
	l->won = l->created && m->has_N;
	if (m->has_R && !l->had_token && !l->created && seen->exptime != 0 && seen->exptime < m->R)
		l->won = true;
	if (l->stale && !l->had_token)
		l->won = true;
	/* Two clients may decide at once: the one whose bit it was wins, the other sees Z. */
	if (l->won && (atomic_fetch_or(&it->state, KC_ITEM_TOKEN) & KC_ITEM_TOKEN) && !l->created) {
		l->won = false;
		l->had_token = true;
	}
}

static void meta_get(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	struct kc_mem *mem = cmd->conn->env->mem;
	struct kc_tok key = t[1];
	char kbuf[KC_KEY_MAX];
	struct kc_mem_seen seen = {0};
	struct lease lease = {0};
	struct kc_item *it;
	struct meta m;
	const char *err;

	if (!check_key(cmd, nt, &t[1], "CLIENT_ERROR options flags are too long\r\n"))
		return;
	if ((err = parse_flags(t + 2, nt - 2, &key, kbuf, &m))) {
		meta_error(cmd, err);
		return;
	}
	it = kc_mem_get_meta(mem, key.p, key.n, m.has_T, m.T, !m.u, &seen);
	if (it && m.has_T)
		kc_cmd_wrote(cmd, key.p, key.n);
	if (!it) {
		it = kc_cmd_below(cmd, key.p, key.n);
		if (cmd->suspend)
			return;
		if (it) {
			seen.exptime = atomic_load(&it->exptime);
			seen.accessed = it->time;
			seen.state = atomic_load(&it->state);
		}
	}
	if (!it && m.has_N) {
		/* Vivify: an empty item whose lease this client holds; a racing creator wins. */
		struct kc_item *n = kc_item_new(key.p, key.n, 0, m.N, 0);

		if (n) {
			atomic_store(&n->state, KC_ITEM_TOKEN);
			if (kc_mem_store(mem, KC_ADD, n, 0, NULL) == KC_STORED) {
				it = n;
				lease.created = true;
				seen.exptime = m.N;
				seen.accessed = n->time;
			} else {
				kc_item_put(n);
				it = kc_mem_get_meta(mem, key.p, key.n, false, 0, !m.u, &seen);
			}
		}
	}
	if (cmd->conn->env->on_get)
		cmd->conn->env->on_get(cmd->conn->env->on_get_ctx, key.p, key.n, it);
	if (!it) {
		cmd->res = KC_RES_MISS;
		kc_cmd_count_get(cmd, false, 1, 0);
		kc_buf_append(cmd->out, "EN", 2);
		if (!put_opaque_key(cmd, &m, &key))
			return;
		kc_buf_append(cmd->out, "\r\n", 2);
		if (m.q)
			cmd->out->len = cmd->out_mark; /* q hides the miss */
		return;
	}
	cmd->res = KC_RES_HIT;
	if (m.v && cmd->conn->proto == KC_PROTO_UDP && !kc_cmd_room(cmd, it->nval)) {
		kc_item_put(it);
		return;
	}
	kc_cmd_count_get(cmd, m.has_T, 1, 1);
	lease_decide(&lease, it, &m, &seen);
	if (m.v) {
		char hdr[24] = "VA ";

		kc_buf_append(cmd->out, hdr, (size_t)(kc_u64toa(it->nval, hdr + 3) - hdr));
	} else {
		kc_buf_append(cmd->out, "HD", 2);
	}
	int64_t exptime = seen.exptime; /* what t reports: the new ttl only after T */

	for (size_t i = 0; i < m.nflags; i++) {
		const struct kc_tok *f = &m.flags[i];

		switch (f->p[0]) {
		case 'T':
			exptime = m.T;
			break;
		case 'N':
			if (lease.created)
				exptime = m.N;
			break;
		case 's':
			put_num(cmd->out, 's', it->nval);
			break;
		case 't':
			put_ttl(cmd->out, exptime);
			break;
		case 'c':
			put_num(cmd->out, 'c', it->cas);
			break;
		case 'f':
			put_num(cmd->out, 'f', it->flags);
			break;
		case 'l': {
			int64_t la = kc_mem_now() - seen.accessed;

			put_num(cmd->out, 'l', la > 0 ? (uint64_t)la : 0);
			break;
		}
		case 'h':
			kc_buf_append(cmd->out, seen.state & KC_ITEM_FETCHED ? " h1" : " h0", 3);
			break;
		case 'O':
			if (f->n > META_MAX_OPAQUE) {
				kc_item_put(it);
				meta_error(cmd, "CLIENT_ERROR opaque token too long\r\n");
				return;
			}
			kc_buf_append(cmd->out, " ", 1);
			kc_buf_append(cmd->out, f->p, f->n);
			break;
		case 'k':
			put_key(cmd->out, atomic_load(&it->state) & KC_ITEM_BINARY, &key);
			break;
		default:
			break;
		}
	}
	if (lease.had_token)
		kc_buf_append(cmd->out, " Z", 2);
	if (lease.stale)
		kc_buf_append(cmd->out, " X", 2);
	if (lease.won)
		kc_buf_append(cmd->out, " W", 2);
	kc_buf_append(cmd->out, "\r\n", 2);
	if (m.v) {
		kc_buf_append(cmd->out, kc_item_value(it), it->nval);
		kc_buf_append(cmd->out, "\r\n", 2);
	}
	kc_item_put(it);
}

/* Swallows the value block of an ms refused before reading it. */
static ssize_t swallow_value(struct kc_cmd *cmd, int32_t vlen, size_t avail)
{
	size_t need = (size_t)vlen + 2, now = avail < need ? avail : need;

	cmd->conn->swallow = need - now;
	return (ssize_t)now;
}

static void ms_reply(struct kc_cmd *cmd, const char *code, const struct meta *m,
		     const struct kc_tok *key, uint64_t cas)
{
	kc_buf_append(cmd->out, code, 2);
	for (size_t i = 0; i < m->nflags; i++) {
		const struct kc_tok *f = &m->flags[i];

		if (f->p[0] == 'O') {
			kc_buf_append(cmd->out, " ", 1);
			kc_buf_append(cmd->out, f->p, f->n);
		} else if (f->p[0] == 'k') {
			put_key(cmd->out, m->b, key);
		} else if (f->p[0] == 'c') {
			put_num(cmd->out, 'c', cas);
		}
	}
	kc_buf_append(cmd->out, "\r\n", 2);
}

static ssize_t meta_set(struct kc_cmd *cmd, struct kc_tok *t, size_t nt, const char *data,
			size_t avail)
{
	struct kc_tok key = t[1];
	char kbuf[KC_KEY_MAX];
	struct kc_item *it;
	struct meta m;
	int32_t vlen;
	uint64_t cas = 0;
	enum kc_set_mode mode = KC_SET;
	const char *err;

	if (nt < 2) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return 0;
	}
	if (t[1].n > KC_KEY_MAX || nt == 2) {
		meta_error(cmd, bad_format);
		return 0;
	}
	if (nt + 1 > META_MAX_TOKENS) {
		meta_error(cmd, "CLIENT_ERROR options flags too long\r\n");
		return 0;
	}
	/* As for set: a length memcached cannot hold is refused before any value is swallowed. */
	if (!kc_tok_i32(&t[2], &vlen) || vlen < 0 || vlen > INT32_MAX - 2) {
		meta_error(cmd, bad_format);
		return 0;
	}
	if ((err = parse_flags(t + 3, nt - 3, &key, kbuf, &m))) {
		meta_error(cmd, err);
		return swallow_value(cmd, vlen, avail);
	}
	for (size_t i = 0; i < m.nflags; i++)
		if (m.flags[i].p[0] == 'O' && m.flags[i].n > META_MAX_OPAQUE)
			err = "CLIENT_ERROR opaque token too long\r\n";
	switch (m.M) {
	case 0:
	case 'S':
		break;
	case 'E':
		mode = KC_ADD;
		break;
	case 'A':
		mode = KC_APPEND;
		break;
	case 'P':
		mode = KC_PREPEND;
		break;
	case 'R':
		mode = KC_REPLACE;
		break;
	default:
		err = "CLIENT_ERROR invalid mode for ms M token\r\n";
		break;
	}
	/* memcached: a cas turns set and replace into cas; add ignores it, append checks it. */
	if (m.has_C && (mode == KC_SET || mode == KC_REPLACE))
		mode = m.I ? KC_CAS_STALE : KC_CAS;
	if (err) {
		meta_error(cmd, err);
		return swallow_value(cmd, vlen, avail);
	}
	if (mode == KC_ADD && kc_cmd_need(cmd, key.p, key.n))
		return 0; /* add must know whether the key exists below before it stores */
	ssize_t used = kc_cmd_value(cmd, &key, m.F, m.has_T ? m.T : 0, vlen, data, avail, &it);

	if (used < 0 || !it)
		return used;
	if (m.b)
		atomic_store(&it->state, KC_ITEM_BINARY);
	enum kc_mem_result r = kc_mem_store(cmd->conn->env->mem, mode, it, m.C, &cas);

	kc_item_put(it);
	if ((r == KC_NOT_STORED || r == KC_NOT_FOUND) && mode != KC_ADD &&
	    kc_cmd_need(cmd, key.p, key.n))
		return 0; /* no key in memory: it may be below */
	cmd->res = kc_mem_res(r);
	switch (r) {
	case KC_STORED:
		kc_cmd_wrote(cmd, key.p, key.n);
		if (!m.q)
			ms_reply(cmd, "HD", &m, &key, cas);
		break;
	case KC_NOT_STORED:
		ms_reply(cmd, "NS", &m, &key, 0);
		break;
	case KC_EXISTS:
		ms_reply(cmd, "EX", &m, &key, 0);
		break;
	case KC_NOT_FOUND:
		ms_reply(cmd, "NF", &m, &key, 0);
		break;
	default:
		meta_error(cmd, "SERVER_ERROR out of memory storing object\r\n");
		cmd->res = KC_RES_SERVER_ERROR;
		break;
	}
	return used;
}

static void meta_delete(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	struct kc_mem *mem = cmd->conn->env->mem;
	struct kc_tok key = t[1];
	char kbuf[KC_KEY_MAX];
	struct meta m;
	enum kc_mem_result r;
	size_t mark;

	if (!check_key(cmd, nt, &t[1], "CLIENT_ERROR options flags too long\r\n"))
		return;
	if (parse_flags(t + 2, nt - 2, &key, kbuf, &m)) {
		meta_error(cmd, "CLIENT_ERROR invalid or duplicate flag\r\n");
		return;
	}
	kc_buf_append(cmd->out, "HD", 2); /* the code is filled in below */
	mark = cmd->out->len - 2;
	if (!put_opaque_key(cmd, &m, &key))
		return;
	if (m.has_C && m.C == 0) /* memcached compares a C0 too: no stored cas is 0 */
		r = kc_mem_has(mem, key.p, key.n) ? KC_EXISTS : KC_NOT_FOUND;
	else if (m.I)
		r = kc_mem_invalidate(mem, key.p, key.n, m.C, m.has_T, m.T);
	else
		r = kc_mem_delete(mem, key.p, key.n, m.C);
	if (r == KC_NOT_FOUND && kc_cmd_need(cmd, key.p, key.n))
		return;
	cmd->res = kc_mem_res(r);
	if (r == KC_DELETED && !m.I)
		kc_cmd_wrote(cmd, key.p, key.n); /* a stale mark stays in memory */
	if (r == KC_NO_MEMORY) {
		meta_error(cmd, "SERVER_ERROR out of memory\r\n");
		cmd->res = KC_RES_SERVER_ERROR;
		return;
	}
	if (r == KC_DELETED && m.q) {
		cmd->out->len = cmd->out_mark;
		return;
	}
	memcpy(cmd->out->data + mark, r == KC_DELETED ? "HD" : r == KC_EXISTS ? "EX" : "NF", 2);
	kc_buf_append(cmd->out, "\r\n", 2);
}

static void meta_arith(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	struct kc_mem *mem = cmd->conn->env->mem;
	struct kc_tok key = t[1];
	char kbuf[KC_KEY_MAX], num[24];
	struct meta m;
	uint64_t result = 0, cas = 0;
	bool incr = true, created = false;
	enum kc_mem_result r;

	if (!check_key(cmd, nt, &t[1], "CLIENT_ERROR options flags too long\r\n"))
		return;
	if (parse_flags(t + 2, nt - 2, &key, kbuf, &m)) {
		meta_error(cmd, "CLIENT_ERROR invalid or duplicate flag\r\n");
		return;
	}
	switch (m.M) {
	case 0:
	case 'I':
	case '+':
		break;
	case 'D':
	case '-':
		incr = false;
		break;
	default:
		meta_error(cmd, "CLIENT_ERROR invalid mode for ma M token\r\n");
		return;
	}
	r = kc_mem_arith_cas(mem, key.p, key.n, incr, m.D, m.C, &result, &cas);
	if (r == KC_NOT_FOUND && kc_cmd_need(cmd, key.p, key.n))
		return; /* before auto-vivifying: the key may be below */
	if (r == KC_NOT_FOUND && m.has_N) {
		/* Auto-vivify: store the initial value; a racing creator wins and we retry. */
		size_t n = (size_t)(kc_u64toa(m.J, num) - num);
		struct kc_item *it = kc_item_new(key.p, key.n, 0, m.N, n);

		if (!it) {
			meta_error(cmd, "SERVER_ERROR Out of memory allocating new item\r\n");
			return;
		}
		memcpy(kc_item_value(it), num, n);
		r = kc_mem_store(mem, KC_ADD, it, 0, &cas);
		kc_item_put(it);
		result = m.J;
		created = r == KC_STORED;
		if (r == KC_NOT_STORED)
			r = kc_mem_arith(mem, key.p, key.n, incr, m.D, &result, &cas);
	}
	cmd->res = kc_mem_res(r);
	if (r == KC_NON_NUMERIC) {
		meta_error(cmd, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
		return;
	}
	if (r != KC_STORED && r != KC_NOT_FOUND && r != KC_NOT_STORED && r != KC_EXISTS) {
		meta_error(cmd, "SERVER_ERROR out of memory\r\n");
		cmd->res = KC_RES_SERVER_ERROR;
		return;
	}
	if (r != KC_STORED) {
		kc_buf_append(cmd->out, r == KC_NOT_FOUND ? "NF" : r == KC_EXISTS ? "EX" : "NS", 2);
		if (put_opaque_key(cmd, &m, &key))
			kc_buf_append(cmd->out, "\r\n", 2);
		return;
	}
	kc_cmd_wrote(cmd, key.p, key.n);
	cmd->res = KC_RES_OK;
	size_t nlen = (size_t)(kc_u64toa(result, num) - num);
	int64_t exptime = created ? m.N : 0;
	bool wants_ttl = m.has_T;

	for (size_t i = 0; i < m.nflags && !wants_ttl; i++)
		wants_ttl = m.flags[i].p[0] == 't';
	if (wants_ttl && !created) {
		/* The item's deadline as arith kept it, and T's new one applied. */
		struct kc_mem_seen seen = {0};
		struct kc_item *it = kc_mem_get_meta(mem, key.p, key.n, m.has_T, m.T, false, &seen);

		exptime = seen.exptime;
		kc_item_put(it);
	} else if (created && m.has_T) {
		kc_mem_touch(mem, key.p, key.n, m.T);
	}
	if (m.q)
		return; /* memcached: q skips the whole nominal reply, VA and value too */
	if (m.v) {
		char hdr[24] = "VA ";

		kc_buf_append(cmd->out, hdr, (size_t)(kc_u64toa(nlen, hdr + 3) - hdr));
	} else {
		kc_buf_append(cmd->out, "HD", 2);
	}
	for (size_t i = 0; i < m.nflags; i++) {
		const struct kc_tok *f = &m.flags[i];

		switch (f->p[0]) {
		case 'c':
			put_num(cmd->out, 'c', cas);
			break;
		case 't':
			put_ttl(cmd->out, exptime);
			break;
		case 'T':
			exptime = m.T;
			break;
		case 'O':
			if (f->n > META_MAX_OPAQUE) {
				meta_error(cmd, "CLIENT_ERROR opaque token too long\r\n");
				return;
			}
			kc_buf_append(cmd->out, " ", 1);
			kc_buf_append(cmd->out, f->p, f->n);
			break;
		case 'k':
			put_key(cmd->out, m.b, &key);
			break;
		default:
			break;
		}
	}
	kc_buf_append(cmd->out, "\r\n", 2);
	if (m.v) {
		kc_buf_append(cmd->out, num, nlen);
		kc_buf_append(cmd->out, "\r\n", 2);
	}
}

/* me <key> [b]: memcached's debug line. kcache has no slab classes: cls is always 1, size the
 * bytes the item counts against the memory limit. */
static void meta_debug(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	struct kc_tok key = t[1];
	char kbuf[KC_KEY_MAX], enc[KC_BASE64_LEN(KC_KEY_MAX)];
	struct kc_mem_seen seen = {0};
	bool b = nt >= 3 && kc_tok_is(&t[2], "b");
	struct kc_item *it;
	bool binary;

	if (nt < 2 || t[1].n > KC_KEY_MAX) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR, bad_format);
		return;
	}
	if (b) {
		size_t len = kc_base64_decode(t[1].p, t[1].n, kbuf);

		if (len == 0) {
			kc_reply_error(cmd, KC_RES_CLIENT_ERROR, bad_format);
			return;
		}
		key = (struct kc_tok){kbuf, len};
	}
	it = kc_mem_get_meta(cmd->conn->env->mem, key.p, key.n, false, 0, false, &seen);
	cmd->res = it ? KC_RES_HIT : KC_RES_MISS;
	if (!it) {
		kc_buf_append(cmd->out, "EN\r\n", 4);
		return;
	}
	int64_t now = kc_mem_now();

	kc_buf_append(cmd->out, "ME ", 3);
	binary = atomic_load(&it->state) & KC_ITEM_BINARY;
	if (binary)
		kc_buf_append(cmd->out, enc, kc_base64_encode(key.p, key.n, enc));
	else
		kc_buf_append(cmd->out, key.p, key.n);
	/* exp is memcached's (now - exptime): negative while the item lives. */
	kc_buf_printf(cmd->out, " exp=%lld la=%llu cas=%llu fetch=%s cls=1 size=%zu\r\n",
		      seen.exptime ? (long long)(now - seen.exptime) : -1LL,
		      (unsigned long long)(now > seen.accessed ? now - seen.accessed : 0),
		      (unsigned long long)it->cas, seen.state & KC_ITEM_FETCHED ? "yes" : "no",
		      kc_item_size(it->nkey, it->nval));
	kc_item_put(it);
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
	case KC_OP_ME:
		meta_debug(cmd, t, nt);
		return 0;
	default:
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return 0;
	}
}
