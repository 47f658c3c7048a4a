/* yaml.c: the YAML reader. See yaml.h. */
#include "core/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

int kc_yaml_verrf(char *err, size_t errlen, const char *name, size_t line, const char *fmt,
		  va_list ap)
{
	char msg[400];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	kc_errf(err, errlen, "%s:%zu: %s", name, line, msg);
	return -EINVAL;
}

int kc_yaml_errf(char *err, size_t errlen, const char *name, size_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kc_yaml_verrf(err, errlen, name, line, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *file_kind(mode_t m)
{
	return S_ISDIR(m)    ? "a directory"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
	       : S_ISSOCK(m) ? "a socket"
			     : "not a regular file";
}

int kc_yaml_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
		      size_t errlen)
{
	struct stat st;
	size_t got = 0;
	int fd, rc = 0;

	*buf = NULL;
	*len = 0;
	/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		rc = -errno;
		kc_errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = kc_yaml_errf(err, errlen, path, 1, "expected a regular file, got %s",
				  file_kind(st.st_mode));
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		kc_errf(err, errlen, "%s:1: expected at most %zu bytes, got %lld", path, max,
			(long long)st.st_size);
		rc = -EFBIG;
		goto out;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		kc_errf(err, errlen, "%s: out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	/* Up to the size fstat saw: a file that grows meanwhile is read as it was. */
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			kc_errf(err, errlen, "%s: %s", path, strerror(errno));
			free(*buf);
			*buf = NULL;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	(*buf)[got] = 0;
	*len = got;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int kc_yaml_open(struct kc_yaml *y, const char *name, const char *buf, size_t len, char *err,
		 size_t errlen)
{
	memset(y, 0, sizeof(*y));
	y->name = name;
	y->err = err;
	y->errlen = errlen;
	if (!yaml_parser_initialize(&y->parser)) {
		kc_errf(err, errlen, "%s: cannot initialise the YAML parser", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&y->parser, (const unsigned char *)buf, len);
	return 0;
}

int kc_yaml_next(struct kc_yaml *y)
{
	if (y->have_ev)
		yaml_event_delete(&y->ev);
	y->have_ev = false;
	if (!yaml_parser_parse(&y->parser, &y->ev))
		return kc_yaml_errf(y->err, y->errlen, y->name, y->parser.problem_mark.line + 1,
				    "%s", y->parser.problem ? y->parser.problem : "malformed YAML");
	y->have_ev = true;
	if (y->ev.type == YAML_ALIAS_EVENT)
		return kc_yaml_errf(y->err, y->errlen, y->name, kc_yaml_line(y),
				    "aliases are not supported");
	return 0;
}

const char *kc_yaml_kind(yaml_event_type_t t)
{
	return t == YAML_SEQUENCE_START_EVENT  ? "a list"
	       : t == YAML_MAPPING_START_EVENT ? "a mapping"
					       : "a scalar";
}

void kc_yaml_close(struct kc_yaml *y)
{
	if (y->have_ev)
		yaml_event_delete(&y->ev);
	y->have_ev = false;
	yaml_parser_delete(&y->parser); /* a zeroed parser is safe to delete */
}

int kc_yaml_load(yaml_document_t *doc, const char *name, const char *buf, size_t len, char *err,
		 size_t errlen)
{
	yaml_parser_t parser;
	int rc = 0;

	if (!yaml_parser_initialize(&parser)) {
		kc_errf(err, errlen, "%s: cannot initialise the YAML parser", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, doc))
		rc = kc_yaml_errf(err, errlen, name, parser.problem_mark.line + 1, "%s",
				  parser.problem ? parser.problem : "malformed YAML");
	yaml_parser_delete(&parser);
	return rc;
}
