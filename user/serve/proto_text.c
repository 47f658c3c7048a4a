/* proto_text.c: memcached text protocol, classic commands, and the dispatcher kc_proto_process
 * (see proto_text.h). The meta commands (mg ms md mn ma) live in proto_meta.c, which the
 * dispatcher calls; the toolkit both call (tokens, replies, value blocks) is proto_cmd.c. Calls go
 * one way: proto_text.c -> proto_meta.c -> proto_cmd.c, and proto_text.c -> proto_cmd.c. */
#include "serve/proto_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/version.h"

/* --- retrieval ------------------------------------------------------------------------- */

static void append_value(struct kc_buf *out, struct kc_item *it, bool with_cas)
{
	char hdr[64 + KC_KEY_MAX], *p = hdr;

	memcpy(p, "VALUE ", 6);
	p += 6;
	memcpy(p, kc_item_key(it), it->nkey);
	p += it->nkey;
	*p++ = ' ';
	p = kc_u64toa(it->flags, p);
	*p++ = ' ';
	p = kc_u64toa(it->nval, p);
	if (with_cas) {
		*p++ = ' ';
		p = kc_u64toa(it->cas, p);
	}
	*p++ = '\r';
	*p++ = '\n';
	if (kc_buf_reserve(out, (size_t)(p - hdr) + it->nval + 2))
		return;
	kc_buf_append(out, hdr, (size_t)(p - hdr));
	kc_buf_append(out, kc_item_value(it), it->nval);
	kc_buf_append(out, "\r\n", 2);
}

/* How much of a get's line cmd_get sees: all of it, or a piece of a line too long to buffer
 * (keys up to a space; END only after the last piece; a piece may hold no key). */
enum get_part { GET_WHOLE, GET_PIECE, GET_LAST_PIECE };

/* get|gets <key>*, gat|gats <exptime> <key>* */
static void cmd_get(struct kc_cmd *cmd, const char *args, const char *end, enum get_part part)
{
	struct kc_proto_conn *c = cmd->conn;
	bool with_cas = cmd->op == KC_OP_GETS || cmd->op == KC_OP_GATS;
	bool touch = cmd->op == KC_OP_GAT || cmd->op == KC_OP_GATS;
	int64_t exptime = 0, now = kc_mem_now();
	struct kc_tok t;
	unsigned nkeys = 0, hits = 0;

	if (touch) {
		int32_t e;

		if (!kc_tok_next(&args, end, &t)) {
			kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
			return;
		}
		if (!kc_tok_i32(&t, &e)) {
			kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
				       "CLIENT_ERROR invalid exptime argument\r\n");
			return;
		}
		exptime = kc_proto_exptime(e, now);
	}
	while (kc_tok_next(&args, end, &t)) {
		struct kc_item *it;

		if (t.n > KC_KEY_MAX) {
			kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
				       "CLIENT_ERROR bad command line format\r\n");
			return;
		}
		nkeys++;
		it = touch ? kc_mem_get_touch(c->env->mem, t.p, t.n, exptime)
			   : kc_mem_get(c->env->mem, t.p, t.n);
		if (it && touch)
			kc_cmd_wrote(cmd, t.p, t.n);
		if (!it)
			it = kc_cmd_below(cmd, t.p, t.n);
		if (cmd->suspend) {
			kc_item_put(it);
			continue; /* collect every key to fetch; the reply is dropped */
		}
		if (c->env->on_get)
			c->env->on_get(c->env->on_get_ctx, t.p, t.n, it);
		if (!it)
			continue;
		hits++;
		/* The value is checked before it is copied (a 1 MB value named 33 times in one
		 * datagram costs nothing), the whole VALUE line after. */
		if (!kc_cmd_room(cmd, it->nval)) {
			kc_item_put(it);
			return;
		}
		append_value(cmd->out, it, with_cas);
		kc_item_put(it);
		if (c->proto == KC_PROTO_UDP && !kc_cmd_room(cmd, 0))
			return;
	}
	if (nkeys == 0 && part == GET_WHOLE) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return;
	}
	if (cmd->suspend)
		return;
	if (part != GET_PIECE)
		kc_buf_append(cmd->out, "END\r\n", 5);
	if (nkeys == 0) {
		cmd->res = KC_RES_OK;
		return;
	}
	kc_cmd_count_get(cmd, touch, nkeys, hits);
	/* One hit or miss per key; the caller counts the last one from cmd->res. */
	for (unsigned i = 0; i + 1 < nkeys; i++)
		kc_stats_count(c->stats, c->proto, cmd->op, i < hits ? KC_RES_HIT : KC_RES_MISS);
	cmd->res = hits == nkeys ? KC_RES_HIT : KC_RES_MISS;
}

