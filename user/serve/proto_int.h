/* proto_int.h: what proto_text.c (classic commands) and proto_meta.c (meta commands) share:
 * the command being executed and the toolkit in proto_cmd.c, and the meta entry point
 * kc_proto_meta (proto_meta.c, called by proto_text.c's dispatcher only).
 * Private to the protocol; the public contract is proto_text.h. */
#ifndef KC_PROTO_INT_H
#define KC_PROTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/log.h"
#include "serve/proto_text.h"

#define KC_MAX_TOKENS 24 /* every command but the gets has far fewer */

/* A token: bytes of the line between spaces. */
struct kc_tok {
	const char *p;
	size_t n;
};

/* One command being executed. */
struct kc_cmd {
	struct kc_proto_conn *conn;
	struct kc_buf *out;
	size_t out_mark; /* out->len before this command, to drop a partial reply */
	enum kc_op op;
	enum kc_res res;
	bool noreply;
	bool suspend; /* needs keys from the lower tiers: drop the reply, run again later */
	bool wrote;   /* changed keys the lower tiers must be told about */
};

/* --- proto_cmd.c ---------------------------------------------------------------------- */

/* Reads the next space-separated token from *cur (advanced). False at the end of the line. */
bool kc_tok_next(const char **cur, const char *end, struct kc_tok *t);
/* Splits a line into at most max tokens; returns how many there were (may exceed max). */
size_t kc_tokenize(const char *line, size_t n, struct kc_tok *t, size_t max);
bool kc_tok_is(const struct kc_tok *t, const char *s);
/* Strict decimal parsers: no sign (but i32's '-'), no spaces, no overflow. */
bool kc_tok_u64(const struct kc_tok *t, uint64_t *out);
bool kc_tok_u32(const struct kc_tok *t, uint32_t *out);
bool kc_tok_i32(const struct kc_tok *t, int32_t *out);

/* Lower tiers (no-ops without c->pend). kc_cmd_need: called once a command found no key in
 * memory (add: before it stores, so only when it has to), so that hits never pay for it: true
 * (cmd->suspend set) when the command must stop and run again after a fetch. kc_cmd_below: after a
 * memory miss on a read, the item fetched for this command, or NULL (and maybe cmd->suspend).
 * kc_cmd_wrote: the command changed key. */
bool kc_cmd_need(struct kc_cmd *cmd, const char *key, size_t nkey);
struct kc_item *kc_cmd_below(struct kc_cmd *cmd, const char *key, size_t nkey);
void kc_cmd_wrote(struct kc_cmd *cmd, const char *key, size_t nkey);

/* Appends s unless the command is noreply. */
void kc_reply(struct kc_cmd *cmd, const char *s);
/* Replaces whatever the command appended with an error line, sets cmd->res. Like memcached, a
 * classic command that said noreply stays silent even about its errors; the meta commands never
 * set cmd->noreply (their q hides nominal replies only), so their errors are always sent. */
void kc_reply_error(struct kc_cmd *cmd, enum kc_res res, const char *s);
/* Counts memcached's stats for n keys a get-like command looked up (hits of them found):
 * get_cmds, get_hits, get_misses, or, when touch, touch_cmds only. Call once per command, on
 * its final run (not when it suspended). */
void kc_cmd_count_get(struct kc_cmd *cmd, bool touch, unsigned n, unsigned hits);
enum kc_res kc_mem_res(enum kc_mem_result r);
/* Over UDP: refuses the datagram (proto_text.h): out keeps only the error line (nothing when
 * quiet), nothing after this command runs (c->close), stats->udp_refused[why] is counted. */
void kc_udp_refuse(struct kc_cmd *cmd, enum kc_udp_refusal why, bool quiet);
/* True if the command's reply may grow by `more` bytes: over UDP while out stays within
 * env->udp_out_max (else the datagram is refused for size), over TCP while this command's
 * reply stays within KC_GET_REPLY_MAX (else memcached's out-of-memory error). False once the
 * error reply is written. */
bool kc_cmd_room(struct kc_cmd *cmd, size_t more);

/* Reads a value block of vlen bytes + CRLF from data (avail bytes) into a new item for key.
 * Returns the bytes consumed (the block, or what is there of an oversized one, the rest being
 * swallowed), or -1 if the block has not fully arrived. *item is NULL when an error reply was
 * written instead. */
ssize_t kc_cmd_value(struct kc_cmd *cmd, const struct kc_tok *key, uint32_t flags, int64_t exptime,
		     int32_t vlen, const char *data, size_t avail, struct kc_item **item);

/* --- proto_meta.c --------------------------------------------------------------------- */

/* Executes mg ms md mn ma; same return convention as kc_cmd_value (0 when no data block). */
ssize_t kc_proto_meta(struct kc_cmd *cmd, struct kc_tok *t, size_t nt, const char *data,
		      size_t avail);

#endif
