/* audit_floor.c: what a syscall hook costs an open/close loop, measured inside one process.
 * Built and run by bench/audit-floor.sh; not part of kcached.
 *
 *   audit_floor [-o OBJ] [-r ROUNDS] [-c CHUNKS] [-n N] [-S MS] [-K PID]... FILE
 *               NAME=PROG[+PROG]...
 *
 * Each round attaches every variant in turn (rotating the order), waits MS milliseconds for the
 * RCU grace periods of the last attach/detach, warms up, then times CHUNKS chunks of N
 * open(FILE)/close pairs, and detaches. Variants alternate every few milliseconds, so drift on
 * a shared machine hits them alike. Printed per variant: p10, p25 and median of all chunks (ns
 * per pair), each against "none" (no hook), and the median of the per-round ratios.
 * PROG is a program of OBJ, or id:ID@TP, an already loaded program (kcached's) attached to
 * raw tracepoint TP (TP empty for tp_btf programs). -K PID: SIGKILL the process that loaded
 * those programs once we hold them, so that only our attachments run (it cannot clean up, so
 * the programs stay enabled with its policy in their maps). */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_VARIANTS 32
#define MAX_PROGS    4

struct prog {
	int fd;
	char tp[64];
	struct bpf_program *p; /* a program of OBJ: attached through libbpf */
};

struct variant {
	char name[64];
	struct prog prog[MAX_PROGS];
	int n;
	double *chunk; /* ns per pair, every chunk */
	int nchunk;
	double *round; /* median chunk of each round */
};

/* The syscalls kcached's dispatch table marks (user/audit/audit_policy.c), for the table programs.
 */
static const int audited[] = {SYS_execve,   SYS_execveat,    SYS_openat,       SYS_openat2,
			      SYS_connect,  SYS_bind,	     SYS_ptrace,       SYS_setuid,
			      SYS_setgid,   SYS_setreuid,    SYS_setresuid,    SYS_setresgid,
			      SYS_capset,   SYS_init_module, SYS_finit_module, SYS_delete_module,
			      SYS_mount,    SYS_umount2,     SYS_unlinkat,     SYS_renameat2,
			      SYS_fchmodat, SYS_fchownat,    SYS_bpf,	       SYS_memfd_create,
			      SYS_open,	    SYS_creat,	     SYS_unlink,       SYS_rmdir,
			      SYS_rename,   SYS_chmod,	     SYS_chown,	       SYS_lchown};

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double quantile(const double *v, int n, double q)
{
	return v[(int)(q * (n - 1))];
}

static int open_obj(const char *path, struct bpf_object **obj)
{
	struct bpf_map *m;

	*obj = bpf_object__open_file(path, NULL);
	if (!*obj) {
		fprintf(stderr, "audit_floor: open %s failed\n", path);
		return -1;
	}
	m = bpf_object__find_map_by_name(*obj, ".rodata");
	if (m) {
		size_t sz;
		unsigned char *t = (unsigned char *)bpf_map__initial_value(m, &sz);

		for (size_t i = 0; t && i < sizeof(audited) / sizeof(audited[0]); i++)
			if (audited[i] >= 0 && (size_t)audited[i] < sz)
				t[audited[i]] = 1;
	}
	if (bpf_object__load(*obj)) {
		fprintf(stderr, "audit_floor: load %s failed\n", path);
		return -1;
	}
	return 0;
}

static int parse_prog(struct bpf_object *obj, char *tok, struct prog *p)
{
	char *at = strchr(tok, '@');

	if (!strncmp(tok, "id:", 3)) {
		if (!at)
			return -1;
		*at = 0;
		p->fd = bpf_prog_get_fd_by_id((unsigned)atoi(tok + 3));
		snprintf(p->tp, sizeof(p->tp), "%s", at + 1);
		if (p->fd < 0)
			perror(tok);
		return p->fd < 0 ? -1 : 0;
	}
	p->p = obj ? bpf_object__find_program_by_name(obj, tok) : NULL;
	if (!p->p) {
		fprintf(stderr, "audit_floor: no program %s\n", tok);
		return -1;
	}
	p->fd = bpf_program__fd(p->p);
	return 0;
}

/* One round of variant v: attach, settle, warm up, time the chunks, detach. */
static int run(struct variant *v, const char *file, int chunks, int n, int settle_ms, double *tmp)
{
	struct bpf_link *links[MAX_PROGS] = {0};
	int fds[MAX_PROGS], rc = 0;

	for (int j = 0; j < v->n; j++) {
		struct prog *p = &v->prog[j];

		fds[j] = -1;
		if (p->p)
			links[j] = bpf_program__attach(p->p);
		else
			fds[j] = bpf_raw_tracepoint_open(p->tp[0] ? p->tp : NULL, p->fd);
		if (p->p ? !links[j] : fds[j] < 0) {
			fprintf(stderr, "audit_floor: attach %s failed\n", v->name);
			return -1;
		}
	}
	if (settle_ms)
		usleep((useconds_t)settle_ms * 1000);
	for (int i = 0; i < 3000; i++)
		close(open(file, O_RDONLY));
	for (int c = 0; c < chunks && !rc; c++) {
		double t0 = now_ns();

		for (int i = 0; i < n; i++) {
			int fd = open(file, O_RDONLY);

			if (fd < 0) {
				perror(file);
				rc = -1;
				break;
			}
			close(fd);
		}
		tmp[c] = (now_ns() - t0) / n;
		v->chunk[v->nchunk++] = tmp[c];
	}
	for (int j = 0; j < v->n; j++) {
		if (links[j])
			bpf_link__destroy(links[j]);
		if (fds[j] >= 0)
			close(fds[j]);
	}
	return rc;
}