/* --- storage --------------------------------------------------------------------------- */

/* set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]
 * cas <key> <flags> <exptime> <bytes> <cas unique> [noreply] */
static ssize_t cmd_store(struct kc_cmd *cmd, struct kc_tok *t, size_t nt, const char *data,
			 size_t avail)
{
	static const enum kc_set_mode modes[] = {
	    [KC_OP_SET] = KC_SET,	[KC_OP_ADD] = KC_ADD,	      [KC_OP_REPLACE] = KC_REPLACE,
	    [KC_OP_APPEND] = KC_APPEND, [KC_OP_PREPEND] = KC_PREPEND, [KC_OP_CAS] = KC_CAS,
	};
	bool is_cas = cmd->op == KC_OP_CAS;
	size_t base = is_cas ? 6 : 5;
	uint32_t flags;
	int32_t exptime, vlen;
	uint64_t cas_in = 0;
	struct kc_item *it;
	enum kc_mem_result r;
	ssize_t used;

	if (nt != base && nt != base + 1) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return 0;
	}
	cmd->noreply = nt == base + 1 && kc_tok_is(&t[base], "noreply");
	/* memcached refuses a length past INT_MAX - 2 (its length + CRLF would overflow) on the
	 * command line, swallowing nothing: the next line is a command again. */
	if (t[1].n > KC_KEY_MAX || !kc_tok_u32(&t[2], &flags) || !kc_tok_i32(&t[3], &exptime) ||
	    !kc_tok_i32(&t[4], &vlen) || vlen < 0 || vlen > INT32_MAX - 2 ||
	    (is_cas && !kc_tok_u64(&t[5], &cas_in))) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR bad command line format\r\n");
		return 0;
	}
	/* add must know whether the key exists below before it stores. */
	if (cmd->op == KC_OP_ADD && kc_cmd_need(cmd, t[1].p, t[1].n))
		return 0;
	used = kc_cmd_value(cmd, &t[1], flags, kc_proto_exptime(exptime, kc_mem_now()), vlen, data,
			    avail, &it);
	if (used < 0 || !it)
		return used;
	r = kc_mem_store(cmd->conn->env->mem, modes[cmd->op], it, cas_in, NULL);
	kc_item_put(it);
	/* replace, append, prepend, cas found no key in memory: it may be below. */
	if ((r == KC_NOT_STORED || r == KC_NOT_FOUND) && cmd->op != KC_OP_ADD &&
	    kc_cmd_need(cmd, t[1].p, t[1].n))
		return 0;
	cmd->res = kc_mem_res(r);
	switch (r) {
	case KC_STORED:
		kc_cmd_wrote(cmd, t[1].p, t[1].n);
		kc_reply(cmd, "STORED\r\n");
		break;
	case KC_NOT_STORED:
		kc_reply(cmd, "NOT_STORED\r\n");
		break;
	case KC_EXISTS:
		kc_reply(cmd, "EXISTS\r\n");
		break;
	case KC_NOT_FOUND:
		kc_reply(cmd, "NOT_FOUND\r\n");
		break;
	default: /* too large after append/prepend, or no memory */
		kc_reply_error(cmd, KC_RES_SERVER_ERROR,
			       "SERVER_ERROR out of memory storing object\r\n");
		break;
	}
	return used;
}

/* --- other classic commands ------------------------------------------------------------ */

/* delete <key> [0] [noreply] */
static void cmd_delete(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	size_t n = nt;

	if (n > 2 && kc_tok_is(&t[n - 1], "noreply")) {
		cmd->noreply = true;
		n--;
	}
	if (n < 2 || n > 3 || (n == 3 && !kc_tok_is(&t[2], "0"))) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR bad command line format.  Usage: delete <key> "
			       "[noreply]\r\n");
		return;
	}
	if (t[1].n > KC_KEY_MAX) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR bad command line format\r\n");
		return;
	}
	enum kc_mem_result r = kc_mem_delete(cmd->conn->env->mem, t[1].p, t[1].n, 0);

	if (r == KC_NOT_FOUND && kc_cmd_need(cmd, t[1].p, t[1].n))
		return;
	cmd->res = kc_mem_res(r);
	if (r == KC_DELETED)
		kc_cmd_wrote(cmd, t[1].p, t[1].n);
	kc_reply(cmd, r == KC_DELETED ? "DELETED\r\n" : "NOT_FOUND\r\n");
}

