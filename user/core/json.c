/* json.c: JSON text helpers. See json.h. */
#include "core/json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int kc_json_str(struct kc_buf *out, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + strnlen(s, max);

	if (kc_buf_reserve(out, (size_t)(end - p) * 6 + 2))
		return -ENOMEM;
	out->data[out->len++] = '"';
	while (p < end) {
		unsigned char c = *p;
		int n = c < 0x80	     ? 1
			: (c & 0xe0) == 0xc0 ? 2
			: (c & 0xf0) == 0xe0 ? 3
			: (c & 0xf8) == 0xf0 ? 4
					     : 0;
		bool valid = n > 0 && p + n <= end;

		for (int i = 1; valid && i < n; i++)
			valid = (p[i] & 0xc0) == 0x80;
		if (n == 2 && c < 0xc2)
			valid = false; /* overlong */
		if (!valid || c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
			if (c == '"' || c == '\\') {
				out->data[out->len++] = '\\';
				out->data[out->len++] = (char)c;
			} else if (c == '\n') {
				memcpy(out->data + out->len, "\\n", 2);
				out->len += 2;
			} else {
				out->len += (size_t)sprintf(out->data + out->len, "\\u%04x", c);
			}
			p++;
			continue;
		}
		memcpy(out->data + out->len, p, (size_t)n);
		out->len += (size_t)n;
		p += n;
	}
	out->data[out->len++] = '"';
	return 0;
}
