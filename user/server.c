/* server.c: kcached's lifecycle: tier, sockets, worker threads, signals (see server.h). */
#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/admin.h"
#include "audit/audit.h"
#include "kernel/cache.h"
#include "serve/conn.h"
#include "core/http.h"
#include "core/log.h"
#include "mem/mem.h"
#include "core/metrics.h"
#include "tiers/tier.h"
#include "netpol/policy.h"
#include "core/version.h"

struct kc_server {
	struct kc_config cfg;
	struct kc_mem *mem;
	struct kc_proto_env env;
	_Atomic uint64_t curr_conns, total_conns;
	struct kc_conn_budget conn_budget; /* every worker's TCP connection buffers */
	struct event_base *base;	   /* main thread: signals, HTTP */
	struct event *sigs[2];
	struct kc_http *http;
	struct kc_admin *admin;
	struct kc_pol *policy;	/* network policy, NULL with --xdp-mode off */
	struct kc_tiers *tiers; /* Redis and the object store, NULL when none is configured */
	struct kc_cache *cache; /* kernel tier, NULL with --xdp-mode off */
	struct kc_audit *audit; /* syscall audit, NULL without --audit-policy */
	struct event *sighup;	/* reloads the audit and network policies */
	unsigned port;		/* the bound memcached port */
	unsigned nworkers;
	struct kc_worker *workers;
	pthread_t *threads;
	unsigned started; /* workers whose thread runs */
};

/* Binds a non-blocking SO_REUSEPORT socket. With probe, first checks that nobody holds the port
 * (and resolves port 0 to a free one, written back so the other workers and UDP join it).
 * Returns the fd or -errno with a message in err. */
static int bind_socket(const char *host, unsigned *port, int type, bool probe, char *err,
		       size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = type,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	char portstr[8];
	const char *proto = type == SOCK_STREAM ? "tcp" : "udp";
	int fd, one = 1, rc;

	snprintf(portstr, sizeof(portstr), "%u", *port);
	rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc) {
		kc_errf(err, errlen, "listen address '%s': %s", host, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		kc_errf(err, errlen, "socket %s: %s", proto, strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* SO_REUSEPORT would let a second kcached (or anything of the same user) silently share
	 * the port. The first worker binds without it first, as a probe, so a port in use fails
	 * with EADDRINUSE; then every worker joins the group with SO_REUSEPORT. */
	if (probe && bind(fd, ai->ai_addr, ai->ai_addrlen)) {
		rc = -errno;
		kc_errf(err, errlen, "bind %s:%u/%s: %s", host, *port, proto, strerror(errno));
		close(fd);
		goto out;
	}
	if (probe) {
		union {
			struct sockaddr sa;
			struct sockaddr_in in;
			struct sockaddr_in6 in6;
		} u;
		socklen_t len = sizeof(u);

		memset(&u, 0, sizeof(u));
		if (getsockname(fd, &u.sa, &len)) {
			rc = -errno;
			kc_errf(err, errlen, "getsockname: %s", strerror(errno));
			close(fd);
			goto out;
		}
		*port = ntohs(u.sa.sa_family == AF_INET6 ? u.in6.sin6_port : u.in.sin_port);
		close(fd);
		freeaddrinfo(ai);
		return bind_socket(host, port, type, false, err, errlen);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || (type == SOCK_STREAM && listen(fd, 1024))) {
		rc = -errno;
		kc_errf(err, errlen, "bind %s:%u/%s: %s", host, *port, proto, strerror(errno));
		close(fd);
		goto out;
	}
	rc = fd;
out:
	freeaddrinfo(ai);
	return rc;
}

/* Descriptors kept for everything that is not a client connection: listeners, event loops,
 * BPF maps and programs, store and journal files, Redis and S3 connections, the audit log. */
#define FD_RESERVE_BASE	      128
#define FD_RESERVE_PER_WORKER 8

/* The connection caps fit RLIMIT_NOFILE: raises the soft limit to the hard one if it must, then
 * clamps max-conns and http-max-conns so that both together leave the reserve free; at EMFILE
 * the accept loops pause instead, but a cap refuses cleanly (an error reply, a 503). */
static void fit_fd_limit(struct kc_config *cfg, unsigned nworkers)
{
	struct rlimit rl;
	uint64_t reserve = FD_RESERVE_BASE + (uint64_t)FD_RESERVE_PER_WORKER * nworkers;
	uint64_t want = (uint64_t)cfg->max_conns + cfg->http_max_conns + reserve, budget;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want && rl.rlim_max > rl.rlim_cur) {
		struct rlimit up = {
		    rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max,
		    rl.rlim_max};

		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl.rlim_cur = up.rlim_cur;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return;
	budget = rl.rlim_cur > reserve + 2 ? rl.rlim_cur - reserve : 2;
	uint32_t http = cfg->http_max_conns, mc;

	if (http > budget / 4)
		http = (uint32_t)(budget / 4 ? budget / 4 : 1);
	mc = (uint32_t)(budget - http);
	if (mc > cfg->max_conns)
		mc = cfg->max_conns;
	log_warn("open-file limit %llu (RLIMIT_NOFILE) is below max-conns %u + http-max-conns %u + "
		 "%llu reserved: max-conns is now %u and http-max-conns %u (raise the limit, e.g. "
		 "LimitNOFILE=, to keep them)",
		 (unsigned long long)rl.rlim_cur, cfg->max_conns, cfg->http_max_conns,
		 (unsigned long long)reserve, mc, http);
	cfg->max_conns = mc;
	cfg->http_max_conns = http;
}

static void *worker_main(void *arg)
{
	struct kc_worker *w = arg;

	event_base_dispatch(w->base);
	kc_conn_close_all(w);
	return NULL;
}

/* pin-workers: worker i on the i-th CPU the process may use (mod their number). A worker that
 * stays on its CPU is not migrated to its waker's CPU and back between two wakeups, which on a
 * small VM costs more than the request (docs/benchmarks.md, tiers.sh). */
static void pin_worker(pthread_t th, unsigned i)
{
	cpu_set_t allowed, one;
	int n, k = -1, rc;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) || !(n = CPU_COUNT(&allowed)))
		return;
	for (int c = 0, seen = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed) && seen++ == (int)(i % (unsigned)n)) {
			k = c;
			break;
		}
	if (k < 0)
		return;
	CPU_ZERO(&one);
	CPU_SET(k, &one);
	rc = pthread_setaffinity_np(th, sizeof(one), &one);
	if (rc)
		log_warn("pin-workers: worker %u on CPU %d: %s", i, k, strerror(rc));
	else
		log_info("pin-workers: worker %u on CPU %d", i, k);
}

