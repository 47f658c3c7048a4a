/* audit_helper.c: the real child processes of the audit tests. Each subcommand makes the
 * syscalls a detection is about and prints "ret=<n> errno=<name>" for the last one.
 * Built by tests/integration/audit/audit_lib.bash with the host compiler. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(long rc)
{
	printf("ret=%ld errno=%s\n", rc, rc < 0 ? strerrorname_np(errno) : "0");
	fflush(stdout);
	return 0;
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
	if (!strcmp(cmd, "sleep") && argc > 2) {
		sleep((unsigned)atoi(argv[2]));
		return 0;
	}
	fprintf(stderr, "usage: audit_helper open P | openloop N P | setuid U | ptrace | module | "
			"bpfload | memfdexec | connect A P | asuser U CMD...\n");
	return 2;
}
