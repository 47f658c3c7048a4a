/* server.h: kcached's runtime: the memory tier, worker threads serving memcached over TCP and
 * UDP, and the main thread (signals, HTTP, timers).
 *
 * Threads: each worker owns an event_base with its own SO_REUSEPORT TCP listener and UDP
 * socket, so the kernel spreads clients over the workers and no request crosses threads.
 * The main thread only handles signals, the HTTP listener and periodic work.
 */
#ifndef KC_SERVER_H
#define KC_SERVER_H

#include <stddef.h>

#include "core/config.h"

struct kc_server;

/* Creates the tier, binds every socket and starts the workers. Returns NULL with a message in
 * err ("bind 127.0.0.1:11211/tcp: Address already in use"). */
struct kc_server *kc_server_start(const struct kc_config *cfg, char *err, size_t errlen);

/* Runs the main thread's loop until SIGTERM or SIGINT. Returns 0. */
int kc_server_run(struct kc_server *s);

/* Stops the workers, closes every socket and frees everything. NULL is allowed. */
void kc_server_free(struct kc_server *s);

#endif
