/* audit.c: the audit module's loader and pipeline (see audit.h, docs/audit.md).
 *
 * Start: policy and key first (refused before the kernel is touched), then open the skeleton,
 * fill the dispatch tables and sizes, load, attach (tracepoints; cgroup connect4/6 at the
 * cgroup v2 root), compile the policy into generation 0 and switch the programs on.
 * Reload: compile into the other generation, then flip kc_audit_ctl.gen with one store.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <kcache/audit.h>
#include "audit.skel.h"

#include "audit/audit_chain.h"
#include "audit/audit_event.h"
#include "audit/audit_policy.h"
#include "core/admin.h"
#include "core/clock.h"
#include "audit/audit_sink.h"
#include "core/log.h"
#include "core/metrics.h"
#include "tiers/redis/redis.h"

#define MAX_SINKS     3
#define MAX_TAILS     8 /* kcachectl audit tail clients at once */
#define CGROUP2_MAGIC 0x63677270

static const char *const lost_reason[] = {
    [KC_ST_LOST_RINGBUF] = "ringbuf_full",
    [KC_ST_LOST_INFLIGHT] = "inflight_full",
    [KC_ST_LOST_EXIT] = "thread_exit",
};

struct kc_audit {
	struct kc_audit_opts o;
	char *policy_path;
	struct audit_bpf *skel;
	struct bpf_link *cg_links[2];
	int cg_fd;
	char cgroup_root[256];
	char node[128];
	struct kc_audit_key key;
	struct kc_audit_policy *pol[2]; /* by generation; pol[gen] is active */
	unsigned gen;
	struct kc_audit_sink *sinks[MAX_SINKS];
	unsigned n_sinks;
	struct ring_buffer *rb;
	struct kc_audit_enrich *enrich;
	pthread_t consumer;
	int consumer_started;
	_Atomic int stop;
	int64_t mono_to_real;
	struct kc_buf enc; /* consumer thread */
	/* Counters: written by the consumer, read by the collector under lock. */
	pthread_mutex_t lock;
	uint64_t kst[KC_HOOK__COUNT][KC_ST__COUNT]; /* kernel counters, summed over CPUs */
	uint64_t events[KC_HOOK__COUNT];	    /* events read from the ring */
	uint64_t reloads_ok, reloads_failed;
	uint64_t last_gap_ns;
	struct kc_audit_enrich_stats es;
	char pin_dir[200];
	int tails[MAX_TAILS];  /* under lock; -1 free */
	uint64_t tail_dropped; /* under lock */
};

/* --- records that are not syscalls --------------------------------------------------------- */

/* kcachectl audit tail: records as they come, unchained, on non-blocking sockets. A client
 * that cannot keep up misses records (counted); one that went away is dropped. */
static void tail_write(struct kc_audit *a, const char *body, size_t len)
{
	char *line;

	pthread_mutex_lock(&a->lock);
	for (int i = 0; i < MAX_TAILS; i++) {
		ssize_t w;

		if (a->tails[i] < 0)
			continue;
		line = malloc(len + 3);
		if (!line)
			break;
		line[0] = '{';
		memcpy(line + 1, body, len);
		memcpy(line + 1 + len, "}\n", 2);
		w = send(a->tails[i], line, len + 3, MSG_NOSIGNAL | MSG_DONTWAIT);
		free(line);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			a->tail_dropped++;
		} else if (w < 0) {
			close(a->tails[i]);
			a->tails[i] = -1;
		}
	}
	pthread_mutex_unlock(&a->lock);
}

static void fanout(struct kc_audit *a, const char *body, size_t len, unsigned hook)
{
	struct kc_audit_rec *r = kc_audit_rec_new(body, len, hook);

	if (!r) {
		log_warn("audit: out of memory for a record");
		return;
	}
	for (unsigned i = 0; i < a->n_sinks; i++)
		kc_audit_sink_push(a->sinks[i], r);
	kc_audit_rec_put(r);
	tail_write(a, body, len);
}

