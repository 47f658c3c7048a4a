/* buf.c: growable byte buffer (see buf.h). */
#include "core/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kc_buf_reserve(struct kc_buf *b, size_t n)
{
	size_t need = b->len + n, cap = b->cap ? b->cap : 256;
	char *p;

	if (need < b->len)
		return -ENOMEM;
	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int kc_buf_append(struct kc_buf *b, const void *p, size_t n)
{
	if (kc_buf_reserve(b, n))
		return -ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int kc_buf_puts(struct kc_buf *b, const char *s)
{
	return kc_buf_append(b, s, strlen(s));
}

int kc_buf_printf(struct kc_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->data ? b->data + b->len : NULL, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= b->cap - b->len) {
		if (kc_buf_reserve(b, (size_t)n + 1))
			return -ENOMEM;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return 0;
}

void kc_buf_consume(struct kc_buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void kc_buf_compact(struct kc_buf *b)
{
	if (b->off == 0)
		return;
	memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

void kc_buf_shrink(struct kc_buf *b, size_t keep)
{
	if (b->cap > keep && b->len == b->off) {
		kc_buf_free(b);
	}
}

void kc_buf_free(struct kc_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = b->off = 0;
}

char *kc_u64toa(uint64_t v, char *p)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}