/* Checks "<verb> <key> <arg> [noreply]" and the key; false after an error reply. */
static bool check_key_arg(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	if (nt != 3 && nt != 4) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return false;
	}
	cmd->noreply = nt == 4 && kc_tok_is(&t[3], "noreply");
	if (t[1].n > KC_KEY_MAX) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR bad command line format\r\n");
		return false;
	}
	return true;
}

/* incr|decr <key> <delta> [noreply] */
static void cmd_arith(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	uint64_t delta, result;
	char num[24], *p;

	if (!check_key_arg(cmd, t, nt))
		return;
	if (!kc_tok_u64(&t[2], &delta)) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR invalid numeric delta argument\r\n");
		return;
	}
	enum kc_mem_result r = kc_mem_arith(cmd->conn->env->mem, t[1].p, t[1].n,
					    cmd->op == KC_OP_INCR, delta, &result, NULL);
	if (r == KC_NOT_FOUND && kc_cmd_need(cmd, t[1].p, t[1].n))
		return;
	cmd->res = kc_mem_res(r);
	switch (r) {
	case KC_STORED:
		kc_cmd_wrote(cmd, t[1].p, t[1].n);
		cmd->res = KC_RES_OK;
		p = kc_u64toa(result, num);
		memcpy(p, "\r\n", 3);
		kc_reply(cmd, num);
		break;
	case KC_NOT_FOUND:
		kc_reply(cmd, "NOT_FOUND\r\n");
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

/* touch <key> <exptime> [noreply] */
static void cmd_touch(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	int32_t e;

	if (!check_key_arg(cmd, t, nt))
		return;
	if (!kc_tok_i32(&t[2], &e)) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR invalid exptime argument\r\n");
		return;
	}
	enum kc_mem_result r =
	    kc_mem_touch(cmd->conn->env->mem, t[1].p, t[1].n, kc_proto_exptime(e, kc_mem_now()));
	if (r == KC_NOT_FOUND && kc_cmd_need(cmd, t[1].p, t[1].n))
		return;
	kc_cmd_count_get(cmd, true, 1, r == KC_TOUCHED);
	cmd->res = kc_mem_res(r);
	if (r == KC_TOUCHED)
		kc_cmd_wrote(cmd, t[1].p, t[1].n);
	kc_reply(cmd, r == KC_TOUCHED ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
}

/* flush_all [delay] [noreply]. memcached's reading: up to 3 tokens, noreply if the last one
 * says so, and then the first argument (whatever it is) is the delay unless it is that noreply;
 * a delay <= 0 flushes now. */
static void cmd_flush(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	int32_t delay = 0;
	int64_t now = kc_mem_now();

	if (nt > 3) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return;
	}
	cmd->noreply = nt > 1 && kc_tok_is(&t[nt - 1], "noreply");
	if (!cmd->conn->env->allow_flush) { /* memcached -F's answer, silent with noreply */
		cmd->res = KC_RES_CLIENT_ERROR;
		kc_reply(cmd, "CLIENT_ERROR flush_all not allowed\r\n");
		return;
	}
	if (nt != (cmd->noreply ? 2u : 1u) && !kc_tok_i32(&t[1], &delay)) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR invalid exptime argument\r\n");
		return;
	}
	if (delay < 0)
		delay = 0;
	/* This node's view only (proto_text.h): the pending flush hides older values of the
	 * lower tiers from this node until it restarts; nothing is persisted or published. */
	kc_mem_flush(cmd->conn->env->mem, delay ? kc_proto_exptime(delay, now) - 1 : now);
	if (cmd->conn->pend) {
		kc_pend_flush(cmd->conn->pend, delay ? kc_proto_exptime(delay, now) - 1 : now);
		cmd->wrote = true;
	}
	cmd->res = KC_RES_OK;
	kc_reply(cmd, "OK\r\n");
}