static void policy_record(struct kc_audit *a, const char *result, const char *detail,
			  const struct kc_audit_policy *p)
{
	struct kc_buf b = {0};
	char t[40];

	kc_audit_fmt_time(t, sizeof(t), kc_wall_ns());
	kc_buf_printf(&b, "\"time\":\"%s\",\"node\":", t);
	kc_json_str(&b, a->node, sizeof(a->node));
	kc_buf_printf(&b, ",\"type\":\"policy\",\"result\":\"%s\",\"file\":", result);
	kc_json_str(&b, a->policy_path, 4096);
	if (p) {
		kc_buf_printf(&b, ",\"rules\":%u,\"names\":[", p->n_rules);
		for (unsigned i = 0; i < p->n_rules; i++) {
			if (i)
				kc_buf_puts(&b, ",");
			kc_json_str(&b, p->names[i], KC_AUDIT_NAME_MAX + 1);
		}
		kc_buf_puts(&b, "]");
	}
	if (detail) {
		kc_buf_puts(&b, ",\"detail\":");
		kc_json_str(&b, detail, 1024);
	}
	if (b.data)
		fanout(a, b.data, b.len, KC_HOOK_NONE);
	kc_buf_free(&b);
}

int kc_audit_emit(struct kc_audit *a, const char *type, const char *members, size_t len)
{
	struct kc_buf b = {0};
	char t[40];
	int rc = 0;

	if (!a)
		return 0;
	kc_audit_fmt_time(t, sizeof(t), kc_wall_ns());
	kc_buf_printf(&b, "\"time\":\"%s\",\"node\":", t);
	kc_json_str(&b, a->node, sizeof(a->node));
	kc_buf_puts(&b, ",\"type\":");
	kc_json_str(&b, type, 64);
	if (len) {
		kc_buf_puts(&b, ",");
		kc_buf_append(&b, members, len);
	}
	if (b.data)
		fanout(a, b.data, b.len, KC_HOOK_NONE);
	else
		rc = -ENOMEM;
	kc_buf_free(&b);
	return rc;
}

/* --- kernel counters and gap records ------------------------------------------------------ */

/* Reads the per-CPU counters; for each hook whose losses grew, writes a gap record. */
static void poll_stats(struct kc_audit *a)
{
	int ncpu = libbpf_num_possible_cpus(), fd = bpf_map__fd(a->skel->maps.kc_audit_stats);
	struct kc_audit_stats *per = calloc((size_t)(ncpu > 0 ? ncpu : 1), sizeof(*per));
	uint64_t now = kc_wall_ns();
	char t0[40], t1[40], body[400];

	if (!per)
		return;
	kc_audit_fmt_time(t0, sizeof(t0), a->last_gap_ns ? a->last_gap_ns : now);
	kc_audit_fmt_time(t1, sizeof(t1), now);
	for (__u32 h = 0; h < KC_HOOK__COUNT; h++) {
		uint64_t sum[KC_ST__COUNT] = {0};

		if (bpf_map_lookup_elem(fd, &h, per))
			continue;
		for (int c = 0; c < ncpu; c++)
			for (int k = 0; k < KC_ST__COUNT; k++)
				sum[k] += per[c].v[k];
		for (int k = KC_ST_LOST_RINGBUF; k <= KC_ST_LOST_EXIT; k++) {
			uint64_t d = sum[k] - a->kst[h][k];

			if (!d)
				continue;
			snprintf(body, sizeof(body),
				 "\"time\":\"%s\",\"node\":\"%s\",\"type\":\"gap\",\"hook\":\"%s\","
				 "\"reason\":\"%s\",\"count\":%llu,\"from\":\"%s\",\"to\":\"%s\"",
				 t1, a->node, kc_audit_hook_name(h), lost_reason[k],
				 (unsigned long long)d, t0, t1);
			fanout(a, body, strlen(body), h);
		}
		pthread_mutex_lock(&a->lock);
		memcpy(a->kst[h], sum, sizeof(sum));
		pthread_mutex_unlock(&a->lock);
	}
	a->last_gap_ns = now;
	free(per);
}

/* --- the ring buffer consumer ------------------------------------------------------------- */