static int worker_init(struct kc_server *s, struct kc_worker *w, unsigned id, unsigned *port,
		       char *err, size_t errlen)
{
	w->id = id;
	w->env = &s->env;
	w->tiers = s->tiers;
	w->max_conns = s->cfg.max_conns;
	w->request_timeout = s->cfg.request_timeout;
	w->idle_timeout = s->cfg.idle_timeout;
	w->budget = &s->conn_budget;
	w->tcp_fd = w->udp_fd = -1;
	w->stats = kc_stats_new();
	w->base = event_base_new();
	if (!w->stats || !w->base) {
		kc_errf(err, errlen, "worker %u: out of memory", id);
		return -ENOMEM;
	}
	w->tcp_fd = bind_socket(s->cfg.listen, port, SOCK_STREAM, id == 0, err, errlen);
	if (w->tcp_fd < 0)
		return w->tcp_fd;
	w->tcp_ev = event_new(w->base, w->tcp_fd, EV_READ | EV_PERSIST, kc_conn_on_accept, w);
	if (!w->tcp_ev || event_add(w->tcp_ev, NULL))
		return -ENOMEM;
	if (!s->cfg.udp)
		return 0;
	w->udp_fd = bind_socket(s->cfg.listen, port, SOCK_DGRAM, id == 0, err, errlen);
	if (w->udp_fd < 0)
		return w->udp_fd;
	w->udp_ev = event_new(w->base, w->udp_fd, EV_READ | EV_PERSIST, kc_udp_on_read, w);
	if (!w->udp_ev || event_add(w->udp_ev, NULL))
		return -ENOMEM;
	return 0;
}

static void worker_fini(struct kc_worker *w)
{
	if (w->tcp_ev)
		event_free(w->tcp_ev);
	if (w->udp_ev)
		event_free(w->udp_ev);
	if (w->tcp_fd >= 0)
		close(w->tcp_fd);
	if (w->udp_fd >= 0)
		close(w->udp_fd);
	kc_buf_free(&w->udp_out);
	if (w->base)
		event_base_free(w->base);
}

