/* log.h: the one logger of kcache. Levels, printf-checked formats, libbpf routed through it.
 * Thread-safe: each message is formatted into a local buffer and written with one write(2). */
#ifndef KC_LOG_H
#define KC_LOG_H

#include <stddef.h>

enum kc_log_level { KC_LOG_ERROR, KC_LOG_WARN, KC_LOG_INFO, KC_LOG_DEBUG };

/* Sets the most verbose level that is printed (default KC_LOG_INFO). */
void kc_log_set_level(enum kc_log_level level);
enum kc_log_level kc_log_get_level(void);

/* Parses "error", "warn", "info" or "debug". Returns 0, or -EINVAL for anything else. */
int kc_log_parse_level(const char *s, enum kc_log_level *out);

/* Writes one line to stderr: "<time> <level> <message>\n". */
void kc_log(enum kc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats a message into a caller's buffer: how functions here report why they failed
 * (STYLE: errors written into the caller's buffer, turned into output by the caller). */
void kc_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Routes libbpf's messages through kc_log one level down (libbpf warnings become info). */
void kc_log_hook_libbpf(void);

#define log_error(...) kc_log(KC_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  kc_log(KC_LOG_WARN, __VA_ARGS__)
#define log_info(...)  kc_log(KC_LOG_INFO, __VA_ARGS__)
#define log_debug(...) kc_log(KC_LOG_DEBUG, __VA_ARGS__)

#endif
