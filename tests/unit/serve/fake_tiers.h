/* fake_tiers.h: a stand-in for the lower tiers' read and write calls (tiers/tier.h), for the
 * unit tests of pend.c and conn.c. Test code only, included by one file per test binary: it
 * defines kc_tiers_may_have, kc_tiers_fetch, kc_tiers_write and kc_tiers_flush, so the linker
 * never takes tiers/tier.c's. Every call is recorded; the test completes it when it likes
 * (fake_fetched, fake_written), as the real tiers do from their loop. With fake.immediate the
 * call completes inside itself, which the real tiers never do but pend.h does not forbid.
 * Keys that start with "none:" are known absent (kc_tiers_may_have says false). */
#ifndef KC_FAKE_TIERS_H
#define KC_FAKE_TIERS_H

#include <stdbool.h>
#include <string.h>

#include "mem/mem.h"
#include "tiers/tier.h"

#ifndef FAKE_MAX
#define FAKE_MAX 2048 /* calls recorded; a test may define more before including this */
#endif

enum fake_kind { FAKE_FETCH = 1, FAKE_WRITE, FAKE_FLUSH };

struct fake_call {
	enum fake_kind kind;
	unsigned worker;
	char key[KC_KEY_MAX + 1];
	size_t nkey;
	int64_t when;
	enum kc_flush_scope scope;
	kc_tier_fetch_fn fetch;
	kc_tier_write_fn write;
	void *ctx;
	bool completed;
};

static struct {
	struct fake_call calls[FAKE_MAX];
	int n;
	bool immediate; /* complete inside the call: fetches find nothing, writes succeed */
	struct kc_tiers *expect_t; /* every call must get this handle */
} fake;

static inline void fake_reset(struct kc_tiers *t)
{
	memset(&fake, 0, sizeof(fake));
	fake.expect_t = t;
}

/* The calls of one kind, in call order. */
static inline int fake_count(enum fake_kind kind)
{
	int n = 0;

	for (int i = 0; i < fake.n; i++)
		n += fake.calls[i].kind == kind;
	return n;
}

static inline struct fake_call *fake_record(struct kc_tiers *t, enum fake_kind kind,
					    unsigned worker, const char *key, size_t nkey)
{
	struct fake_call *c;

	assert_ptr_equal(t, fake.expect_t);
	assert_true(fake.n < FAKE_MAX);
	c = &fake.calls[fake.n++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->worker = worker;
	if (key) {
		assert_true(nkey >= 1 && nkey <= KC_KEY_MAX);
		memcpy(c->key, key, nkey);
		c->nkey = nkey;
	}
	return c;
}

bool kc_tiers_may_have(struct kc_tiers *t, const char *key, size_t nkey)
{
	assert_ptr_equal(t, fake.expect_t);
	return !(nkey >= 5 && !memcmp(key, "none:", 5));
}

void kc_tiers_fetch(struct kc_tiers *t, unsigned worker, const char *key, size_t nkey,
		    kc_tier_fetch_fn fn, void *ctx)
{
	struct fake_call *c = fake_record(t, FAKE_FETCH, worker, key, nkey);

	c->fetch = fn;
	c->ctx = ctx;
	if (fake.immediate) {
		c->completed = true;
		fn(ctx, NULL);
	}
}

void kc_tiers_write(struct kc_tiers *t, unsigned worker, const char *key, size_t nkey,
		    kc_tier_write_fn fn, void *ctx)
{
	struct fake_call *c = fake_record(t, FAKE_WRITE, worker, key, nkey);

	c->write = fn;
	c->ctx = ctx;
	if (fake.immediate) {
		c->completed = true;
		fn(ctx, NULL);
	}
}

void kc_tiers_flush(struct kc_tiers *t, unsigned worker, int64_t when, enum kc_flush_scope scope,
		    kc_tier_write_fn fn, void *ctx)
{
	struct fake_call *c = fake_record(t, FAKE_FLUSH, worker, NULL, 0);

	c->when = when;
	c->scope = scope;
	c->write = fn;
	c->ctx = ctx;
	if (fake.immediate) {
		c->completed = true;
		fn(ctx, NULL);
	}
}

/* A new item for key with value val (refs = 1), as the tiers hand one to a fetch. */
static inline struct kc_item *fake_item(const char *key, size_t nkey, const char *val)
{
	struct kc_item *it = kc_item_new(key, nkey, 0, 0, strlen(val));

	assert_non_null(it);
	memcpy(kc_item_value(it), val, strlen(val));
	return it;
}

/* Completes call i, a fetch: found with value val, or found nowhere (val NULL). */
static inline void fake_fetched(int i, const char *val)
{
	struct fake_call *c = &fake.calls[i];

	assert_true(i < fake.n && c->kind == FAKE_FETCH && !c->completed);
	c->completed = true;
	c->fetch(c->ctx, val ? fake_item(c->key, c->nkey, val) : NULL);
}

/* Completes call i, a write or flush: durable (err NULL) or failed with err. */
static inline void fake_written(int i, const char *err)
{
	struct fake_call *c = &fake.calls[i];

	assert_true(i < fake.n && (c->kind == FAKE_WRITE || c->kind == FAKE_FLUSH) &&
		    !c->completed);
	c->completed = true;
	c->write(c->ctx, err);
}

#endif