/* Exposes the memory tier in /metrics. */
static void mem_collector(void *ctx, struct kc_buf *out)
{
	struct kc_server *s = ctx;
	struct kc_mem_stats ms;

	kc_mem_stats(s->mem, &ms);
	kc_metric_one(out, "kcache_memory_items", "gauge", "Items in the memory tier.", ms.items);
	kc_metric_one(out, "kcache_memory_bytes", "gauge",
		      "Bytes the memory tier's items count against its capacity.", ms.bytes);
	kc_metric_one(out, "kcache_memory_capacity_bytes", "gauge",
		      "Capacity of the memory tier (--memory).", ms.capacity);
	kc_metric_one(out, "kcache_memory_evictions_total", "counter",
		      "Items evicted from the memory tier to make room.", ms.evictions);
	kc_metric_one(out, "kcache_memory_expired_total", "counter",
		      "Expired items removed from the memory tier.", ms.expired);
	kc_metric_one(out, "kcache_memory_admissions_rejected_total", "counter",
		      "New items TinyLFU admission kept out of the main segment.",
		      ms.admissions_rejected);
	kc_tiers_collect_hits(s->tiers, &ms, out);
	kc_metric_one(out, "kcache_connections", "gauge", "Open memcached TCP connections.",
		      atomic_load(&s->curr_conns));
}

/* admin: status: what runs where. */
static int admin_status(void *ctx, int argc, char **argv, struct kc_buf *out)
{
	struct kc_server *s = ctx;

	kc_buf_printf(out,
		      "kcached %s (memcached protocol %s)\npid %d\nuptime %llds\n"
		      "memcached %s:%u tcp%s\nhttp %s\nworkers %u\nxdp %s%s%s\n",
		      KC_VERSION, KC_VERSION_STRING, (int)getpid(),
		      (long long)(kc_mem_now() - s->env.started), s->cfg.listen, s->port,
		      s->cfg.udp ? "+udp" : "", s->cfg.http, s->nworkers,
		      kc_xdp_mode_name(s->cfg.xdp_mode), s->cfg.iface[0] ? " on " : "",
		      s->cfg.iface);
	return 0;
}

/* admin: stats: tier counters and request totals by protocol, operation and result. */
static int admin_stats(void *ctx, int argc, char **argv, struct kc_buf *out)
{
	struct kc_server *s = ctx;
	struct kc_mem_stats ms;
	struct kc_stats *sum = calloc(1, sizeof(*sum));

	if (!sum) {
		kc_buf_puts(out, "out of memory");
		return -1;
	}
	kc_mem_stats(s->mem, &ms);
	kc_buf_printf(out,
		      "tier memory: items %llu, bytes %llu of %llu, hits %llu, misses %llu, "
		      "evictions %llu, expired %llu\nconnections: %llu open, %llu total\n",
		      (unsigned long long)ms.items, (unsigned long long)ms.bytes,
		      (unsigned long long)ms.capacity, (unsigned long long)ms.hits,
		      (unsigned long long)ms.misses, (unsigned long long)ms.evictions,
		      (unsigned long long)ms.expired,
		      (unsigned long long)atomic_load(&s->curr_conns),
		      (unsigned long long)atomic_load(&s->total_conns));
	kc_tiers_stats_text(s->tiers, out);
	kc_stats_sum(sum);
	for (int p = 0; p < KC_PROTO__COUNT; p++)
		for (int op = 0; op < KC_OP__COUNT; op++)
			for (int r = 0; r < KC_RES__COUNT; r++)
				if (sum->requests[p][op][r])
					kc_buf_printf(out, "requests %s %s %s: %llu\n",
						      kc_proto_name(p), kc_op_name(op),
						      kc_res_name(r),
						      (unsigned long long)sum->requests[p][op][r]);
	free(sum);
	return 0;
}

/* admin: flush [--all-nodes], the operator's flush: unlike the protocol's flush_all (this
 * node's view until it restarts, and off unless allow-flush), it lasts: kept in
 * data-dir/flush, and with --all-nodes written to Redis and published to every node. A
 * streaming command so that it answers once the flush is done: "OK" and a line, or "ERR". */
struct admin_flush {
	int fd;
	bool all;
};

static void admin_flush_answer(int fd, const char *text)
{
	ssize_t n = write(fd, text, strlen(text)); /* a few bytes into an empty socket */

	(void)n;
	close(fd);
}