int main(int argc, char **argv)
{
	int rounds = 60, chunks = 5, n = 1000, settle_ms = 0, nkill = 0, nv = 1, o;
	int killpid[8];
	struct variant v[MAX_VARIANTS];
	struct bpf_object *obj = NULL;
	const char *file;
	double *tmp;

	memset(v, 0, sizeof(v));
	while ((o = getopt(argc, argv, "o:r:c:n:S:K:")) != -1) {
		if (o == 'o' && open_obj(optarg, &obj))
			return 1;
		if (o == 'r')
			rounds = atoi(optarg);
		if (o == 'c')
			chunks = atoi(optarg);
		if (o == 'n')
			n = atoi(optarg);
		if (o == 'S')
			settle_ms = atoi(optarg);
		if (o == 'K' && nkill < 8)
			killpid[nkill++] = atoi(optarg);
	}
	if (optind >= argc || rounds < 1 || chunks < 1 || n < 1) {
		fprintf(stderr,
			"usage: audit_floor [-o OBJ] [-r ROUNDS] [-c CHUNKS] [-n N] [-S MS] "
			"[-K PID]... FILE NAME=PROG[+PROG]...\n");
		return 2;
	}
	file = argv[optind++];
	snprintf(v[0].name, sizeof(v[0].name), "none");
	for (; optind < argc && nv < MAX_VARIANTS; optind++, nv++) {
		char *s = strdup(argv[optind]), *eq = s ? strchr(s, '=') : NULL, *tok, *sv;

		if (!eq) {
			fprintf(stderr, "audit_floor: expected NAME=PROG[+PROG], got %s\n",
				argv[optind]);
			return 2;
		}
		*eq = 0;
		snprintf(v[nv].name, sizeof(v[nv].name), "%s", s);
		for (tok = strtok_r(eq + 1, "+", &sv); tok && v[nv].n < MAX_PROGS;
		     tok = strtok_r(NULL, "+", &sv))
			if (parse_prog(obj, tok, &v[nv].prog[v[nv].n++]))
				return 1;
		free(s);
	}
	for (int k = 0; k < nkill; k++) {
		kill(killpid[k], SIGKILL);
		while (!kill(killpid[k], 0))
			usleep(10000);
	}
	if (nkill)
		sleep(1);
	tmp = calloc((size_t)chunks, sizeof(double));
	for (int i = 0; i < nv; i++) {
		v[i].chunk = calloc((size_t)rounds * chunks, sizeof(double));
		v[i].round = calloc((size_t)rounds, sizeof(double));
		if (!v[i].chunk || !v[i].round || !tmp)
			return 1;
	}
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < nv; k++) {
			struct variant *x = &v[(k + r) % nv];

			if (run(x, file, chunks, n, settle_ms, tmp))
				return 1;
			qsort(tmp, (size_t)chunks, sizeof(double), cmp);
			x->round[r] = tmp[chunks / 2];
		}
	for (int i = 0; i < nv; i++)
		qsort(v[i].chunk, (size_t)v[i].nchunk, sizeof(double), cmp);
	printf("%d rounds x %d chunks x %d open/close pairs per variant; ns per pair, and against "
	       "none\n",
	       rounds, chunks, n);
	printf("%-24s %7s %7s %7s   %7s %7s %7s   %s\n", "variant", "p10", "p25", "median", "p10",
	       "p25", "median", "per-round median");
	for (int i = 0; i < nv; i++) {
		const double *c = v[i].chunk, *b = v[0].chunk;
		int nc = v[i].nchunk, nb = v[0].nchunk;
		double ratio[rounds];

		for (int r = 0; r < rounds; r++)
			ratio[r] = v[i].round[r] / v[0].round[r] - 1;
		qsort(ratio, (size_t)rounds, sizeof(double), cmp);
		printf("%-24s %7.1f %7.1f %7.1f   %+6.1f%% %+6.1f%% %+6.1f%%   %+6.1f%%\n",
		       v[i].name, quantile(c, nc, .1), quantile(c, nc, .25), quantile(c, nc, .5),
		       100 * (quantile(c, nc, .1) / quantile(b, nb, .1) - 1),
		       100 * (quantile(c, nc, .25) / quantile(b, nb, .25) - 1),
		       100 * (quantile(c, nc, .5) / quantile(b, nb, .5) - 1),
		       100 * quantile(ratio, rounds, .5));
	}
	return 0;
}
