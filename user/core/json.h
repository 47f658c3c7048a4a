/* json.h: JSON text helpers shared by the jobs that write JSON (audit records, network policy
 * reports). Only what more than one job needs lives here; a record's layout stays with its job. */
#ifndef KC_JSON_H
#define KC_JSON_H

#include <stddef.h>

#include "core/buf.h"

/* Appends s as a JSON string (quotes included), escaping as JSON requires and replacing bytes
 * that are not UTF-8 by \u00XX. At most max bytes of s are read (s need not be NUL-terminated
 * within them). Returns 0 or -ENOMEM (out unchanged past its old length's reservation). No
 * lock: out has one owner. */
int kc_json_str(struct kc_buf *out, const char *s, size_t max);

#endif
