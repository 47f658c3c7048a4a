/* store_idx.c: the directory store's index: a chained hash table of entries that are also on a
 * doubly linked LRU list. See store_idx.h. The address is a SHA-256, so its first 8 bytes are
 * already a uniform hash. */
#include "tiers/store/store_idx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ent {
	uint8_t addr[KC_ADDR_LEN];
	uint64_t size;
	int64_t stamp;
	struct ent *hnext;
	struct ent *prev, *next; /* LRU: head = least recently used */
};

struct kc_sidx {
	struct ent **tab;
	size_t mask; /* table size - 1, a power of two */
	uint64_t objects, bytes;
	struct ent *head, *tail;
};

static size_t slot(const struct kc_sidx *x, const uint8_t *addr)
{
	uint64_t h;

	memcpy(&h, addr, sizeof(h));
	return (size_t)h & x->mask;
}

struct kc_sidx *kc_sidx_new(void)
{
	struct kc_sidx *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->mask = 1023;
	x->tab = calloc(x->mask + 1, sizeof(*x->tab));
	if (!x->tab) {
		free(x);
		return NULL;
	}
	return x;
}

void kc_sidx_free(struct kc_sidx *x)
{
	struct ent *e, *next;

	if (!x)
		return;
	for (e = x->head; e; e = next) {
		next = e->next;
		free(e);
	}
	free(x->tab);
	free(x);
}

static struct ent **find(struct kc_sidx *x, const uint8_t *addr)
{
	struct ent **pp = &x->tab[slot(x, addr)];

	while (*pp && memcmp((*pp)->addr, addr, KC_ADDR_LEN) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(struct kc_sidx *x, struct ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		x->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		x->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_tail(struct kc_sidx *x, struct ent *e)
{
	e->prev = x->tail;
	e->next = NULL;
	if (x->tail)
		x->tail->next = e;
	else
		x->head = e;
	x->tail = e;
}

/* Doubles the table when it holds more entries than slots; a failed allocation only leaves the
 * chains longer. */
static void grow(struct kc_sidx *x)
{
	size_t nmask = x->mask * 2 + 1;
	struct ent **nt = calloc(nmask + 1, sizeof(*nt));

	if (!nt)
		return;
	for (size_t i = 0; i <= x->mask; i++) {
		struct ent *e = x->tab[i], *next;

		for (; e; e = next) {
			uint64_t h;

			next = e->hnext;
			memcpy(&h, e->addr, sizeof(h));
			e->hnext = nt[(size_t)h & nmask];
			nt[(size_t)h & nmask] = e;
		}
	}
	free(x->tab);
	x->tab = nt;
	x->mask = nmask;
}

int kc_sidx_set(struct kc_sidx *x, const uint8_t *addr, uint64_t size, int64_t stamp)
{
	struct ent **pp = find(x, addr), *e = *pp;

	if (e) {
		x->bytes -= e->size;
		lru_unlink(x, e);
	} else {
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		memcpy(e->addr, addr, KC_ADDR_LEN);
		*pp = e;
		x->objects++;
	}
	e->size = size;
	e->stamp = stamp;
	x->bytes += size;
	lru_push_tail(x, e);
	if (x->objects > x->mask + 1)
		grow(x);
	return 0;
}

static void drop(struct kc_sidx *x, struct ent **pp)
{
	struct ent *e = *pp;

	*pp = e->hnext;
	lru_unlink(x, e);
	x->objects--;
	x->bytes -= e->size;
	free(e);
}

bool kc_sidx_remove(struct kc_sidx *x, const uint8_t *addr, uint64_t *size)
{
	struct ent **pp = find(x, addr);

	if (!*pp)
		return false;
	if (size)
		*size = (*pp)->size;
	drop(x, pp);
	return true;
}

bool kc_sidx_has(struct kc_sidx *x, const uint8_t *addr)
{
	return *find(x, addr) != NULL;
}

bool kc_sidx_touch(struct kc_sidx *x, const uint8_t *addr, int64_t now, int64_t persist_ns)
{
	struct ent *e = *find(x, addr);

	if (!e)
		return false;
	if (e != x->tail) {
		lru_unlink(x, e);
		lru_push_tail(x, e);
	}
	if (now - e->stamp < persist_ns)
		return false;
	e->stamp = now;
	return true;
}

bool kc_sidx_pop_lru(struct kc_sidx *x, uint8_t *addr, uint64_t *size)
{
	struct ent **pp;

	if (!x->head)
		return false;
	pp = find(x, x->head->addr);
	if (!*pp) /* every listed entry is hashed: cannot happen */
		return false;
	memcpy(addr, (*pp)->addr, KC_ADDR_LEN);
	*size = (*pp)->size;
	drop(x, pp);
	return true;
}

static int by_stamp(const void *a, const void *b)
{
	const struct ent *ea = *(struct ent *const *)a, *eb = *(struct ent *const *)b;

	if (ea->stamp != eb->stamp)
		return ea->stamp < eb->stamp ? -1 : 1;
	return memcmp(ea->addr, eb->addr, KC_ADDR_LEN);
}

int kc_sidx_sort(struct kc_sidx *x)
{
	struct ent **v, *e;
	size_t n = 0;

	if (x->objects < 2)
		return 0;
	v = malloc(x->objects * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (e = x->head; e; e = e->next)
		v[n++] = e;
	qsort(v, n, sizeof(*v), by_stamp);
	x->head = x->tail = NULL;
	for (size_t i = 0; i < n; i++)
		lru_push_tail(x, v[i]);
	free(v);
	return 0;
}

uint64_t kc_sidx_objects(const struct kc_sidx *x)
{
	return x->objects;
}

uint64_t kc_sidx_bytes(const struct kc_sidx *x)
{
	return x->bytes;
}