/* verbosity <level> [noreply]; memcached also takes a bare "verbosity noreply". */
static void cmd_verbosity(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	uint32_t level = 1;

	if (nt != 2 && nt != 3) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return;
	}
	cmd->noreply = kc_tok_is(&t[nt - 1], "noreply");
	if ((!cmd->noreply || nt == 3) && !kc_tok_u32(&t[1], &level)) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR bad command line format\r\n");
		return;
	}
	/* memcached's -v, -vv, -vvv map onto info, debug, debug. */
	kc_log_set_level(level == 0 ? KC_LOG_WARN : level == 1 ? KC_LOG_INFO : KC_LOG_DEBUG);
	cmd->res = KC_RES_OK;
	kc_reply(cmd, "OK\r\n");
}

static void stat_u64(struct kc_buf *out, const char *name, uint64_t v)
{
	kc_buf_printf(out, "STAT %s %llu\r\n", name, (unsigned long long)v);
}

/* stats [settings] */
static void cmd_stats(struct kc_cmd *cmd, struct kc_tok *t, size_t nt)
{
	const struct kc_proto_env *env = cmd->conn->env;
	struct kc_buf *out = cmd->out;
	struct kc_mem_stats ms;
	int64_t now = kc_mem_now();

	if (nt == 2 && kc_tok_is(&t[1], "settings")) {
		stat_u64(out, "maxbytes", env->memory_limit);
		stat_u64(out, "item_size_max", env->item_max);
		stat_u64(out, "num_threads", env->threads);
		kc_buf_puts(out, "STAT evictions on\r\nSTAT eviction_policy w-tinylfu\r\nEND\r\n");
		cmd->res = KC_RES_OK;
		return;
	}
	if (nt != 1) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return;
	}
	struct kc_stats *sum = calloc(1, sizeof(*sum));

	if (!sum) {
		kc_reply_error(cmd, KC_RES_SERVER_ERROR, "SERVER_ERROR out of memory\r\n");
		return;
	}
	kc_stats_sum(sum);
	kc_mem_stats(env->mem, &ms);
	uint64_t cmd_set = 0;

	for (int p = 0; p < KC_PROTO__COUNT; p++)
		for (int r = 0; r < KC_RES__COUNT; r++)
			for (int op = KC_OP_SET; op <= KC_OP_CAS; op++)
				cmd_set += sum->requests[p][op][r];
	stat_u64(out, "pid", (uint64_t)getpid());
	stat_u64(out, "uptime", (uint64_t)(now - env->started));
	stat_u64(out, "time", (uint64_t)now);
	kc_buf_puts(out, "STAT version " KC_VERSION_STRING "\r\n");
	stat_u64(out, "pointer_size", sizeof(void *) * 8);
	stat_u64(out, "curr_connections", env->curr_conns ? *env->curr_conns : 0);
	stat_u64(out, "total_connections", env->total_conns ? *env->total_conns : 0);
	/* As the protocol counted them: the memory tier's own hits and misses would count a key
	 * fetched from below twice (the miss that fetched it, then the hit when the line reruns).
	 */
	stat_u64(out, "cmd_get", sum->get_cmds);
	stat_u64(out, "cmd_set", cmd_set);
	stat_u64(out, "cmd_touch", sum->touch_cmds);
	stat_u64(out, "get_hits", sum->get_hits);
	stat_u64(out, "get_misses", sum->get_misses);
	stat_u64(out, "bytes_read", sum->bytes_read);
	stat_u64(out, "bytes_written", sum->bytes_written);
	stat_u64(out, "limit_maxbytes", ms.capacity);
	stat_u64(out, "threads", env->threads);
	stat_u64(out, "bytes", ms.bytes);
	stat_u64(out, "curr_items", ms.items);
	stat_u64(out, "evictions", ms.evictions);
	stat_u64(out, "expired_unfetched", ms.expired);
	kc_buf_puts(out, "END\r\n");
	free(sum);
	cmd->res = KC_RES_OK;
}

/* --- dispatch -------------------------------------------------------------------------- */

struct verb {
	const char *name;
	enum kc_op op;
};

