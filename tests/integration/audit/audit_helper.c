/* audit_helper.c: the real child processes of the audit tests. Each subcommand makes the
 * syscalls a detection is about and prints "ret=<n> errno=<name>" for the last one.
 * Built by tests/integration/audit/audit_lib.bash with the host compiler. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(long rc)
{
	printf("ret=%ld errno=%s\n", rc, rc < 0 ? strerrorname_np(errno) : "0");
	fflush(stdout);
	return 0;
}

/* IORING_OP_OPENAT of path through a ring of one entry, with raw syscalls (no liburing). */
static long uring_open(const char *path)
{
	struct io_uring_params p;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	unsigned *sq_tail, *sq_array, *cq_head;
	char *sq, *cq;
	int fd;

	memset(&p, 0, sizeof(p));
	fd = (int)syscall(SYS_io_uring_setup, 1, &p);
	if (fd < 0)
		return -1;
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
	sqe = mmap(NULL, p.sq_entries * sizeof(*sqe), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqe == MAP_FAILED)
		return -1;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_OPENAT;
	sqe->fd = AT_FDCWD;
	sqe->addr = (unsigned long)path;
	sqe->open_flags = O_RDONLY;
	sq_array = (unsigned *)(sq + p.sq_off.array);
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_array[0] = 0;
	__atomic_store_n(sq_tail, *sq_tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -1;
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cqe = (struct io_uring_cqe *)(cq + p.cq_off.cqes) +
	      (*cq_head & *(unsigned *)(cq + p.cq_off.ring_mask));
	printf("cqe_res=%d\n", cqe->res);
	return cqe->res;
}

static char *thread_exec_file;

static void *thread_exec(void *arg)
{
	char *args[] = {"kctest-thread-exec", NULL}, *env[] = {NULL};

	(void)arg;
	execve(thread_exec_file, args, env);
	return NULL;
}

static const char *fifo_path;

static void *fifo_open(void *arg)
{
	(void)arg;
	open(fifo_path, O_RDONLY); /* blocks until a writer opens the FIFO */
	pause();
	return NULL;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "asuser") && argc > 3) { /* asuser UID CMD...: drop to uid, run CMD */
		uid_t u = (uid_t)atoi(argv[2]);

		if (setgid(u) || setuid(u))
			return 3;
		return main(argc - 2, argv + 2);
	}
	if (!strcmp(cmd, "open") && argc > 2)
		return report(open(argv[2], O_RDONLY));
#ifdef SYS_open
	if (!strcmp(cmd, "legacy-open") && argc > 2) /* open(2) itself, not glibc's openat */
		return report(syscall(SYS_open, argv[2], O_RDONLY));
#endif
	if (!strcmp(cmd, "openloop") && argc > 3) { /* openloop N PATH */
		long n = atol(argv[2]);

		for (long i = 0; i < n; i++) {
			int fd = open(argv[3], O_RDONLY);

			if (fd >= 0)
				close(fd);
		}
		return report(0);
	}
	if (!strcmp(cmd, "setuid") && argc > 2)
		return report(setuid((uid_t)atoi(argv[2])));
	if (!strcmp(cmd, "ptrace")) { /* attaches to a child of its own */
		pid_t c = fork();
		long rc;

		if (c == 0) {
			pause();
			_exit(0);
		}
		rc = ptrace(PTRACE_ATTACH, c, NULL, NULL);
		printf("target=%d\n", c);
		report(rc);
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
		return 0;
	}
	if (!strcmp(cmd, "module")) {
		report(syscall(SYS_init_module, NULL, 0, "kctest=1"));
		report(syscall(SYS_finit_module, -1, "kctest=2", 0));
		return report(syscall(SYS_delete_module, "kctest", 0));
	}
	if (!strcmp(cmd, "bpfload")) {
		struct bpf_insn prog[] = {
		    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
		    {.code = BPF_JMP | BPF_EXIT},
		};
		union bpf_attr attr;

		memset(&attr, 0, sizeof(attr));
		attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
		attr.insns = (unsigned long)prog;
		attr.insn_cnt = 2;
		attr.license = (unsigned long)"GPL";
		strcpy(attr.prog_name, "kctest_prog");
		return report(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)));
	}
	if (!strcmp(cmd, "memfdexec")) { /* copies /bin/true into a memfd and runs it */
		int m = memfd_create("kctest", MFD_CLOEXEC), f = open("/bin/true", O_RDONLY);
		char buf[65536], *args[] = {"kctest-memfd", "fileless", NULL}, *env[] = {NULL};
		ssize_t n;

		while ((n = read(f, buf, sizeof(buf))) > 0)
			if (write(m, buf, (size_t)n) != n)
				return 4;
		fexecve(m, args, env);
		return report(-1);
	}
	if (!strcmp(cmd, "connect") && argc > 3) { /* connect ADDR PORT */
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
		int s = socket(AF_INET, SOCK_STREAM, 0);

		inet_pton(AF_INET, argv[2], &sa.sin_addr);
		return report(connect(s, (struct sockaddr *)&sa, sizeof(sa)));
	}
#if defined(__x86_64__)
	if (!strcmp(cmd, "ia32open") && argc > 2) { /* open(2) through the ia32 entry (int 0x80) */
		char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
		long ret;

		if (p == MAP_FAILED)
			return 5;
		snprintf(p, 4096, "%s", argv[2]);
		__asm__ volatile("int $0x80"
				 : "=a"(ret)
				 : "a"(5), "b"(p), "c"(0), "d"(0)
				 : "memory");
		printf("ret=%ld\n", ret);
		return 0;
	}
