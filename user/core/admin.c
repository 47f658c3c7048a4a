/* admin.c: the admin socket (see admin.h). */
#include "core/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

#define MAX_CMDS	   32
#define ADMIN_TIMEOUT_SECS 5 /* a client must send its line within this */

struct cmd {
	char name[32];
	char help[128];
	kc_admin_fn fn;
	kc_admin_stream_fn stream;
	void *ctx;
};

struct admin_conn {
	struct kc_admin *a;
	int fd;
	struct event *ev;
	char line[KC_ADMIN_LINE + 1];
	size_t len;
	struct admin_conn *prev, *next;
};

struct kc_admin {
	struct event_base *base;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	struct event *ev;
	struct cmd cmds[MAX_CMDS];
	int ncmds;
	struct admin_conn *conns;
};

static void conn_free(struct admin_conn *c, bool close_fd)
{
	struct kc_admin *a = c->a;

	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	event_free(c->ev);
	if (close_fd)
		close(c->fd);
	free(c);
}

/* Writes all of p to a blocking-enough admin socket (replies are small; the client reads). */
static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			fd_set set;
			struct timeval tv = {ADMIN_TIMEOUT_SECS, 0};

			FD_ZERO(&set);
			FD_SET(fd, &set);
			if (select(fd + 1, NULL, &set, NULL, &tv) <= 0)
				return;
			continue;
		}
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

int kc_admin_ok(int fd)
{
	send_all(fd, "OK\n", 3);
	return 0;
}

static int cmd_help(struct kc_admin *a, struct kc_buf *out)
{
	for (int i = 0; i < a->ncmds; i++)
		kc_buf_printf(out, "%-10s %s\n", a->cmds[i].name, a->cmds[i].help);
	return 0;
}

static void dispatch(struct admin_conn *c)
{
	struct kc_admin *a = c->a;
	char line[KC_ADMIN_LINE + 1]; /* argv points here: it outlives c for streaming commands */
	char *argv[KC_ADMIN_ARGS + 1], *save = NULL, *tok;
	int argc = 0;
	struct kc_buf out = {0};
	int rc = -1;

	memcpy(line, c->line, sizeof(line));
	for (tok = strtok_r(line, " \t\r", &save); tok && argc < KC_ADMIN_ARGS;
	     tok = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (argc == 0) {
		kc_buf_puts(&out, "empty command (try: help)");
	} else if (!strcmp(argv[0], "help")) {
		rc = cmd_help(a, &out);
	} else {
		int i;

		for (i = 0; i < a->ncmds && strcmp(a->cmds[i].name, argv[0]); i++)
			;
		if (i == a->ncmds) {
			kc_buf_printf(&out, "unknown command '%.64s' (try: help)", argv[0]);
		} else if (a->cmds[i].stream) {
			char err[256] = "";
			int fd = c->fd;

			conn_free(c, false);
			if (a->cmds[i].stream(a->cmds[i].ctx, fd, argc, argv, err, sizeof(err))) {
				dprintf(fd, "ERR %s\n", err);
				close(fd);
			}
			return;
		} else {
			rc = a->cmds[i].fn(a->cmds[i].ctx, argc, argv, &out);
		}
	}
	if (rc == 0) {
		send_all(c->fd, "OK\n", 3);
		send_all(c->fd, out.data ? out.data : "", out.len);
	} else {
		send_all(c->fd, "ERR ", 4);
		send_all(c->fd, out.data ? out.data : "failed", out.data ? out.len : 6);
		send_all(c->fd, "\n", 1);
	}
	kc_buf_free(&out);
	conn_free(c, true);
}

static void on_conn(evutil_socket_t fd, short what, void *arg)
{
	struct admin_conn *c = arg;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		conn_free(c, true);
		return;
	}
	n = read(fd, c->line + c->len, KC_ADMIN_LINE - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c, true);
		return;
	}
	c->len += (size_t)n;
	char *nl = memchr(c->line, '\n', c->len);

	if (!nl) {
		if (c->len == KC_ADMIN_LINE) {
			send_all(fd, "ERR request line too long\n", 26);
			conn_free(c, true);
		}
		return;
	}
	*nl = 0;
	dispatch(c);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct kc_admin *a = arg;
	struct timeval tv = {ADMIN_TIMEOUT_SECS, 0};
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct admin_conn *c;

	(void)what;
	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->a = a;
	c->fd = fd;
	c->ev = event_new(a->base, fd, EV_READ | EV_PERSIST, on_conn, c);
	if (!c->ev || event_add(c->ev, &tv)) {
		if (c->ev)
			event_free(c->ev);
		close(fd);
		free(c);
		return;
	}
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
}