static const struct verb verbs[] = {
    {"get", KC_OP_GET},		{"gets", KC_OP_GETS},	    {"gat", KC_OP_GAT},
    {"gats", KC_OP_GATS},	{"set", KC_OP_SET},	    {"add", KC_OP_ADD},
    {"replace", KC_OP_REPLACE}, {"append", KC_OP_APPEND},   {"prepend", KC_OP_PREPEND},
    {"cas", KC_OP_CAS},		{"delete", KC_OP_DELETE},   {"incr", KC_OP_INCR},
    {"decr", KC_OP_DECR},	{"touch", KC_OP_TOUCH},	    {"flush_all", KC_OP_FLUSH_ALL},
    {"stats", KC_OP_STATS},	{"version", KC_OP_VERSION}, {"verbosity", KC_OP_VERBOSITY},
    {"quit", KC_OP_QUIT},	{"mg", KC_OP_MG},	    {"ms", KC_OP_MS},
    {"md", KC_OP_MD},		{"mn", KC_OP_MN},	    {"ma", KC_OP_MA},
    {"me", KC_OP_ME},
};

static enum kc_op lookup_verb(const struct kc_tok *t)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (kc_tok_is(t, verbs[i].name))
			return verbs[i].op;
	return KC_OP_OTHER;
}

/* Over UDP: serves what the kernel tier exists for (proto_text.h tells the rules). False once
 * the datagram is refused. */
static bool udp_allowed(struct kc_cmd *cmd, const char *line, size_t n)
{
	struct kc_tok t[KC_MAX_TOKENS];
	size_t nt = kc_tokenize(line, n, t, KC_MAX_TOKENS);
	size_t shown = nt < KC_MAX_TOKENS ? nt : KC_MAX_TOKENS;
	bool quiet = false;

	switch (cmd->op) {
	case KC_OP_GET:
	case KC_OP_GETS:
	case KC_OP_MN:
	case KC_OP_VERSION:
	case KC_OP_QUIT:
	case KC_OP_OTHER: /* ERROR */
		return true;
	case KC_OP_MG:
		for (size_t i = 2; i < shown; i++)
			if (t[i].p[0] == 'T' || t[i].p[0] == 'N') /* touch, vivify: writes */
				goto write;
		return true;
	case KC_OP_SET:
	case KC_OP_ADD:
	case KC_OP_REPLACE:
	case KC_OP_APPEND:
	case KC_OP_PREPEND:
	case KC_OP_CAS:
	case KC_OP_DELETE:
	case KC_OP_INCR:
	case KC_OP_DECR:
	case KC_OP_TOUCH:
	case KC_OP_FLUSH_ALL:
	case KC_OP_VERBOSITY:
		/* classic commands that take noreply: refused in silence, as memcached answers
		 * a noreply command that fails */
		quiet = nt > 1 && nt == shown && kc_tok_is(&t[nt - 1], "noreply");
		break;
	default:
		break;
	}
	if (cmd->op == KC_OP_FLUSH_ALL || cmd->op == KC_OP_VERBOSITY || cmd->op == KC_OP_STATS) {
		kc_udp_refuse(cmd, KC_UDP_REFUSED_COMMAND, quiet);
		return false;
	}
write:
	if (cmd->conn->env->udp_writes)
		return true;
	kc_udp_refuse(cmd, KC_UDP_REFUSED_WRITE, quiet);
	return false;
}

/* An unknown command whose last token starts with "HTTP/" is an HTTP request line (a browser
 * tricked into talking to the cache): memcached closes without a reply, so no answer can be
 * read back across protocols. Like memcached, only for verbs outside the families it
 * dispatches on their first letter (a 2-letter m*, g*, s*, a*, c*, i*, d*, t*), which answer
 * ERROR: "GET / HTTP/1.0" closes, "gxx / HTTP/1.0" is an ERROR. */
static bool http_request_line(const struct kc_tok *verb, const char *line, size_t n)
{
	struct kc_tok t, last = {0};
	const char *cur = line, *end = line + n;

	if (verb->n < 2 || strchr("gsacidt", verb->p[0]) || (verb->p[0] == 'm' && verb->n == 2))
		return false;
	while (kc_tok_next(&cur, end, &t))
		last = t;
	return last.n >= 5 && memcmp(last.p, "HTTP/", 5) == 0;
}

/* Runs one command line (without its line ending). data/avail are the bytes after the line.
 * Returns how many of them the command consumed, or -1 if it needs more input. */
