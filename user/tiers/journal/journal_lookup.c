/* journal_lookup.c: kc_journal_lookup (see journal.h): the newest write of a key the journal
 * still holds, for the read path (a write not flushed yet is newer than anything below). */
#include <string.h>
#include <xxhash.h>

#include "tiers/journal/journal_int.h"

int kc_journal_lookup(struct kc_journal *j, const char *key, size_t nkey, struct kc_buf *blob)
{
	uint64_t hash = XXH3_64bits(key, nkey);
	struct kc_jrec *best = NULL;
	int found = 0;

	pthread_mutex_lock(&j->mu);
	for (struct kc_jkey *k = j->nkb ? j->kb[hash & (j->nkb - 1)] : NULL; k; k = k->hnext) {
		if (k->hash != hash || k->nkey != nkey || memcmp(k->key, key, nkey))
			continue;
		struct kc_jrec *c[3] = {k->newest, k->inflight, k->dead};

		for (int i = 0; i < 3; i++)
			if (c[i] && (!best || c[i]->ver > best->ver))
				best = c[i];
		break;
	}
	if (best)
		found = kc_buf_append(blob, best->blob, best->nblob) ? -1 : 1;
	pthread_mutex_unlock(&j->mu);
	return found;
}
