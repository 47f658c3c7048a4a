/* admin_client.c: the client side of the admin socket (see admin_client.h). */
#include "client/admin_client.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/admin.h"
#include "core/log.h"

int kc_admin_request(const char *path, int argc, char **argv, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char line[KC_ADMIN_LINE + 2];
	size_t len = 0;
	int fd;

	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]);

		if (strpbrk(argv[i], " \t\n") || len + l + 2 > KC_ADMIN_LINE) {
			kc_errf(err, errlen, "argument '%s' has a space or the line is too long",
				argv[i]);
			return -1;
		}
		memcpy(line + len, argv[i], l);
		len += l;
		line[len++] = i + 1 < argc ? ' ' : '\n';
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		kc_errf(err, errlen, "admin socket path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		kc_errf(err, errlen, "cannot reach kcached at %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (write(fd, line, len) != (ssize_t)len) {
		kc_errf(err, errlen, "write to %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int kc_admin_call(const char *path, int argc, char **argv, struct kc_buf *out, char *err,
		  size_t errlen)
{
	struct kc_buf reply = {0};
	char buf[16384];
	ssize_t n;
	int fd = kc_admin_request(path, argc, argv, err, errlen), rc = -1;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (kc_buf_append(&reply, buf, (size_t)n)) {
			kc_errf(err, errlen, "out of memory reading the reply");
			goto out;
		}
	if (reply.len >= 3 && !memcmp(reply.data, "OK\n", 3)) {
		rc = 0;
		kc_buf_append(out, reply.data + 3, reply.len - 3);
	} else if (reply.len >= 4 && !memcmp(reply.data, "ERR ", 4)) {
		rc = 1;
		kc_buf_append(out, reply.data + 4, reply.len - 4);
	} else {
		kc_errf(err, errlen, "unexpected reply from %s", path);
	}
out:
	close(fd);
	kc_buf_free(&reply);
	return rc;
}
