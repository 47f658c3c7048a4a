/* fuzz_redis_url.c: libFuzzer target for the Redis URL parser (user/tiers/redis/redis_url.c): any
 * input is refused with a "redis URL: …" message or parsed, copied and printed, never a crash or a
 * leak; the printed form never shows the password. kc_redis_url_parse_key (the audit stream's URL)
 * likewise. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tiers/redis/redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *key, err[256] = "", out[600];
	struct kc_redis_url u, c;

	if (size > KC_REDIS_URL_MAX + 16 || !(s = malloc(size + 1)))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (kc_redis_url_parse(s, &u, err, sizeof(err)) == 0) {
		kc_redis_url_print(&u, out, sizeof(out));
		if (u.pass && strlen(out) < sizeof(out) - 1 && !strstr(out, ":***@"))
			__builtin_trap(); /* a password is always redacted */
		if (kc_redis_url_dup(&c, &u) == 0)
			kc_redis_url_free(&c);
		kc_redis_url_free(&u);
	} else if (strncmp(err, "redis URL: ", 11) != 0) {
		__builtin_trap(); /* every refusal says what was wrong */
	}
	/* The audit stream's form (a key after the db) refuses or parses the same way. */
	if (kc_redis_url_parse_key(s, &u, &key, err, sizeof(err)) == 0) {
		if (!key)
			__builtin_trap();
		free(key);
		kc_redis_url_free(&u);
	} else if (strncmp(err, "redis URL: ", 11) != 0 || key || u.pass) {
		__builtin_trap();
	}
	free(s);
	return 0;
}