static ssize_t run_line(struct kc_cmd *cmd, const char *line, size_t n, const char *data,
			size_t avail)
{
	struct kc_tok t[KC_MAX_TOKENS];
	size_t nt;
	const char *args;

	if (!kc_tok_next(&(const char *){line}, line + n, &t[0])) {
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return 0;
	}
	cmd->op = lookup_verb(&t[0]);
	if (cmd->conn->proto == KC_PROTO_UDP && !udp_allowed(cmd, line, n))
		return 0;
	args = t[0].p + t[0].n;
	switch (cmd->op) {
	case KC_OP_GET:
	case KC_OP_GETS:
	case KC_OP_GAT:
	case KC_OP_GATS:
		cmd_get(cmd, args, line + n, GET_WHOLE); /* any number of keys: not tokenized */
		return 0;
	case KC_OP_OTHER:
		if (http_request_line(&t[0], line, n)) {
			cmd->res = KC_RES_CLIENT_ERROR;
			if (cmd->conn->proto != KC_PROTO_UDP)
				cmd->conn->close = true;
			return 0; /* no reply, on UDP too */
		}
		kc_reply_error(cmd, KC_RES_ERROR, "ERROR\r\n");
		return 0;
	default:
		break;
	}
	nt = kc_tokenize(line, n, t, KC_MAX_TOKENS);
	/* The meta commands answer a long line themselves ("options flags too long"), reading
	 * no token past the first KC_MAX_TOKENS. */
	if (nt > KC_MAX_TOKENS && (cmd->op < KC_OP_MG || cmd->op > KC_OP_ME)) {
		kc_reply_error(cmd, KC_RES_CLIENT_ERROR,
			       "CLIENT_ERROR bad command line format\r\n");
		return 0;
	}
	switch (cmd->op) {
	case KC_OP_SET:
	case KC_OP_ADD:
	case KC_OP_REPLACE:
	case KC_OP_APPEND:
	case KC_OP_PREPEND:
	case KC_OP_CAS:
		return cmd_store(cmd, t, nt, data, avail);
	case KC_OP_DELETE:
		cmd_delete(cmd, t, nt);
		return 0;
	case KC_OP_INCR:
	case KC_OP_DECR:
		cmd_arith(cmd, t, nt);
		return 0;
	case KC_OP_TOUCH:
		cmd_touch(cmd, t, nt);
		return 0;
	case KC_OP_FLUSH_ALL:
		cmd_flush(cmd, t, nt);
		return 0;
	case KC_OP_STATS:
		cmd_stats(cmd, t, nt);
		return 0;
	case KC_OP_VERBOSITY:
		cmd_verbosity(cmd, t, nt);
		return 0;
	case KC_OP_VERSION:
		cmd->res = KC_RES_OK;
		kc_reply(cmd, "VERSION " KC_VERSION_STRING "\r\n");
		return 0;
	case KC_OP_QUIT:
		cmd->res = KC_RES_OK;
		if (cmd->conn->proto != KC_PROTO_UDP)
			cmd->conn->close = true;
		return 0;
	default:
		return kc_proto_meta(cmd, t, nt, data, avail);
	}
}

/* Book-keeping after a command (or a piece of a streamed get) ran to its end. */
static void command_done(struct kc_proto_conn *c, struct kc_cmd *cmd, uint64_t t0)
{
	kc_stats_count(c->stats, c->proto, cmd->op, cmd->res);
	kc_stats_observe(c->stats, c->proto, cmd->op, kc_mono_ns() - t0);
	if (c->pend)
		kc_pend_command_done(c->pend);
}

/* A line with no newline in its first KC_LINE_MAX bytes (p, n): if it is a get or gets (or the
 * rest of one), answers the keys up to its last space and returns the bytes used (> 0); 0 if it
 * is no get, or no key boundary is in sight; -1 if the piece waits for the lower tiers. Like
 * memcached, only get and gets, after at most 100 spaces. */
