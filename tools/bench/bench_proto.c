/* bench_proto.c: kcache-bench's side of the memcached text protocol (see bench.h): requests
 * rendered from the key space, replies parsed and checked against it. Also the small helpers
 * every engine shares (clock, request choice, the request limit). */
#include "bench.h"
#include "core/buf.h"
#include "core/num.h"

#include <string.h>
#include <time.h>

uint64_t kb_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

enum kb_op kb_pick(struct kb_thread *t, uint64_t *key)
{
	const struct kb_cfg *cfg = t->cfg;

	*key = kb_zipf_next(&cfg->zipf, &t->rng);
	if (cfg->get_ratio >= 1)
		return KB_GET;
	return kb_rng_double(&t->rng) < cfg->get_ratio ? KB_GET : KB_SET;
}

bool kb_claim(struct kb_thread *t)
{
	const struct kb_cfg *cfg = t->cfg;

	if (!cfg->max_requests)
		return true;
	if (atomic_fetch_add_explicit(cfg->issued, 1, memory_order_relaxed) < cfg->max_requests)
		return true;
	atomic_store(cfg->stop, true);
	return false;
}

size_t kb_req_max(const struct kb_keyspace *ks)
{
	return 4 + KB_KEY_MAX + 1 + 10 + 3 + 10 + 2 + ks->vmax + 2;
}

size_t kb_req_render(const struct kb_keyspace *ks, enum kb_op op, uint64_t i, char *out)
{
	char *p = out;
	uint32_t vlen;

	if (op == KB_GET) {
		memcpy(p, "get ", 4);
		p += 4;
		p += kb_key(ks, i, p);
		*p++ = '\r';
		*p++ = '\n';
		return (size_t)(p - out);
	}
	vlen = kb_value_len(ks, i);
	memcpy(p, "set ", 4);
	p += 4;
	p += kb_key(ks, i, p);
	*p++ = ' ';
	p = kc_u64toa(kb_flags(ks, i), p);
	memcpy(p, " 0 ", 3);
	p += 3;
	p = kc_u64toa(vlen, p);
	*p++ = '\r';
	*p++ = '\n';
	kb_value_fill(ks, i, p);
	p += vlen;
	*p++ = '\r';
	*p++ = '\n';
	return (size_t)(p - out);
}

/* Parses a decimal field ending at a space or '\r'. Returns the end, or NULL. */
static const char *parse_u64(const char *p, const char *end, uint64_t *v)
{
	size_t n = 0;

	while (p + n < end && p[n] >= '0' && p[n] <= '9')
		n++;
	return kc_parse_u64n(p, n, UINT64_MAX, v) ? NULL : p + n;
}

static bool starts(const char *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	return n >= k && memcmp(p, s, k) == 0;
}

/* The longest status line we wait for before deciding the stream is garbage. */
#define LINE_MAX_WAIT 1024

ssize_t kb_reply_parse(const struct kb_keyspace *ks, enum kb_op op, uint64_t i, bool verify,
		       const char *buf, size_t len, enum kb_outcome *out)
{
	const char *nl = memchr(buf, '\n', len < LINE_MAX_WAIT ? len : LINE_MAX_WAIT);
	const char *p, *end;
	char key[KB_KEY_MAX];
	unsigned klen;
	uint64_t flags, bytes;
	size_t line, need;

	if (!nl)
		return len >= LINE_MAX_WAIT ? -1 : 0;
	line = (size_t)(nl - buf) + 1;
	if (line < 2 || buf[line - 2] != '\r')
		return -1;
	/* Error lines can answer anything. */
	if (starts(buf, line, "ERROR\r\n") || starts(buf, line, "CLIENT_ERROR ") ||
	    starts(buf, line, "SERVER_ERROR ")) {
		*out = KB_ERROR;
		return (ssize_t)line;
	}
	if (op == KB_SET) {
		if (starts(buf, line, "STORED\r\n"))
			*out = KB_STORED;
		else if (starts(buf, line, "NOT_STORED\r\n") || starts(buf, line, "EXISTS\r\n") ||
			 starts(buf, line, "NOT_FOUND\r\n"))
			*out = KB_ERROR;
		else
			return -1;
		return (ssize_t)line;
	}
	if (starts(buf, line, "END\r\n")) {
		*out = KB_MISS;
		return (ssize_t)line;
	}
	if (!starts(buf, line, "VALUE "))
		return -1;
	/* VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\nEND\r\n */
	p = buf + 6;
	end = buf + line - 2;
	klen = kb_key(ks, i, key);
	{
		const char *sp = memchr(p, ' ', (size_t)(end - p));

		if (!sp)
			return -1;
		*out = (size_t)(sp - p) == klen && !memcmp(p, key, klen) ? KB_HIT : KB_VERIFY_FAIL;
		p = sp + 1;
	}
	p = parse_u64(p, end, &flags);
	if (!p || p >= end || *p != ' ' || flags > UINT32_MAX)
		return -1;
	p = parse_u64(p + 1, end, &bytes);
	if (!p || (p < end && *p != ' ') || bytes > (1ULL << 31))
		return -1;
	need = line + (size_t)bytes + 2 + 5;
	if (len < need)
		return 0;
	if (memcmp(buf + line + bytes, "\r\nEND\r\n", 7))
		return -1;
	if (verify && *out == KB_HIT &&
	    !kb_value_check(ks, i, (uint32_t)flags, buf + line, (size_t)bytes))
		*out = KB_VERIFY_FAIL;
	return (ssize_t)need;
}

void kb_count(struct kb_stats *st, enum kb_op op, enum kb_outcome o)
{
	st->done++;
	if (op == KB_GET)
		st->gets++;
	else
		st->sets++;
	switch (o) {
	case KB_HIT:
		st->hits++;
		break;
	case KB_MISS:
		st->misses++;
		break;
	case KB_STORED:
		st->stored++;
		break;
	case KB_ERROR:
		st->errors++;
		break;
	case KB_VERIFY_FAIL:
		st->verify_fail++;
		break;
	}
}
