/* admin.h: the admin socket that kcachectl talks to.
 *
 * A unix stream socket (mode 0600, parent folder created 0755) served on the main thread's
 * event loop. Protocol, one request per connection:
 *   client:  one line "<command> [arg]...\n" (at most KC_ADMIN_LINE bytes, args split on spaces)
 *   daemon:  "OK\n" or "ERR <message>\n", then the body (text), then it closes the connection.
 * Streaming commands (audit tail) take the connection over instead and write until the client
 * goes away.
 *
 * Modules register their commands at start-up (main thread, before kc_server_run). Handlers
 * run on the main thread and must not block.
 */
#ifndef KC_ADMIN_H
#define KC_ADMIN_H

#include <event2/event.h>
#include <stddef.h>

#include "core/buf.h"

#define KC_ADMIN_LINE 4096
#define KC_ADMIN_ARGS 32

struct kc_admin;

/* A command. Appends its body to out and returns 0, or returns -1 after writing a one-line
 * reason (no newline) to out: the client then sees "ERR <reason>". argv[0] is the command
 * name as registered (for two-word commands such as "policy add", argv[0] = "policy",
 * argv[1] = "add"). */
typedef int (*kc_admin_fn)(void *ctx, int argc, char **argv, struct kc_buf *out);

/* A streaming command. On success it takes ownership of fd (non-blocking), writes "OK\n"
 * (kc_admin_ok) before anything else, and before it lets another thread write to fd, and
 * closes fd when done; it returns 0. On failure it has written nothing and returns -1 with a
 * reason in err: the daemon then sends "ERR <reason>" and closes fd. argv is valid during the
 * call only. */
typedef int (*kc_admin_stream_fn)(void *ctx, int fd, int argc, char **argv, char *err,
				  size_t errlen);

/* Binds path (replacing a stale socket nobody answers on) and serves it on base. The folder is
 * made 0755 when missing; an existing one must be owned by root or the effective uid and not
 * writable by group or others. Anything at path that is not a socket is left alone and
 * refused. Returns NULL with a message in err ("admin socket /run/kcache/admin.sock: in use by
 * a running kcached", "...: the path exists and is not a socket (a regular file): refusing to
 * remove it ...", "...: its folder /run/kcache (mode 0777) is writable by group or others"). */
struct kc_admin *kc_admin_start(struct event_base *base, const char *path, char *err,
				size_t errlen);

/* Registers a command by its first word (e.g. "hot", "policy", "audit"); help is one line
 * shown by "help". Returns 0, -EEXIST or -ENOMEM. Exactly one of fn and stream is non-NULL. */
int kc_admin_register(struct kc_admin *a, const char *name, const char *help, kc_admin_fn fn,
		      kc_admin_stream_fn stream, void *ctx);

/* Writes the "OK\n" a streaming command owes its client first. Returns 0 or -errno. */
int kc_admin_ok(int fd);

/* Closes the socket, removes its path and drops open admin connections. NULL is allowed. */
void kc_admin_stop(struct kc_admin *a);

#endif
