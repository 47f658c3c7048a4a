/* warm.c: kcachectl warm (see warm.h). */
#include "client/warm.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <kcache/limits.h>

#include "client/admin_client.h"
#include "core/buf.h"
#include "core/log.h"

#define BATCH 128 /* requests in flight */

/* Finds "memcached HOST:PORT" in the status text; 0.0.0.0 and :: become loopback. */
static int memcached_addr(const char *status, char *host, size_t nhost, char *port, size_t nport)
{
	const char *p = strstr(status, "\nmemcached ");
	const char *colon, *end;

	if (!p)
		return -1;
	p += 11;
	end = strchr(p, ' ');
	if (!end)
		return -1;
	colon = end;
	while (colon > p && *colon != ':')
		colon--;
	if (colon == p || (size_t)(colon - p) >= nhost || (size_t)(end - colon) > nport)
		return -1;
	snprintf(host, nhost, "%.*s", (int)(colon - p), p);
	snprintf(port, nport, "%.*s", (int)(end - colon - 1), colon + 1);
	if (!strcmp(host, "0.0.0.0"))
		snprintf(host, nhost, "127.0.0.1");
	else if (!strcmp(host, "::"))
		snprintf(host, nhost, "::1");
	return 0;
}

static int connect_to(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct addrinfo *ai;
	int fd, rc = getaddrinfo(host, port, &hints, &ai);

	if (rc) {
		kc_errf(err, errlen, "memcached address %s:%s: %s", host, port, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		kc_errf(err, errlen, "connect %s:%s: %s", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static bool valid_key(const char *k, size_t n)
{
	if (n == 0 || n > KC_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] <= ' ' || k[i] == 0x7f)
			return false;
	return true;
}

/* Reads reply lines for `want` requests; counts HD (found) and EN (missing). */
static int read_replies(int fd, struct kc_buf *in, size_t want, size_t *found, size_t *missing,
			char *err, size_t errlen)
{
	while (want) {
		char *nl =
		    kc_buf_avail(in) ? memchr(kc_buf_head(in), '\n', kc_buf_avail(in)) : NULL;

		if (nl) {
			size_t n = (size_t)(nl - kc_buf_head(in)) + 1;

			if (n >= 2 && !memcmp(kc_buf_head(in), "HD", 2))
				(*found)++;
			else if (n >= 2 && !memcmp(kc_buf_head(in), "EN", 2))
				(*missing)++;
			else {
				kc_errf(err, errlen, "kcached answered: %.*s", (int)(n - 1),
					kc_buf_head(in));
				return -1;
			}
			kc_buf_consume(in, n);
			want--;
			continue;
		}
		kc_buf_compact(in);
		if (kc_buf_reserve(in, 4096))
			return -1;
		ssize_t r = read(fd, in->data + in->len, in->cap - in->len);

		if (r <= 0) {
			kc_errf(err, errlen, "memcached connection lost");
			return -1;
		}
		in->len += (size_t)r;
	}
	return 0;
}

static void bar(FILE *f, size_t done, size_t total, size_t found)
{
	int width = 40, fill = total ? (int)((double)done / (double)total * width) : width;

	if (!f)
		return;
	fprintf(f, "\r[%.*s%*s] %3d%% %zu/%zu keys, %zu found", fill,
		"########################################", width - fill, "",
		total ? (int)(done * 100 / total) : 100, done, total, found);
	if (done == total)
		fputc('\n', f);
	fflush(f);
}

int kc_warm(const char *admin_path, const char *file, FILE *out, FILE *progress, char *err,
	    size_t errlen)
{
	char *argv[] = {"status"}, host[128], port[16], *line = NULL;
	struct kc_buf status = {0}, req = {0}, in = {0};
	size_t cap = 0, total = 0, done = 0, found = 0, missing = 0, invalid = 0, batch = 0;
	ssize_t n;
	int fd = -1, rc = -1;
	FILE *f = fopen(file, "r");

	if (!f) {
		kc_errf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) >= 0)
		if (n > 1 && line[0] != '#')
			total++;
	rewind(f);
	int r = kc_admin_call(admin_path, 1, argv, &status, err, errlen);

	if (r || kc_buf_puts(&status, "") ||
	    memcached_addr(status.data, host, sizeof(host), port, sizeof(port))) {
		if (r == 1 || !r)
			kc_errf(err, errlen, "cannot tell where kcached serves memcached");
		goto out;
	}
	fd = connect_to(host, port, err, errlen);
	if (fd < 0)
		goto out;
	bar(progress, 0, total, 0);
	while ((n = getline(&line, &cap, f)) >= 0) {
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (!n || line[0] == '#')
			continue;
		if (!valid_key(line, (size_t)n)) {
			invalid++;
			done++;
			continue;
		}
		kc_buf_printf(&req, "mg %s\r\n", line);
		if (++batch < BATCH)
			continue;
		if (write(fd, req.data, req.len) != (ssize_t)req.len ||
		    read_replies(fd, &in, batch, &found, &missing, err, errlen))
			goto out;
		done += batch;
		batch = 0;
		req.len = 0;
		bar(progress, done, total, found);
	}
	if (batch && (write(fd, req.data, req.len) != (ssize_t)req.len ||
		      read_replies(fd, &in, batch, &found, &missing, err, errlen)))
		goto out;
	done += batch;
	bar(progress, done, total, found);
	fprintf(out, "warm: %zu keys, %zu found, %zu missing, %zu invalid lines\n", total, found,
		missing, invalid);
	rc = missing || invalid ? 1 : 0;
out:
	if (fd >= 0)
		close(fd);
	fclose(f);
	free(line);
	kc_buf_free(&status);
	kc_buf_free(&req);
	kc_buf_free(&in);
	return rc;
}
