/* admin_client.h: the client side of the admin socket (protocol in admin.h), for kcachectl. */
#ifndef KC_ADMIN_CLIENT_H
#define KC_ADMIN_CLIENT_H

#include <stddef.h>

#include "core/buf.h"

/* Connects to path and sends argv as one request line. Returns the connected fd, or -1 with a
 * message in err (an argument with a space, a line too long, no daemon listening). */
int kc_admin_request(const char *path, int argc, char **argv, char *err, size_t errlen);

/* One whole request: 0 with the body in out (OK), 1 with the reason in out (ERR), or -1 with
 * a message in err (no daemon, a malformed reply). */
int kc_admin_call(const char *path, int argc, char **argv, struct kc_buf *out, char *err,
		  size_t errlen);

#endif
