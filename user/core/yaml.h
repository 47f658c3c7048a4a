/* yaml.h: the one YAML reader, over libyaml, for the config file (core/config.c), the network
 * policy (netpol/policy_file.c) and the audit policy (audit/audit_policy.c). It owns loading a
 * file safely, the parser's life, and the one error path: every message is
 * "name:line: what was expected, got 'x'" (name is the file, or what the text came from).
 * Readers keep only their grammar. Not thread-safe per object; no global state.
 *
 * Two ways to walk, one parser: an event stream (kc_yaml_open/next/close), for readers that
 * must not hold a large file's tree (100,000 network policy rules), and a document
 * (kc_yaml_load), for a small tree read in any order (the audit policy). Aliases are refused
 * by the event stream ("aliases are not supported"). */
#ifndef KC_YAML_H
#define KC_YAML_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

/* Reads path whole into *buf (malloc'd, NUL-terminated; *len bytes before the NUL). Opens with
 * O_NONBLOCK and checks with fstat before reading, so a FIFO or a device never blocks it: path
 * must be a regular file of at most max bytes. Returns 0; -errno of open ("path: <strerror>");
 * -EINVAL for anything but a regular file ("path:1: expected a regular file, got a directory");
 * -EFBIG above max ("path:1: expected at most N bytes, got M"); -ENOMEM; -EIO on a read
 * error. On error *buf is NULL. */
int kc_yaml_read_file(const char *path, size_t max, char **buf, size_t *len, char *err,
		      size_t errlen);

/* Writes "name:line: <fmt...>" into err and returns -EINVAL: every reader's error path. */
int kc_yaml_errf(char *err, size_t errlen, const char *name, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int kc_yaml_verrf(char *err, size_t errlen, const char *name, size_t line, const char *fmt,
		  va_list ap) __attribute__((format(printf, 5, 0)));

/* An event stream over a caller's buffer (which must outlive it). */
struct kc_yaml {
	yaml_parser_t parser;
	yaml_event_t ev; /* the current event, after kc_yaml_next returned 0 */
	bool have_ev;
	const char *name; /* for messages */
	char *err;
	size_t errlen;
};

/* Starts a stream over len bytes at buf. Returns 0, or -ENOMEM ("name: cannot initialise the
 * YAML parser"). Call kc_yaml_close after either. */
int kc_yaml_open(struct kc_yaml *y, const char *name, const char *buf, size_t len, char *err,
		 size_t errlen);
/* Frees the previous event and parses the next into y->ev. Returns 0, or -EINVAL with
 * "name:line: <libyaml's problem>" or "name:line: aliases are not supported" in err. */
int kc_yaml_next(struct kc_yaml *y);
/* The 1-based line where the current event starts. */
static inline size_t kc_yaml_line(const struct kc_yaml *y)
{
	return y->ev.start_mark.line + 1;
}
/* "a list", "a mapping" or "a scalar": what an event starts, for "got ..." in messages. */
const char *kc_yaml_kind(yaml_event_type_t t);
/* Frees the current event and the parser. Safe on a stream whose open failed. */
void kc_yaml_close(struct kc_yaml *y);

/* Loads the first document of len bytes at buf into doc. Returns 0 (free doc with
 * yaml_document_delete), -ENOMEM ("name: cannot initialise the YAML parser"), or -EINVAL
 * ("name:line: <libyaml's problem>"). */
int kc_yaml_load(yaml_document_t *doc, const char *name, const char *buf, size_t len, char *err,
		 size_t errlen);
/* The 1-based line of a node, 0 for none. */
static inline size_t kc_yaml_node_line(const yaml_node_t *n)
{
	return n ? n->start_mark.line + 1 : 0;
}

#endif
