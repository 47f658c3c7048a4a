/* log.c: the logger (see log.h). */
#include "core/log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

static volatile enum kc_log_level max_level = KC_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void kc_log_set_level(enum kc_log_level level)
{
	max_level = level;
}

enum kc_log_level kc_log_get_level(void)
{
	return max_level;
}

int kc_log_parse_level(const char *s, enum kc_log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum kc_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void vlog(enum kc_log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	uint64_t now;
	time_t sec;
	struct tm tm;
	size_t n;

	if (level > max_level)
		return;
	now = kc_wall_ns();
	sec = (time_t)(now / 1000000000ULL);
	gmtime_r(&sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03uZ %-5s ",
			      (unsigned)(now / 1000000 % 1000), level_names[level]);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		return;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == '\n') /* libbpf ends its messages with one */
		n--;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void kc_log(enum kc_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void kc_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum kc_log_level l = level == LIBBPF_WARN ? KC_LOG_INFO : KC_LOG_DEBUG;

	vlog(l, fmt, ap);
	return 0;
}

void kc_log_hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
