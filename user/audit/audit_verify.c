/* audit_verify.c: offline verification of audit chains (kcachectl audit verify). See
 * kc_audit_verify() in audit_chain.h. Reads the files line by line: memory stays bounded
 * whatever their size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_chain.h"

struct anchor {
	uint64_t seq;
	unsigned char mac[KC_AUDIT_MAC_LEN];
};

struct vfile {
	const char *path;
	uint64_t first; /* seq of its first record, UINT64_MAX when it has none */
};

static int cmp_vfile(const void *a, const void *b)
{
	const struct vfile *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

struct vstate {
	const struct kc_audit_key *key;
	struct anchor *anchors;
	size_t n_anchors;
	bool started;
	uint64_t first, last, records, checkpoints;
	unsigned char last_mac[KC_AUDIT_MAC_LEN];
	char *out;
	size_t outlen;
};

static int bad(struct vstate *st, uint64_t seq, const char *why, const char *path,
	       unsigned long long lineno)
{
	snprintf(st->out, st->outlen, "FAIL: seq %llu: %s (%s line %llu)\n",
		 (unsigned long long)seq, why, path, lineno);
	return 1;
}

/* Checks one record against the chain so far. Returns 0 or 1 (report written). */
static int check_line(struct vstate *st, const char *path, unsigned long long lineno,
		      const char *line, size_t len, bool torn)
{
	unsigned char prev[KC_AUDIT_MAC_LEN], mac[KC_AUDIT_MAC_LEN];
	uint64_t seq, want = st->started ? st->last + 1 : 0;
	size_t canon;

	char why[80];

	if (torn || kc_audit_chain_parse(line, len, &seq, prev, mac, &canon))
		return bad(st, st->started ? want : 1,
			   torn ? "truncated record" : "not a chain record", path, lineno);
	if (st->started && seq != want) {
		snprintf(why, sizeof(why), "%s: found seq %llu",
			 seq > want ? "missing" : "out of order", (unsigned long long)seq);
		return bad(st, want, why, path, lineno);
	}
	if (!st->started) {
		static const unsigned char zero[KC_AUDIT_MAC_LEN];

		if (seq == 1 && memcmp(prev, zero, sizeof(zero)))
			return bad(st, 1, "first record with a non-zero prev", path, lineno);
		st->first = seq;
	} else if (memcmp(prev, st->last_mac, KC_AUDIT_MAC_LEN)) {
		return bad(st, seq, "prev is not the mac of the record before it", path, lineno);
	}
	if (!kc_audit_chain_mac_ok(st->key, line, canon, prev, mac))
		return bad(st, seq, "mac mismatch: the record was altered", path, lineno);
	for (size_t i = 0; i < st->n_anchors; i++)
		if (st->anchors[i].seq == seq && memcmp(st->anchors[i].mac, mac, KC_AUDIT_MAC_LEN))
			return bad(st, seq, "differs from the checkpoint kept beside the log", path,
				   lineno);
	if (memmem(line, canon, "\"type\":\"checkpoint\"", 19))
		st->checkpoints++;
	st->started = true;
	st->last = seq;
	st->records++;
	memcpy(st->last_mac, mac, KC_AUDIT_MAC_LEN);
	return 0;
}

/* Calls check_line for each line of path. Returns 0, 1, or -errno. */
static int scan(struct vstate *st, const char *path, bool anchors_only, uint64_t *first, char *err,
		size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long long lineno = 0;
	int rc = 0;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		unsigned char prev[KC_AUDIT_MAC_LEN], mac[KC_AUDIT_MAC_LEN];
		uint64_t seq;
		size_t canon;

		lineno++;
		if (first) { /* only the first record's seq, for ordering */
			if (!kc_audit_chain_parse(line, (size_t)n, &seq, prev, mac, &canon))
				*first = seq;
			break;
		}
		if (anchors_only) {
			struct anchor *a;

			if (kc_audit_chain_parse(line, (size_t)n, &seq, prev, mac, &canon) ||
			    !kc_audit_chain_mac_ok(st->key, line, canon, prev, mac)) {
				snprintf(st->out, st->outlen,
					 "FAIL: checkpoint file %s line %llu does not verify\n",
					 path, lineno);
				rc = 1;
				break;
			}
			a = realloc(st->anchors, (st->n_anchors + 1) * sizeof(*a));
			if (!a) {
				rc = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				break;
			}
			st->anchors = a;
			a[st->n_anchors].seq = seq;
			memcpy(a[st->n_anchors++].mac, mac, KC_AUDIT_MAC_LEN);
			continue;
		}
		rc = check_line(st, path, lineno, line, (size_t)n, line[n - 1] != '\n');
		if (rc)
			break;
	}
	free(line);
	fclose(f);
	return rc;
}

int kc_audit_verify(const char *keyfile, char **files, int nfiles, char *out, size_t outlen,
		    char *err, size_t errlen)
{
	struct kc_audit_key *key = calloc(1, sizeof(*key));
	struct vfile *vf = calloc((size_t)nfiles + 1, sizeof(*vf));
	struct vstate st = {.key = key, .out = out, .outlen = outlen};
	uint64_t max_anchor = 0;
	int rc, nv = 0;

	if (!key || !vf) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	rc = kc_audit_key_load(keyfile, key, err, errlen);
	if (rc)
		goto out;
	for (int i = 0; i < nfiles; i++) {
		if (ends_with(files[i], ".checkpoint")) {
			rc = scan(&st, files[i], true, NULL, err, errlen);
			if (rc)
				goto out;
			continue;
		}
		vf[nv].path = files[i];
		vf[nv].first = UINT64_MAX;
		rc = scan(&st, files[i], false, &vf[nv].first, err, errlen);
		if (rc)
			goto out;
		nv++;
	}
	/* Rotated files may be given in any order (log.2 log.1 log): follow the seqs. */
	qsort(vf, (size_t)nv, sizeof(*vf), cmp_vfile);
	for (int i = 0; i < nv; i++) {
		rc = scan(&st, vf[i].path, false, NULL, err, errlen);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < st.n_anchors; i++)
		if (st.anchors[i].seq > max_anchor)
			max_anchor = st.anchors[i].seq;
	if (max_anchor > st.last || (max_anchor && !st.started)) {
		snprintf(out, outlen,
			 "FAIL: seq %llu: truncated: the chain ends at seq %llu but a checkpoint "
			 "has seq %llu\n",
			 (unsigned long long)(st.started ? st.last + 1 : 1),
			 (unsigned long long)st.last, (unsigned long long)max_anchor);
		rc = 1;
		goto out;
	}
	if (!st.started) {
		snprintf(out, outlen, "FAIL: seq 1: no records\n");
		rc = 1;
		goto out;
	}
	snprintf(out, outlen, "OK: %llu records, seq %llu..%llu, %llu checkpoints%s\n",
		 (unsigned long long)st.records, (unsigned long long)st.first,
		 (unsigned long long)st.last, (unsigned long long)st.checkpoints,
		 max_anchor ? ", reaches the kept checkpoint" : "");
	rc = 0;
out:
	free(st.anchors);
	free(vf);
	if (key)
		memset(key, 0, sizeof(*key));
	free(key);
	return rc;
}
