/* pend.h: what one memcached connection (or one UDP datagram) waits for from the lower tiers.
 *
 * The protocol stays a pure function of its input (proto_text.h). When a command needs a key
 * that is not in the memory tier but may be below, it records the key here and stops without
 * consuming its line; the connection fetches every recorded key (kc_pend_run), which fills the
 * memory tier, and runs the line again: this time the command finds the keys, or finds them
 * resolved as absent. A command that changed keys records them too; the connection holds its
 * reply until kc_pend_run has made the changes durable, and turns the reply into SERVER_ERROR
 * if that failed. */
#ifndef KC_PEND_H
#define KC_PEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "mem/mem.h"

struct kc_tiers;
struct kc_pend;

enum kc_wait { KC_WAIT_NONE, KC_WAIT_FETCH, KC_WAIT_WRITE };

struct kc_pend *kc_pend_new(struct kc_tiers *t, unsigned worker);
/* Frees p, or, while a kc_pend_run is under way, lets it free itself when done (without
 * calling its callback). NULL is allowed. */
void kc_pend_free(struct kc_pend *p);

/* --- for the protocol --- */
/* For a command that needs key's current value: true if the key is not in memory, was not
 * fetched for this command yet, and may be below; the key is then recorded for fetching. */
bool kc_pend_need(struct kc_pend *p, struct kc_mem *m, const char *key, size_t nkey);
/* After a memory miss on a read: the item fetched for this command (a new reference, or NULL
 * if it was found nowhere); or NULL with *suspend set when the key is recorded for fetching. */
struct kc_item *kc_pend_lookup(struct kc_pend *p, const char *key, size_t nkey, bool *suspend);
/* Records that the command changed key (or, with flush, ran flush_all up to `when`: a
 * KC_FLUSH_LOCAL flush of the lower tiers, this node's view until it restarts). */
void kc_pend_wrote(struct kc_pend *p, const char *key, size_t nkey);
void kc_pend_flush(struct kc_pend *p, int64_t when);
bool kc_pend_has_writes(const struct kc_pend *p);
/* The command finished: forgets what was fetched for it. */
void kc_pend_command_done(struct kc_pend *p);

/* --- for the connection --- */
/* Fetches the recorded keys (KC_WAIT_FETCH) or makes the recorded writes durable
 * (KC_WAIT_WRITE; on failure the bytes of out from reply_mark on become one SERVER_ERROR
 * line). done(ctx) runs on the worker's loop when everything has finished. */
void kc_pend_run(struct kc_pend *p, enum kc_wait what, struct kc_buf *out, size_t reply_mark,
		 void (*done)(void *ctx), void *ctx);

#endif
