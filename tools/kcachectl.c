/* kcachectl: the operator's CLI. Most commands are sent to kcached over its admin socket
 * (see user/core/admin.h for the protocol); a few run locally, without a daemon (offline table).
 * Exit status: 0 ok, 1 the command failed (ERR), 2 usage or connection error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/admin.h"
#include "client/admin_client.h"
#include "audit/audit_chain.h"
#include "client/warm.h"
#include "netpol/policy_load.h"

#define DEFAULT_SOCKET "/run/kcache/admin.sock"
#define DEFAULT_PIN    "/sys/fs/bpf/kcache"

/* Commands that run here, without the daemon: {first word, second word, handler}. */
struct offline {
	const char *word1, *word2;
	int (*run)(const char *path, int argc, char **argv); /* argv[0] = word1 */
};
/* audit verify --key KEYFILE FILE...: checks audit chains offline (user/audit/audit_verify.c). */
static int audit_verify_cmd(const char *path, int argc, char **argv)
{
	char out[512], err[512];
	int rc;

	(void)path;
	if (argc < 5 || strcmp(argv[2], "--key")) {
		fprintf(stderr, "usage: kcachectl audit verify --key KEYFILE FILE...\n");
		return 2;
	}
	rc = kc_audit_verify(argv[3], argv + 4, argc - 4, out, sizeof(out), err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "kcachectl: %s\n", err);
		return 2;
	}
	fputs(out, stdout);
	return rc;
}

/* warm FILE: preloads the keys listed in FILE into the upper tiers (user/client/warm.h). */
static int warm_cmd(const char *path, int argc, char **argv)
{
	char err[512];
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: kcachectl warm FILE (one key per line)\n");
		return 2;
	}
	rc = kc_warm(path, argv[1], stdout, stderr, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "kcachectl: %s\n", err);
	return rc < 0 ? 2 : rc;
}

/* policy uninstall [--pin-path PATH] (also: uninstall): removes a persisting network policy
 * and every pin, with no kcached running (user/netpol/policy_load.c). */
static int uninstall_cmd(const char *path, int argc, char **argv)
{
	const char *pin = DEFAULT_PIN;
	char out[8192], err[512];
	int i = strcmp(argv[0], "uninstall") ? 2 : 1, rc;

	(void)path;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--pin-path") && i + 1 < argc) {
			pin = argv[++i];
		} else if (!strncmp(argv[i], "--pin-path=", 11)) {
			pin = argv[i] + 11;
		} else {
			fprintf(stderr, "usage: kcachectl policy uninstall [--pin-path PATH]  "
					"(default " DEFAULT_PIN ")\n");
			return 2;
		}
	}
	rc = kc_pol_uninstall(pin, out, sizeof(out), err, sizeof(err));
	fputs(out, stdout);
	if (rc) {
		fprintf(stderr, "kcachectl: %s\n", err);
		return 1;
	}
	return 0;
}

static const struct offline offline[] = {
    {"audit", "verify", audit_verify_cmd},
    {"warm", NULL, warm_cmd},
    {"policy", "uninstall", uninstall_cmd},
    {"uninstall", NULL, uninstall_cmd},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kcachectl [--admin-socket PATH] COMMAND [ARG]...\n"
		   "Commands are answered by kcached; 'kcachectl help' lists what this daemon "
		   "offers.\nThe admin socket defaults to " DEFAULT_SOCKET ".\n"
		   "Without a daemon: audit verify --key KEYFILE FILE..., policy uninstall "
		   "[--pin-path PATH].\n");
}

static int run_remote(const char *path, int argc, char **argv)
{
	char buf[65536], err[512];
	int status = -1;
	ssize_t n;
	int fd = kc_admin_request(path, argc, argv, err, sizeof(err));

	if (fd < 0) {
		fprintf(stderr, "kcachectl: %s\n", err);
		return 2;
	}
	/* The first line is OK or ERR <reason>; everything after it is the body. */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *p = buf;
		size_t m = (size_t)n;

		if (status < 0) {
			if (m >= 3 && !memcmp(p, "OK\n", 3)) {
				status = 0;
				p += 3;
				m -= 3;
			} else if (m >= 4 && !memcmp(p, "ERR ", 4)) {
				status = 1;
				fputs("kcachectl: ", stderr);
				fwrite(p + 4, 1, m - 4, stderr);
				continue;
			} else {
				fprintf(stderr, "kcachectl: unexpected reply from %s\n", path);
				close(fd);
				return 2;
			}
		}
		fwrite(p, 1, m, status ? stderr : stdout);
		fflush(stdout);
	}
	close(fd);
	if (status < 0) {
		fprintf(stderr, "kcachectl: kcached closed the connection without a reply\n");
		return 2;
	}
	return status;
}

int main(int argc, char **argv)
{
	const char *path =
	    getenv("KCACHE_ADMIN_SOCKET") ? getenv("KCACHE_ADMIN_SOCKET") : DEFAULT_SOCKET;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--admin-socket") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strncmp(argv[i], "--admin-socket=", 15)) {
			path = argv[i] + 15;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kcachectl: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	for (const struct offline *o = offline; o->word1; o++)
		if (!strcmp(argv[i], o->word1) &&
		    (!o->word2 || (i + 1 < argc && !strcmp(argv[i + 1], o->word2))))
			return o->run(path, argc - i, argv + i);
	return run_remote(path, argc - i, argv + i);
}