#endif
	if (!strcmp(cmd, "uring-open") && argc > 2) /* uring-open PATH: IORING_OP_OPENAT */
		return report(uring_open(argv[2]));
	if (!strcmp(cmd, "handle-open") && argc > 3) { /* handle-open MOUNTDIR PATH */
		struct {
			struct file_handle h;
			unsigned char b[128];
		} fh = {.h.handle_bytes = 128};
		int mnt_id, mfd = open(argv[2], O_RDONLY | O_DIRECTORY);

		if (mfd < 0 || name_to_handle_at(AT_FDCWD, argv[3], &fh.h, &mnt_id, 0))
			return 6;
		printf("handle_type=%d handle_bytes=%u mount_fd=%d\n", fh.h.handle_type,
		       fh.h.handle_bytes, mfd);
		return report(open_by_handle_at(mfd, &fh.h, O_RDONLY));
	}
	if (!strcmp(cmd, "fifoblock") && argc > 3) { /* fifoblock N FIFO: N threads in open() */
		long n = atol(argv[2]);
		pthread_attr_t at;
		pthread_t th;

		fifo_path = argv[3];
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 64 << 10);
		for (long i = 0; i < n; i++)
			if (pthread_create(&th, &at, fifo_open, NULL))
				return 7;
		printf("started=%ld\n", n);
		fflush(stdout);
		pause();
		return 0;
	}
	if (!strcmp(cmd, "execveat-empty") && argc > 3) {
		/* execveat-empty FILE OTHER: a child execs OTHER (its filename is in the audit's
		 * per-CPU scratch), then this process runs FILE by fd with AT_EMPTY_PATH and a
		 * filename ("") on a page that is not faulted in yet: the audit cannot read it. */
		char *cargs[] = {argv[3], NULL}, *args[] = {"kctest-empty", NULL}, *env[] = {NULL};
		char *page =
		    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		pid_t c = fork();
		int fd;

		if (c == 0) {
			execve(argv[3], cargs, env);
			_exit(127);
		}
		waitpid(c, NULL, 0);
		fd = open(argv[2], O_RDONLY);
		printf("fd=%d\n", fd);
		fflush(stdout);
		syscall(SYS_execveat, fd, page, args, env, AT_EMPTY_PATH);
		return report(-1);
	}
	if ((!strcmp(cmd, "tmpfile-exec") || !strcmp(cmd, "unlinked-exec")) && argc > 2) {
		/* tmpfile-exec DIR: /bin/true copied into an O_TMPFILE file of DIR (no name at
		 * all), unlinked-exec DIR: into DIR/kctest-unlinked, then unlinked; run by fd. */
		char *args[] = {"kctest-nameless", NULL}, *env[] = {NULL}, buf[65536], path[4096];
		int w, r, f = open("/bin/true", O_RDONLY);
		ssize_t n;

		if (!strcmp(cmd, "tmpfile-exec")) {
			w = open(argv[2], O_TMPFILE | O_RDWR, 0700);
		} else {
			snprintf(path, sizeof(path), "%s/kctest-unlinked", argv[2]);
			w = open(path, O_CREAT | O_RDWR | O_TRUNC, 0700);
		}
		if (w < 0 || f < 0)
			return 8;
		while ((n = read(f, buf, sizeof(buf))) > 0)
			if (write(w, buf, (size_t)n) != n)
				return 4;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", w);
		r = open(path, O_RDONLY); /* a read-only fd: exec refuses one open for writing */
		close(w);
		if (r < 0)
			return 9;
		if (!strcmp(cmd, "unlinked-exec")) {
			snprintf(path, sizeof(path), "%s/kctest-unlinked", argv[2]);
			unlink(path);
		}
		syscall(SYS_execveat, r, "", args, env, AT_EMPTY_PATH);
		return report(-1);
	}
	if (!strcmp(cmd, "thread-exec") && argc > 2) { /* a thread, not the leader, execs FILE */
		pthread_t th;

		thread_exec_file = argv[2];
		if (pthread_create(&th, NULL, thread_exec, NULL))
			return 7;
		pthread_join(th, NULL);
		return report(-1);
	}
	if (!strcmp(cmd, "setregid") && argc > 3)
		return report(setregid((gid_t)atoi(argv[2]), (gid_t)atoi(argv[3])));
	if (!strcmp(cmd, "setgroups") && argc > 2) { /* setgroups G...: up to 16 */
		gid_t g[16];
		int n = 0;

		for (int i = 2; i < argc && n < 16; i++)
			g[n++] = (gid_t)atoi(argv[i]);
		return report(setgroups((size_t)n, g));
	}
	if (!strcmp(cmd, "vmread")) { /* process_vm_readv of a child of its own */
		static char secret[64] = "kctest-secret";
		char buf[64];
		struct iovec l = {buf, sizeof(buf)}, r = {secret, sizeof(secret)};
		pid_t c = fork();
		long rc;

		if (c == 0) {
			pause();
			_exit(0);
		}
		rc = process_vm_readv(c, &l, 1, &r, 1, 0);
		printf("target=%d\n", c);
		report(rc);
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
		return 0;
	}
	if (!strcmp(cmd, "sleep") && argc > 2) {
		sleep((unsigned)atoi(argv[2]));
		return 0;
	}
	fprintf(stderr, "usage: audit_helper open P | openloop N P | setuid U | ptrace | module | "
			"bpfload | memfdexec | connect A P | asuser U CMD...\n");
	return 2;
}