static int on_record(void *ctx, void *data, size_t size)
{
	struct kc_audit *a = ctx;
	const struct kc_audit_event *ev = data;
	const struct kc_audit_policy *p;
	unsigned rule, gen;

	if (size >= sizeof(struct kc_audit_exec) && ev->type == KC_REC_EXEC) {
		kc_audit_enrich_exec(a->enrich, data);
		return 0;
	}
	if (size < sizeof(*ev) || ev->type != KC_REC_EVENT || ev->hook >= KC_HOOK__COUNT)
		return 0;
	rule = KC_AUDIT_RULE_IDX(ev->rule);
	gen = KC_AUDIT_RULE_GEN(ev->rule);
	p = a->pol[gen];
	a->enc.len = a->enc.off = 0;
	if (kc_audit_encode_event(a->enrich, ev, p && rule < p->n_rules ? p->names[rule] : "?",
				  a->mono_to_real, &a->enc) == 0)
		fanout(a, a->enc.data, a->enc.len, ev->hook);
	pthread_mutex_lock(&a->lock);
	a->events[ev->hook]++;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static void *consumer_main(void *arg)
{
	struct kc_audit *a = arg;
	uint64_t last = kc_mono_ns();

	while (!atomic_load(&a->stop)) {
		uint64_t now;

		ring_buffer__poll(a->rb, 100);
		now = kc_mono_ns();
		if (now - last >= 1000000000ULL) {
			poll_stats(a);
			pthread_mutex_lock(&a->lock);
			kc_audit_enrich_stats(a->enrich, &a->es);
			pthread_mutex_unlock(&a->lock);
			last = now;
		}
	}
	/* The programs are detached: what is in the ring is all there will be. */
	ring_buffer__consume(a->rb);
	poll_stats(a);
	return NULL;
}

/* --- policy into maps --------------------------------------------------------------------- */

struct cg_scan {
	struct kc_audit *a;
	const struct kc_audit_policy *p;
	unsigned gen;
	size_t root_len;
	unsigned n;
};
static struct cg_scan *cg_scan_ctx; /* nftw has no user pointer; main thread only */

static int cg_scan_cb(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	struct cg_scan *c = cg_scan_ctx;
	const char *rel = fpath[c->root_len] ? fpath + c->root_len : "/";
	int fd = bpf_map__fd(c->a->skel->maps.kc_audit_cg);
	struct kc_audit_cgval v = {0};
	__u64 id = sb->st_ino, m;

	if (type != FTW_D || ftw->level > 32)
		return 0;
	m = kc_audit_policy_match(c->p, KC_LPM_CG, rel);
	if (bpf_map_lookup_elem(fd, &id, &v) && !m)
		return 0;
	v.mask[c->gen] = m;
	if (v.mask[0] | v.mask[1])
		bpf_map_update_elem(fd, &id, &v, BPF_ANY);
	else
		bpf_map_delete_elem(fd, &id);
	return ++c->n >= KC_AUDIT_CG_DEFAULT ? 1 : 0;
}

/* Writes policy p into generation gen (which no program reads). */
static int write_gen(struct kc_audit *a, const struct kc_audit_policy *p, unsigned gen, char *err,
		     size_t errlen)
{
	int lpm = bpf_map__fd(a->skel->maps.kc_audit_lpm);
	int rules = bpf_map__fd(a->skel->maps.kc_audit_rules);
	int pol = bpf_map__fd(a->skel->maps.kc_audit_pol);
	int cgfd = bpf_map__fd(a->skel->maps.kc_audit_cg);
	struct kc_audit_lpm_key key, next;
	struct kc_audit_rule zero = {0};
	struct cg_scan sc = {.a = a, .p = p, .gen = gen, .root_len = strlen(a->cgroup_root)};
	__u64 cgid, cgnext;
	int rc;

	/* Clear the generation: its prefixes, and its bits in every cgroup entry. */
	for (int more = !bpf_map_get_next_key(lpm, NULL, &key); more;) {
		more = !bpf_map_get_next_key(lpm, &key, &next);
		if (key.data[0] == gen)
			bpf_map_delete_elem(lpm, &key);
		key = next;
	}
	for (int more = !bpf_map_get_next_key(cgfd, NULL, &cgid); more;) {
		struct kc_audit_cgval v;

		more = !bpf_map_get_next_key(cgfd, &cgid, &cgnext);
		if (!bpf_map_lookup_elem(cgfd, &cgid, &v)) {
			v.mask[gen] = 0;
			if (v.mask[gen ^ 1])
				bpf_map_update_elem(cgfd, &cgid, &v, BPF_ANY);
			else
				bpf_map_delete_elem(cgfd, &cgid);
		}
		cgid = cgnext;
	}
	for (unsigned i = 0; i < KC_AUDIT_MAX_RULES; i++) {
		__u32 idx = gen * KC_AUDIT_MAX_RULES + i;

		rc = bpf_map_update_elem(rules, &idx, i < p->n_rules ? &p->rules[i] : &zero,
					 BPF_ANY);
		if (rc)
			goto fail;
	}
	for (unsigned i = 0; i < p->n_prefixes; i++) {
		const struct kc_audit_prefix *e = &p->prefixes[i];
		__u64 mask = e->mask;

		memset(&key, 0, sizeof(key));
		key.data[0] = gen;
		key.data[1] = e->kind;
		memcpy(key.data + 2, e->s, e->len);
		key.prefixlen = (2 + e->len + e->exact) * 8;
		rc = bpf_map_update_elem(lpm, &key, &mask, BPF_ANY);
		if (rc)
			goto fail;
	}
	/* The head filter of the generation: no program reads it until gen switches. */
	kc_audit_policy_head(p,
			     (uint64_t *)a->skel->bss->kc_audit_head + gen * KC_AUDIT_HEAD_SLOTS);
	/* Then the per-hook masks, so the generation is whole before anyone can read it. */
	rc = bpf_map_update_elem(pol, &gen, &p->pol, BPF_ANY);
	if (rc)
		goto fail;
	cg_scan_ctx = &sc;
	nftw(a->cgroup_root, cg_scan_cb, 16, FTW_PHYS | FTW_MOUNT);
	cg_scan_ctx = NULL;
	return 0;
fail:
	rc = -errno;
	snprintf(err, errlen, "audit: writing policy maps: %s", strerror(errno));
	return rc;
}

static void set_active(struct kc_audit *a, unsigned gen)
{
	atomic_store((_Atomic __u32 *)&a->skel->bss->kc_audit_ctl.gen, gen);
	a->gen = gen;
}

int kc_audit_reload(struct kc_audit *a, char *err, size_t errlen)
{
	struct kc_audit_policy *p = kc_audit_policy_load(a->policy_path, err, errlen);
	unsigned ng = a->gen ^ 1;
	int rc;

	if (!p) {
		a->reloads_failed++;
		policy_record(a, "refused", err, NULL);
		return -EINVAL;
	}
	rc = write_gen(a, p, ng, err, errlen);
	if (rc) {
		kc_audit_policy_free(p);
		a->reloads_failed++;
		policy_record(a, "refused", err, NULL);
		return rc;
	}
	/* The old generation's names stay until the next reload: events matched against it may
	 * still be in the ring. */
	kc_audit_policy_free(a->pol[ng]);
	a->pol[ng] = p;
	set_active(a, ng);
	a->reloads_ok++;
	policy_record(a, "loaded", NULL, p);
	log_info("audit: policy %s loaded: %u rules, %u prefixes", a->policy_path, p->n_rules,
		 p->n_prefixes);
	return 0;
}

/* --- metrics ------------------------------------------------------------------------------ */

static void collector(void *ctx, struct kc_buf *out)
{
	struct kc_audit *a = ctx;
	uint64_t(*kst)[KC_ST__COUNT] = malloc(sizeof(a->kst));
	uint64_t events[KC_HOOK__COUNT];
	struct kc_audit_sink_stats ss[MAX_SINKS];
	struct kc_audit_enrich_stats es;
	char l[160];

	if (!kst)
		return;
	pthread_mutex_lock(&a->lock);
	memcpy(kst, a->kst, sizeof(a->kst));
	memcpy(events, a->events, sizeof(events));
	es = a->es;
	pthread_mutex_unlock(&a->lock);
	for (unsigned i = 0; i < a->n_sinks; i++)
		kc_audit_sink_stats(a->sinks[i], &ss[i]);

#define HOOKS for (unsigned h = 1; h < KC_HOOK__COUNT; h++)
#define HL(h) (snprintf(l, sizeof(l), "hook=\"%s\"", kc_audit_hook_name(h)), l)
	kc_metric_header(out, "kcache_audit_events_total", "counter",
			 "Audit events the daemon read from the kernel, by hook.");
	HOOKS kc_metric_u64(out, "kcache_audit_events_total", HL(h),
			    h == KC_HOOK_PROC ? kst[h][KC_ST_EMITTED] : events[h]);
	kc_metric_header(out, "kcache_audit_seen_total", "counter",
			 "Calls a rule kept in the kernel (seen = events + lost in the kernel).");
	HOOKS kc_metric_u64(out, "kcache_audit_seen_total", HL(h), kst[h][KC_ST_SEEN]);
	kc_metric_header(out, "kcache_audit_lost_total", "counter",
			 "Audit events lost, by hook and reason (kernel, or a sink that could not "
			 "take them); each loss is a gap record in the stream.");
	HOOKS
	{
		for (int k = KC_ST_LOST_RINGBUF; k <= KC_ST_LOST_EXIT; k++) {
			snprintf(l, sizeof(l), "hook=\"%s\",reason=\"%s\"", kc_audit_hook_name(h),
				 lost_reason[k]);
			kc_metric_u64(out, "kcache_audit_lost_total", l, kst[h][k]);
		}
		for (unsigned i = 0; i < a->n_sinks; i++) {
			snprintf(l, sizeof(l), "hook=\"%s\",reason=\"sink_%s\"",
				 kc_audit_hook_name(h), kc_audit_sink_name(a->sinks[i]));
			kc_metric_u64(out, "kcache_audit_lost_total", l, ss[i].dropped[h]);
		}
	}
	kc_metric_header(out, "kcache_audit_filtered_total", "counter",
			 "Audited syscalls dropped in the kernel: no rule, an ignore rule, or a "
			 "rate limit.");
	for (unsigned h = 1; h < KC_HOOK__SYSCALLS; h++) {
		static const struct {
			int st;
			const char *n;
		} r[] = {{KC_ST_FILTERED, "no_rule"},
			 {KC_ST_IGNORED, "ignore"},
			 {KC_ST_RATELIMITED, "rate_limit"}};

		for (int k = 0; k < 3; k++) {
			snprintf(l, sizeof(l), "hook=\"%s\",reason=\"%s\"", kc_audit_hook_name(h),
				 r[k].n);
			kc_metric_u64(out, "kcache_audit_filtered_total", l, kst[h][r[k].st]);
		}
	}
	kc_metric_header(out, "kcache_audit_enforced_total", "counter",
			 "Kill actions (SIGKILL sent) and refused connects, by hook.");
	for (unsigned h = 1; h < KC_HOOK__SYSCALLS; h++) {
		snprintf(l, sizeof(l), "hook=\"%s\",action=\"kill\"", kc_audit_hook_name(h));
		kc_metric_u64(out, "kcache_audit_enforced_total", l, kst[h][KC_ST_KILLED]);
	}
	kc_metric_u64(out, "kcache_audit_enforced_total", "hook=\"connect\",action=\"deny\"",
		      kst[KC_HOOK_CONNECT][KC_ST_DENIED]);
	kc_metric_header(out, "kcache_audit_records_total", "counter",
			 "Records written into each sink's chain (events, gaps, checkpoints).");
	for (unsigned i = 0; i < a->n_sinks; i++) {
		snprintf(l, sizeof(l), "sink=\"%s\"", kc_audit_sink_name(a->sinks[i]));
		kc_metric_u64(out, "kcache_audit_records_total", l, ss[i].written);
	}
	kc_metric_header(out, "kcache_audit_sink_queue_bytes", "gauge",
			 "Bytes waiting in each sink's bounded queue.");
	for (unsigned i = 0; i < a->n_sinks; i++) {
		snprintf(l, sizeof(l), "sink=\"%s\"", kc_audit_sink_name(a->sinks[i]));
		kc_metric_u64(out, "kcache_audit_sink_queue_bytes", l, ss[i].queued_bytes);
	}
	kc_metric_header(out, "kcache_audit_sink_up", "gauge", "1 while a sink can write.");
	for (unsigned i = 0; i < a->n_sinks; i++) {
		snprintf(l, sizeof(l), "sink=\"%s\"", kc_audit_sink_name(a->sinks[i]));
		kc_metric_u64(out, "kcache_audit_sink_up", l, (uint64_t)ss[i].connected);
	}
	kc_metric_header(out, "kcache_audit_table_evictions_total", "counter",
			 "Entries evicted from the daemon's bounded process tables.");
	kc_metric_u64(out, "kcache_audit_table_evictions_total", "table=\"image\"",
		      es.image_evictions);
	kc_metric_u64(out, "kcache_audit_table_evictions_total", "table=\"cgroup\"",
		      es.cgroup_evictions);
	kc_metric_header(out, "kcache_audit_table_misses_total", "counter",
			 "Lookups that missed a process table (kernel: processes older than the "
			 "audit or evicted from kc_audit_proc).");
	kc_metric_u64(out, "kcache_audit_table_misses_total", "table=\"image\"", es.image_misses);
	kc_metric_u64(out, "kcache_audit_table_misses_total", "table=\"cgroup\"", es.cgroup_misses);
	kc_metric_u64(out, "kcache_audit_table_misses_total", "table=\"kernel_proc\"",
		      kst[KC_HOOK_PROC][KC_ST_PROC_MISS]);
	kc_metric_header(out, "kcache_audit_policy_reloads_total", "counter",
			 "Policy reloads (SIGHUP), by result.");
	kc_metric_u64(out, "kcache_audit_policy_reloads_total", "result=\"loaded\"", a->reloads_ok);
	kc_metric_u64(out, "kcache_audit_policy_reloads_total", "result=\"refused\"",
		      a->reloads_failed);
	kc_metric_one(out, "kcache_audit_policy_rules", "gauge", "Rules in the active policy.",
		      a->pol[a->gen] ? a->pol[a->gen]->n_rules : 0);
#undef HOOKS
#undef HL
	free(kst);
}

/* --- admin ------------------------------------------------------------------------------- */

/* "audit status | reload | tail": one streaming command, so that tail can keep the socket. */
static int admin_audit(void *ctx, int fd, int argc, char **argv, char *err, size_t errlen)
{
	struct kc_audit *a = ctx;
	const char *sub = argc > 1 ? argv[1] : "status";
	char msg[600];

	if (!strcmp(sub, "tail")) {
		pthread_mutex_lock(&a->lock);
		for (int i = 0; i < MAX_TAILS; i++) {
			if (a->tails[i] < 0) {
				kc_admin_ok(fd); /* before the sink thread may write to fd */
				a->tails[i] = fd;
				pthread_mutex_unlock(&a->lock);
				return 0;
			}
		}
		pthread_mutex_unlock(&a->lock);
		snprintf(err, errlen, "already %d tail clients", MAX_TAILS);
		return -1;
	}
	if (!strcmp(sub, "reload")) {
		if (kc_audit_reload(a, msg, sizeof(msg))) {
			snprintf(err, errlen, "policy refused, the previous one stays: %s", msg);
			return -1;
		}
		kc_admin_ok(fd);
		dprintf(fd, "policy %s loaded: %u rules\n", a->policy_path,
			a->pol[a->gen]->n_rules);
	} else if (!strcmp(sub, "status")) {
		uint64_t seen = 0, ev = 0, lost = 0;

		pthread_mutex_lock(&a->lock);
		for (unsigned h = 1; h < KC_HOOK__SYSCALLS; h++) {
			seen += a->kst[h][KC_ST_SEEN];
			ev += a->events[h];
			for (int k = KC_ST_LOST_RINGBUF; k <= KC_ST_LOST_EXIT; k++)
				lost += a->kst[h][k];
		}
		pthread_mutex_unlock(&a->lock);
		kc_admin_ok(fd);
		dprintf(fd,
			"policy %s: %u rules (generation %u)\nsinks %u\nseen %llu events %llu "
			"lost in the kernel %llu\n",
			a->policy_path, a->pol[a->gen]->n_rules, a->gen, a->n_sinks,
			(unsigned long long)seen, (unsigned long long)ev, (unsigned long long)lost);
	} else {
		snprintf(err, errlen, "usage: audit status | reload | tail");
		return -1;
	}
	close(fd);
	return 0;
}

int kc_audit_register_admin(struct kc_audit *a, struct kc_admin *admin)
{
	if (!admin)
		return -EINVAL;
	return kc_admin_register(
	    admin, "audit", "syscall audit: audit status | reload | tail (verify runs offline)",
	    NULL, admin_audit, a);
}

/* --- start and stop ----------------------------------------------------------------------- */

static void find_cgroup_root(struct kc_audit *a)
{
	static const char *const cands[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	struct statfs sf;

	if (a->o.cgroup_root && a->o.cgroup_root[0]) {
		snprintf(a->cgroup_root, sizeof(a->cgroup_root), "%s", a->o.cgroup_root);
		return;
	}
	snprintf(a->cgroup_root, sizeof(a->cgroup_root), "%s", cands[0]);
	for (int i = 0; i < 2; i++)
		if (!statfs(cands[i], &sf) && sf.f_type == CGROUP2_MAGIC) {
			snprintf(a->cgroup_root, sizeof(a->cgroup_root), "%s", cands[i]);
			return;
		}
}

static int add_sinks(struct kc_audit *a, char *err, size_t errlen)
{
	struct kc_audit_sink_cfg c = {.queue_bytes = a->o.queue_bytes ? a->o.queue_bytes : 16 << 20,
				      .checkpoint_s = a->o.checkpoint_s ? a->o.checkpoint_s : 10,
				      .key = &a->key,
				      .node = a->node};

	if (a->o.log && a->o.log[0]) {
		c.kind = strcmp(a->o.log, "-") ? KC_SINK_FILE : KC_SINK_STDOUT;
		c.path = a->o.log;
		c.max_size = a->o.log_max_size;
		c.max_files = a->o.log_max_files < 2 ? 2 : a->o.log_max_files;
		if (!(a->sinks[a->n_sinks] = kc_audit_sink_start(&c, err, errlen)))
			return -EINVAL;
		a->n_sinks++;
	}
	if (a->o.redis_stream && a->o.redis_stream[0]) {
		struct kc_redis_url url;
		char *key, why[256];

		/* The URLs of --redis, with the stream key as the last path segment; errors
		 * never show the password. */
		if (kc_redis_url_parse_key(a->o.redis_stream, &url, &key, why, sizeof(why))) {
			snprintf(err, errlen, "audit-redis-stream: %s", why);
			return -EINVAL;
		}
		c.kind = KC_SINK_REDIS;
		c.redis_url = &url;
		c.stream = key;
		c.stream_max = a->o.redis_maxlen ? a->o.redis_maxlen : 100000;
		a->sinks[a->n_sinks] = kc_audit_sink_start(&c, err, errlen); /* copies both */
		kc_redis_url_free(&url);
		free(key);
		if (!a->sinks[a->n_sinks])
			return -EINVAL;
		a->n_sinks++;
	}
	if (!a->n_sinks) {
		snprintf(err, errlen,
			 "audit-policy needs audit-log (a file or -) or audit-redis-stream");
		return -EINVAL;
	}
	return 0;
}

static int load_bpf(struct kc_audit *a, char *err, size_t errlen)
{
	struct audit_bpf *s = audit_bpf__open();
	int rc;

	if (!s) {
		snprintf(err, errlen, "audit: open BPF object: %s", strerror(errno));
		return -errno;
	}
	a->skel = s;
	for (unsigned i = 0; i < kc_audit_n_syscalls; i++) {
		const struct kc_audit_sc *sc = &kc_audit_syscalls[i];

		if (sc->nr < 0 || sc->nr >= KC_AUDIT_NR_MAX)
			continue;
		if (sc->ia32) {
			s->rodata->kc_sc_hook32[sc->nr] = sc->hook;
			s->rodata->kc_sc_flags32[sc->nr] = sc->flags;
			s->rodata->kc_ts_compat = 0x0002; /* TS_COMPAT */
		} else {
			s->rodata->kc_sc_hook[sc->nr] = sc->hook;
			s->rodata->kc_sc_flags[sc->nr] = sc->flags;
		}
		s->rodata->kc_sc_any[sc->nr] = 1;
	}
	if (a->o.ring_size)
		bpf_map__set_max_entries(s->maps.kc_audit_rb, (__u32)a->o.ring_size);
	/* io_uring opens are audited where the kernel has io_uring_submit_req (5.17+); without
	 * it, io_uring_setup is still a hook a rule can audit or kill. */
	if (libbpf_find_vmlinux_btf_id("io_uring_submit_req", BPF_TRACE_RAW_TP) < 0) {
		bpf_program__set_autoload(s->progs.kc_audit_uring, false);
		log_warn("audit: no io_uring_submit_req tracepoint: io_uring opens are not seen "
			 "(audit or kill io_uring_setup instead)");
	}
	rc = audit_bpf__load(s);
	if (rc) {
		snprintf(err, errlen,
			 "audit: load BPF programs: %s (root or CAP_BPF+CAP_PERFMON needed)",
			 strerror(-rc));
		return rc;
	}
	rc = audit_bpf__attach(s);
	if (rc) {
		snprintf(err, errlen, "audit: attach tracepoints: %s", strerror(-rc));
		return rc;
	}
	a->cg_fd = open(a->cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->cg_fd >= 0) {
		a->cg_links[0] = bpf_program__attach_cgroup(s->progs.kc_audit_connect4, a->cg_fd);
		a->cg_links[1] = bpf_program__attach_cgroup(s->progs.kc_audit_connect6, a->cg_fd);
	}
	if (!a->cg_links[0] || !a->cg_links[1])
		log_warn("audit: cgroup connect hooks not attached at %s: deny rules only audit",
			 a->cgroup_root);
	return 0;
}

static void pin_maps(struct kc_audit *a)
{
	struct bpf_map *m;

	if (!a->o.pin_path || !a->o.pin_path[0])
		return;
	snprintf(a->pin_dir, sizeof(a->pin_dir), "%s/audit", a->o.pin_path);
	if (mkdir(a->o.pin_path, 0700) && errno != EEXIST)
		goto fail;
	if (mkdir(a->pin_dir, 0700) && errno != EEXIST)
		goto fail;
	bpf_object__for_each_map(m, a->skel->obj)
	{
		char p[300];

		if (strncmp(bpf_map__name(m), "kc_", 3))
			continue;
		snprintf(p, sizeof(p), "%s/%s", a->pin_dir, bpf_map__name(m));
		unlink(p); /* a stale pin from a daemon that died */
		if (bpf_map__pin(m, p))
			log_debug("audit: pin %s: %s", p, strerror(errno));
	}
	return;
fail:
	log_warn("audit: cannot pin maps under %s: %s", a->pin_dir, strerror(errno));
	a->pin_dir[0] = 0;
}

static void unpin_maps(struct kc_audit *a)
{
	struct bpf_map *m;

	if (!a->pin_dir[0] || !a->skel)
		return;
	bpf_object__for_each_map(m, a->skel->obj) if (!strncmp(bpf_map__name(m), "kc_", 3))
	    bpf_map__unpin(m, NULL);
	rmdir(a->pin_dir);
	rmdir(a->o.pin_path); /* it made the folder too: gone when the other families' are */
}

struct kc_audit *kc_audit_start(const struct kc_audit_opts *o, char *err, size_t errlen)
{
	struct kc_audit *a = calloc(1, sizeof(*a));
	struct utsname u;
	int rc;

	if (!a) {
		snprintf(err, errlen, "audit: out of memory");
		return NULL;
	}
	a->o = *o;
	a->cg_fd = -1;
	for (int i = 0; i < MAX_TAILS; i++)
		a->tails[i] = -1;
	pthread_mutex_init(&a->lock, NULL);
	a->policy_path = strdup(o->policy);
	snprintf(a->node, sizeof(a->node), "%s", uname(&u) ? "unknown" : u.nodename);
	find_cgroup_root(a);
	if (!a->policy_path)
		goto oom;
	a->pol[0] = kc_audit_policy_load(o->policy, err, errlen);
	if (!a->pol[0])
		goto fail;
	if (!o->key || !o->key[0]) {
		snprintf(err, errlen, "audit-policy needs audit-key (an HMAC key file, mode 0600)");
		goto fail;
	}
	if (kc_audit_key_load(o->key, &a->key, err, errlen))
		goto fail;
	a->enrich = kc_audit_enrich_new(4096, 4096, a->cgroup_root, a->node);
	if (!a->enrich)
		goto oom;
	if (load_bpf(a, err, errlen))
		goto fail;
	if (write_gen(a, a->pol[0], 0, err, errlen))
		goto fail;
	if (add_sinks(a, err, errlen))
		goto fail;
	pin_maps(a);
	a->mono_to_real = (int64_t)(kc_wall_ns() - kc_mono_ns());
	a->rb = ring_buffer__new(bpf_map__fd(a->skel->maps.kc_audit_rb), on_record, a, NULL);
	if (!a->rb) {
		snprintf(err, errlen, "audit: ring buffer: %s", strerror(errno));
		goto fail;
	}
	policy_record(a, "loaded", NULL, a->pol[0]);
	set_active(a, 0);
	atomic_store((_Atomic __u32 *)&a->skel->bss->kc_audit_ctl.enabled, 1);
	rc = pthread_create(&a->consumer, NULL, consumer_main, a);
	if (rc) {
		snprintf(err, errlen, "audit: consumer thread: %s", strerror(rc));
		goto fail;
	}
	a->consumer_started = 1;
	kc_metrics_add_collector(collector, a);
	log_info("audit: %u rules from %s, %u sink(s), cgroup root %s, BPF LSM and kprobes not "
		 "used (syscall tracepoints)",
		 a->pol[0]->n_rules, o->policy, a->n_sinks, a->cgroup_root);
	return a;
oom:
	snprintf(err, errlen, "audit: out of memory");
fail:
	kc_audit_stop(a);
	return NULL;
}

void kc_audit_stop(struct kc_audit *a)
{
	if (!a)
		return;
	if (a->skel && a->skel->bss)
		atomic_store((_Atomic __u32 *)&a->skel->bss->kc_audit_ctl.enabled, 0);
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(a->cg_links[i]);
	if (a->skel)
		audit_bpf__detach(a->skel);
	atomic_store(&a->stop, 1);
	if (a->consumer_started)
		pthread_join(a->consumer, NULL);
	for (unsigned i = 0; i < a->n_sinks; i++)
		kc_audit_sink_stop(a->sinks[i]);
	a->n_sinks = 0;
	ring_buffer__free(a->rb);
	unpin_maps(a);
	audit_bpf__destroy(a->skel);
	if (a->cg_fd >= 0)
		close(a->cg_fd);
	kc_audit_enrich_free(a->enrich);
	kc_audit_policy_free(a->pol[0]);
	kc_audit_policy_free(a->pol[1]);
	kc_buf_free(&a->enc);
	for (int i = 0; i < MAX_TAILS; i++)
		if (a->tails[i] >= 0)
			close(a->tails[i]);
	memset(&a->key, 0, sizeof(a->key));
	free(a->policy_path);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