static void admin_flush_done(void *ctx, const char *err)
{
	struct admin_flush *f = ctx;
	char line[300];

	if (err)
		snprintf(line, sizeof(line), "ERR flush: %s\n", err);
	else
		snprintf(line, sizeof(line), "OK\nflushed: %s\n",
			 f->all ? "every node (Redis has the flush, kept in data-dir/flush)"
				: "this node (kept in data-dir/flush)");
	admin_flush_answer(f->fd, line);
	free(f);
}

static int admin_flush(void *ctx, int fd, int argc, char **argv, char *err, size_t errlen)
{
	struct kc_server *s = ctx;
	struct admin_flush *f;
	bool all = argc == 2 && !strcmp(argv[1], "--all-nodes");

	if (argc > 2 || (argc == 2 && !all)) {
		kc_errf(err, errlen, "usage: flush [--all-nodes]");
		return -1;
	}
	if (all && !kc_tiers_shared(s->tiers)) {
		kc_errf(err, errlen,
			"flush --all-nodes needs the Redis tier (how other nodes are told); "
			"'flush' flushes this node");
		return -1;
	}
	if (!s->tiers) {
		kc_mem_flush(s->mem, kc_mem_now());
		admin_flush_answer(fd, "OK\nflushed: this node's memory tier (no lower tiers)\n");
		return 0;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		kc_errf(err, errlen, "out of memory");
		return -1;
	}
	f->fd = fd;
	f->all = all;
	/* The lower tiers hide older values first, so that a read racing the flush cannot bring
	 * one back into the memory tier emptied next. */
	kc_tiers_flush(s->tiers, KC_TIERS_MAIN, kc_mem_now(),
		       all ? KC_FLUSH_ALL_NODES : KC_FLUSH_DURABLE, admin_flush_done, f);
	kc_mem_flush(s->mem, kc_mem_now());
	return 0;
}

static void note_get(void *ctx, const char *key, size_t nkey, const struct kc_item *it)
{
	kc_cache_note_get(ctx, key, nkey, it);
}

/* Attaches the network policy to the interface (unless --xdp-mode off): the kernel tier then
 * runs behind it (user/netpol/policy.h). */
static int start_net_policy(struct kc_server *s, unsigned port, char *err, size_t errlen)
{
	struct kc_pol_opts o = {.base = s->base,
				.iface = s->cfg.iface,
				.mode = s->cfg.xdp_mode,
				.pin_path = s->cfg.pin_path,
				.persist = s->cfg.net_policy_persist,
				.max_rules = s->cfg.net_policy_max_rules,
				.file = s->cfg.net_policy,
				.port = (uint16_t)port,
				.allow = s->cfg.allow};

	if (s->cfg.xdp_mode == KC_XDP_OFF)
		return 0;
	s->policy = kc_pol_start(&o, err, errlen);
	return s->policy ? 0 : -EINVAL;
}

/* Loads the kernel tier into the policy's slot (unless --xdp-mode off) once the UDP port is
 * known, and before any worker serves, so that the memory tier's hooks see every write. */
static int start_kernel_tier(struct kc_server *s, unsigned port, char *err, size_t errlen)
{
	struct kc_cache_opts o = {.base = s->base,
				  .mem = s->mem,
				  .iface = s->cfg.iface,
				  .mode = s->cfg.xdp_mode,
				  .port = (uint16_t)port,
				  .listen = s->cfg.listen,
				  .entries = s->cfg.kernel_entries,
				  .max_value = s->cfg.kernel_max_value,
				  .pin_path = s->cfg.pin_path,
				  .next_fd = s->policy ? kc_pol_next_fd(s->policy) : -1};

	if (s->cfg.xdp_mode == KC_XDP_OFF)
		return 0;
	if (!s->cfg.udp) {
		kc_errf(err, errlen, "xdp-mode %s serves memcached UDP: it needs udp: true",
			kc_xdp_mode_name(s->cfg.xdp_mode));
		return -EINVAL;
	}
	s->cache = kc_cache_start(&o, err, errlen);
	if (!s->cache)
		return -EINVAL;
	s->env.on_get = note_get;
	s->env.on_get_ctx = s->cache;
	return 0;
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct kc_server *s = arg;
	char err[512];

	(void)sig, (void)what;
	if (s->audit && kc_audit_reload(s->audit, err, sizeof(err)))
		log_error("SIGHUP: audit policy refused, the previous one stays active: %s", err);
	if (s->policy && kc_pol_reload(s->policy, NULL, err, sizeof(err)))
		log_error("SIGHUP: network policy refused, the previous one stays enforced: %s",
			  err);
}

