/* buf.h: a growable byte buffer with an optional hard limit. Not thread-safe: one owner. */
#ifndef KC_BUF_H
#define KC_BUF_H

#include <stddef.h>
#include <stdint.h>

struct kc_buf {
	char *data;
	size_t len; /* bytes in use */
	size_t cap; /* bytes allocated */
	size_t off; /* bytes already consumed from the front (readers advance it) */
};

/* Ensures room for n more bytes after len. Returns 0 or -ENOMEM. */
int kc_buf_reserve(struct kc_buf *b, size_t n);
/* Appends n bytes. Returns 0 or -ENOMEM. */
int kc_buf_append(struct kc_buf *b, const void *p, size_t n);
int kc_buf_puts(struct kc_buf *b, const char *s);
/* printf-style append. Returns 0, or -ENOMEM. */
int kc_buf_printf(struct kc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Marks n bytes from the front consumed; when all are consumed, resets to empty. */
void kc_buf_consume(struct kc_buf *b, size_t n);
/* Moves unconsumed bytes to the front so that off = 0. */
void kc_buf_compact(struct kc_buf *b);
/* Unconsumed bytes. */
static inline size_t kc_buf_avail(const struct kc_buf *b)
{
	return b->len - b->off;
}
/* First unconsumed byte; NULL for a buffer that never held anything (NULL + 0 is undefined). */
static inline char *kc_buf_head(const struct kc_buf *b)
{
	return b->data ? b->data + b->off : NULL;
}
/* Frees the storage when it grew beyond keep bytes (to return memory after a large request). */
void kc_buf_shrink(struct kc_buf *b, size_t keep);
void kc_buf_free(struct kc_buf *b);

/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the end. */
char *kc_u64toa(uint64_t v, char *p);

#endif