static ssize_t get_piece(struct kc_proto_conn *c, const char *p, size_t n, struct kc_buf *out)
{
	uint8_t stream = c->stream;
	const char *args = p, *last;
	struct kc_tok verb;

	if (!stream) {
		if (!kc_tok_next(&args, p + n, &verb) || verb.p - p > 100)
			return 0;
		stream = kc_tok_is(&verb, "get") ? 1 : kc_tok_is(&verb, "gets") ? 2 : 0;
		if (!stream)
			return 0;
	}
	enum kc_op op = stream == 2 ? KC_OP_GETS : KC_OP_GET;
	last = memrchr(args, ' ', (size_t)(p + n - args));
	if (!last)
		return 0;
	struct kc_cmd cmd = {
	    .conn = c, .out = out, .out_mark = out->len, .op = op, .res = KC_RES_OK};
	uint64_t t0 = kc_mono_ns();

	cmd_get(&cmd, args, last, GET_PIECE);
	if (cmd.suspend) {
		out->len = cmd.out_mark;
		c->wait = KC_WAIT_FETCH; /* the same piece runs again after the fetch */
		return -1;
	}
	command_done(c, &cmd, t0);
	if (cmd.res == KC_RES_CLIENT_ERROR || cmd.res == KC_RES_SERVER_ERROR) {
		c->stream = 0; /* the error ended the get: drop the rest of its line */
		c->skip_line = true;
		return (ssize_t)n;
	}
	c->stream = stream;
	return last + 1 - p;
}

static void line_too_long(struct kc_proto_conn *c, struct kc_buf *out)
{
	kc_buf_puts(out, "CLIENT_ERROR line too long\r\n");
	kc_stats_count(c->stats, c->proto, KC_OP_OTHER, KC_RES_CLIENT_ERROR);
	c->close = true;
}

size_t kc_proto_process(struct kc_proto_conn *c, const char *in, size_t len, struct kc_buf *out,
			size_t out_soft_limit)
{
	size_t pos = 0;

	while (pos < len && !c->close && out->len < out_soft_limit) {
		if (c->swallow) {
			size_t n = len - pos < c->swallow ? len - pos : c->swallow;

			pos += n;
			c->swallow -= n;
			continue;
		}
		if (c->skip_line) {
			const char *nl = memchr(in + pos, '\n', len - pos);

			c->skip_line = !nl;
			pos = nl ? (size_t)(nl + 1 - in) : len;
			continue;
		}
		size_t window = len - pos < KC_LINE_MAX ? len - pos : KC_LINE_MAX;
		const char *nl = memchr(in + pos, '\n', window);

		if (!nl) {
			if (window < KC_LINE_MAX)
				break; /* an incomplete line: wait for more */
			ssize_t used = get_piece(c, in + pos, window, out);

			if (used < 0)
				break;
			if (used == 0) {
				line_too_long(c, out);
				return len;
			}
			pos += (size_t)used;
			continue;
		}
		size_t linelen = (size_t)(nl - (in + pos)), n = linelen;

		if (n && in[pos + n - 1] == '\r')
			n--;
		struct kc_cmd cmd = {.conn = c, .out = out, .out_mark = out->len, .res = KC_RES_OK};
		uint64_t t0 = kc_mono_ns();
		ssize_t used;

		if (c->stream) { /* the last piece of a get too long to buffer */
			cmd.op = c->stream == 2 ? KC_OP_GETS : KC_OP_GET;
			cmd_get(&cmd, in + pos, in + pos + n, GET_LAST_PIECE);
			used = 0;
		} else {
			used = run_line(&cmd, in + pos, n, nl + 1, len - pos - linelen - 1);
		}

		if (used < 0) {
			out->len = cmd.out_mark;
			break; /* the value has not fully arrived */
		}
		if (cmd.suspend) {
			out->len = cmd.out_mark;
			c->wait = KC_WAIT_FETCH; /* the same line runs again after the fetch */
			break;
		}
		if (c->out_max && out->len > c->out_max && !cmd.wrote &&
		    (cmd.op == KC_OP_GET || cmd.op == KC_OP_GETS || cmd.op == KC_OP_GAT ||
		     cmd.op == KC_OP_GATS || cmd.op == KC_OP_MG)) {
			out->len = cmd.out_mark;
			c->out_full = true; /* over the buffer budget: runs again later */
			break;
		}
		pos += linelen + 1 + (size_t)used;
		if (c->proto == KC_PROTO_UDP && !c->close)
			kc_cmd_room(&cmd, 0); /* the datagram's reply so far within the cap */
		c->stream = 0;
		command_done(c, &cmd, t0);
		if (c->pend) {
			if (cmd.wrote && kc_pend_has_writes(c->pend)) {
				c->wait = KC_WAIT_WRITE; /* the reply waits for durability */
				c->reply_mark = cmd.out_mark;
				break;
			}
		}
	}
	return pos;
}