/* The network policy's deny events, into the audit stream (kc_pol_report_fn). */
static void policy_report(void *ctx, const char *kind, const char *members, size_t len)
{
	if (kc_audit_emit(ctx, kind, members, len))
		log_warn("network policy: out of memory for a %s audit record", kind);
}

/* Starts the syscall audit when --audit-policy is set (user/audit/audit.h). */
static int start_audit(struct kc_server *s, char *err, size_t errlen)
{
	const struct kc_config *c = &s->cfg;
	struct kc_audit_opts o = {.policy = c->audit_policy,
				  .key = c->audit_key,
				  .log = c->audit_log,
				  .log_max_size = c->audit_log_max_size,
				  .log_max_files = c->audit_log_max_files,
				  .redis_stream = c->audit_redis_stream,
				  .redis_maxlen = c->audit_redis_maxlen,
				  .ring_size = c->audit_ring_size,
				  .queue_bytes = c->audit_queue_size,
				  .checkpoint_s = c->audit_checkpoint,
				  .pin_path = c->pin_path};

	if (!c->audit_policy[0])
		return 0;
	s->audit = kc_audit_start(&o, err, errlen);
	if (!s->audit)
		return -EINVAL;
	kc_audit_register_admin(s->audit, s->admin);
	kc_pol_set_report(s->policy, policy_report, s->audit);
	return 0;
}

static int start_tiers(struct kc_server *s, char *err, size_t errlen)
{
	struct event_base **bases = calloc(s->nworkers, sizeof(*bases));
	int rc;

	if (!bases) {
		kc_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < s->nworkers; i++)
		bases[i] = s->workers[i].base;
	rc = kc_tiers_start(s->tiers, s->base, bases, s->nworkers, s->admin, err, errlen);
	free(bases);
	return rc;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct kc_server *s = arg;

	(void)what;
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopbreak(s->base);
}