/* Creates the parent folder of path (one level) if it is missing. */
/* The socket's folder: made 0755 if missing; otherwise it must be a folder owned by root or us
 * and writable by nobody else, or whoever may write it could swap the socket for theirs
 * (kcachectl would then talk to an impostor) or make us remove a file of their choosing.
 * Returns 0 or -errno with what is wrong in err. */
static int check_parent(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	if (mkdir(dir, 0755) == 0) {
		/* ours: the umask must not have left it open */
		if (chmod(dir, 0755)) {
			kc_errf(err, errlen, "admin socket %s: chmod its folder %s: %s", path, dir,
				strerror(errno));
			return -errno;
		}
		return 0;
	}
	if (errno != EEXIST) {
		int e = errno;

		kc_errf(err, errlen, "admin socket %s: cannot create its folder %s: %s", path, dir,
			strerror(e));
		return -e;
	}
	if (stat(dir, &st)) {
		int e = errno;

		kc_errf(err, errlen, "admin socket %s: folder %s: %s", path, dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		kc_errf(err, errlen, "admin socket %s: %s is not a folder", path, dir);
		return -ENOTDIR;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		kc_errf(err, errlen,
			"admin socket %s: its folder %s is owned by uid %u, not root or kcached's "
			"uid %u: refusing it (chown it, or choose another --admin-socket)",
			path, dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		kc_errf(
		    err, errlen,
		    "admin socket %s: its folder %s (mode %04o) is writable by group or others: "
		    "refusing it (chmod go-w it, or choose another --admin-socket)",
		    path, dir, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

struct kc_admin *kc_admin_start(struct event_base *base, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct kc_admin *a;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		kc_errf(err, errlen, "admin socket %s: path longer than %zu bytes", path,
			sizeof(sun.sun_path) - 1);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if (check_parent(path, err, errlen))
		return NULL;
	/* Only a socket is ours to replace: anything else there is someone's file. */
	struct stat st;

	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		kc_errf(err, errlen,
			"admin socket %s: the path exists and is not a socket (%s): refusing to "
			"remove it (remove it yourself, or choose another --admin-socket)",
			path,
			S_ISREG(st.st_mode)   ? "a regular file"
			: S_ISDIR(st.st_mode) ? "a folder"
			: S_ISLNK(st.st_mode) ? "a symbolic link"
					      : "a special file");
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		kc_errf(err, errlen, "admin socket: %s", strerror(errno));
		return NULL;
	}
	/* A socket file left by a dead daemon answers nobody: replace it. A live one: refuse. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(probe);
		close(fd);
		kc_errf(err, errlen, "admin socket %s: in use by a running kcached", path);
		return NULL;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	mode_t old = umask(0077);

	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc || listen(fd, 16)) {
		kc_errf(err, errlen, "admin socket %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		goto nomem;
	a->base = base;
	a->fd = fd;
	strcpy(a->path, path);
	a->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, a);
	if (!a->ev || event_add(a->ev, NULL))
		goto nomem;
	log_info("admin: listening on %s", path);
	return a;
nomem:
	if (a && a->ev)
		event_free(a->ev);
	free(a);
	close(fd);
	unlink(path);
	kc_errf(err, errlen, "admin socket: out of memory");
	return NULL;
}

int kc_admin_register(struct kc_admin *a, const char *name, const char *help, kc_admin_fn fn,
		      kc_admin_stream_fn stream, void *ctx)
{
	struct cmd *c;

	if (!!fn == !!stream || strlen(name) >= sizeof(c->name))
		return -EINVAL;
	for (int i = 0; i < a->ncmds; i++)
		if (!strcmp(a->cmds[i].name, name))
			return -EEXIST;
	if (a->ncmds == MAX_CMDS)
		return -ENOMEM;
	c = &a->cmds[a->ncmds++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->help, sizeof(c->help), "%s", help);
	c->fn = fn;
	c->stream = stream;
	c->ctx = ctx;
	return 0;
}

void kc_admin_stop(struct kc_admin *a)
{
	if (!a)
		return;
	for (struct admin_conn *c = a->conns, *next; c; c = next) {
		next = c->next;
		conn_free(c, true);
	}
	event_free(a->ev);
	close(a->fd);
	unlink(a->path);
	free(a);
}