struct kc_server *kc_server_start(const struct kc_config *cfg, char *err, size_t errlen)
{
	struct kc_server *s;
	unsigned port;
	sigset_t all, old;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (evthread_use_pthreads()) {
		kc_errf(err, errlen, "libevent: no pthreads support");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		kc_errf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	s->nworkers = cfg->threads ? cfg->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
	fit_fd_limit(&s->cfg, s->nworkers);
	s->mem = kc_mem_new(cfg->memory, cfg->item_max);
	if (!s->mem) {
		kc_errf(err, errlen, "memory tier of %llu bytes: %s",
			(unsigned long long)cfg->memory, strerror(errno));
		goto fail;
	}
	s->env = (struct kc_proto_env){.mem = s->mem,
				       .item_max = cfg->item_max,
				       .started = kc_mem_now(),
				       .curr_conns = &s->curr_conns,
				       .total_conns = &s->total_conns,
				       .threads = s->nworkers,
				       .memory_limit = cfg->memory,
				       .udp_writes = cfg->udp_writes,
				       .allow_flush = cfg->allow_flush,
				       .udp_out_max = kc_udp_out_max(cfg->udp_max_reply)};
	s->tiers = kc_tiers_new(cfg, s->mem, err, errlen);
	if (!s->tiers && err[0])
		goto fail;
	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	s->threads = calloc(s->nworkers, sizeof(*s->threads));
	s->base = event_base_new();
	if (!s->workers || !s->threads || !s->base) {
		kc_errf(err, errlen, "out of memory");
		goto fail;
	}
	/* 0: a quarter of the memory tier, and room for 4 maximal requests at least */
	s->conn_budget.limit = cfg->conn_budget;
	if (!s->conn_budget.limit) {
		uint64_t floor = 4 * (cfg->item_max + KC_LINE_MAX);

		s->conn_budget.limit = cfg->memory / 4 > floor ? cfg->memory / 4 : floor;
	}
	log_info("conn-buffer-budget: %llu bytes", (unsigned long long)s->conn_budget.limit);
	port = cfg->port;
	for (unsigned i = 0; i < s->nworkers; i++) {
		s->workers[i].tcp_fd = s->workers[i].udp_fd = -1;
		if (worker_init(s, &s->workers[i], i, &port, err, errlen))
			goto fail;
	}
	if (start_net_policy(s, port, err, errlen) || start_kernel_tier(s, port, err, errlen))
		goto fail;
	kc_metrics_add_collector(mem_collector, s);
	kc_metrics_add_collector(kc_cache_collect, s->cache);
	kc_metrics_add_collector(kc_pol_collect, s->policy);
	s->http = kc_http_start(s->base, cfg->http, err, errlen);
	if (!s->http)
		goto fail;
	kc_http_set_max_conns(s->http, s->cfg.http_max_conns);
	kc_http_set_header_timeout(s->http, (int)s->cfg.http_header_timeout);
	s->admin = kc_admin_start(s->base, cfg->admin_socket, err, errlen);
	if (!s->admin)
		goto fail;
	kc_admin_register(s->admin, "status", "version, addresses, workers, XDP mode", admin_status,
			  NULL, s);
	kc_admin_register(s->admin, "hot", "kernel-resident keys by hits: hot [N] (0 = all)",
			  kc_cache_admin_hot, NULL, s->cache);
	kc_admin_register(s->admin, "stats", "tier counters and request totals", admin_stats, NULL,
			  s);
	kc_admin_register(s->admin, "flush",
			  "erase every value, lasting: flush (this node) | flush --all-nodes", NULL,
			  admin_flush, s);
	kc_admin_register(s->admin, "policy", "network policy: list | add|del RULE | reload [FILE]",
			  kc_pol_admin, NULL, s->policy);
	if (start_audit(s, err, errlen))
		goto fail;
	if (s->tiers && start_tiers(s, err, errlen))
		goto fail;
	if (s->audit || s->policy) {
		s->sighup = evsignal_new(s->base, SIGHUP, on_sighup, s);
		if (!s->sighup || evsignal_add(s->sighup, NULL)) {
			kc_errf(err, errlen, "cannot install the SIGHUP handler");
			goto fail;
		}
	}
	s->sigs[0] = evsignal_new(s->base, SIGTERM, on_signal, s);
	s->sigs[1] = evsignal_new(s->base, SIGINT, on_signal, s);
	if (!s->sigs[0] || !s->sigs[1] || evsignal_add(s->sigs[0], NULL) ||
	    evsignal_add(s->sigs[1], NULL)) {
		kc_errf(err, errlen, "cannot install signal handlers");
		goto fail;
	}
	/* Workers block every signal: the main thread's loop handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (; s->started < s->nworkers; s->started++) {
		int rc = pthread_create(&s->threads[s->started], NULL, worker_main,
					&s->workers[s->started]);
		if (rc) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			kc_errf(err, errlen, "start worker: %s", strerror(rc));
			goto fail;
		}
		if (cfg->pin_workers)
			pin_worker(s->threads[s->started], s->started);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	s->port = port;
	log_info("kcached: memcached on %s:%u (tcp%s), http on %s, %u workers, memory %llu bytes",
		 cfg->listen, port, cfg->udp ? "+udp" : "", cfg->http, s->nworkers,
		 (unsigned long long)cfg->memory);
	return s;
fail:
	kc_server_free(s);
	return NULL;
}

int kc_server_run(struct kc_server *s)
{
	event_base_dispatch(s->base);
	return 0;
}

void kc_server_free(struct kc_server *s)
{
	if (!s)
		return;
	/* The kernel stops answering first: nothing it serves can go stale while we wind down. */
	kc_cache_stop(s->cache);
	for (unsigned i = 0; i < s->started; i++)
		event_base_loopbreak(s->workers[i].base);
	for (unsigned i = 0; s->threads && i < s->started; i++)
		pthread_join(s->threads[i], NULL);
	/* The lower tiers answer what they still owe onto the workers' loops, which run once more
	 * (on this thread: the workers are gone) so that every waiting request is freed. */
	kc_tiers_stop(s->tiers);
	for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
		for (int k = 0; s->workers[i].base && k < 4; k++)
			event_base_loop(s->workers[i].base, EVLOOP_NONBLOCK);
		kc_conn_close_all(&s->workers[i]);
		worker_fini(&s->workers[i]);
	}
	kc_tiers_free(s->tiers);
	kc_cache_free(s->cache); /* its timer lives on s->base */
	kc_admin_stop(s->admin);
	if (s->http)
		kc_http_stop(s->http);
	kc_pol_stop(s->policy);	 /* after the cache left its slot, before the audit stream */
	kc_audit_stop(s->audit); /* after HTTP: its metrics collector reads it */
	if (s->sighup)
		event_free(s->sighup);
	for (int i = 0; i < 2; i++)
		if (s->sigs[i])
			event_free(s->sigs[i]);
	if (s->base)
		event_base_free(s->base);
	kc_mem_free(s->mem);
	free(s->workers);
	free(s->threads);
	free(s);
}
