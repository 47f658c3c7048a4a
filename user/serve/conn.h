/* conn.h: one worker's memcached traffic: TCP connections and UDP datagrams.
 * Everything here runs on the owning worker's thread; nothing is shared but the tier.
 *
 * A TCP connection is a state machine (memcached's enum conn_states is the model). Its state
 * changes only in kc_conn_set_state(), which asserts that the move is one of these:
 *
 *   from        to          when
 *   NEW         READING     accepted: the read event armed
 *   READING     RUNNING     input came (conn_on_read)
 *   RUNNING     READING     all output written, no progress this round (kc_conn_after_write)
 *   RUNNING     WRITING     the socket took not all output (backpressure)
 *   WRITING     RUNNING     the socket drained (conn_on_write)
 *   RUNNING     WAIT_CALL   a command needs the lower tiers: kc_pend_run
 *   WAIT_CALL   WAIT_EARLY  its done callback came before kc_pend_run returned
 *   WAIT_EARLY  RUNNING     kc_pend_run returned: parsing goes on at once
 *   WAIT_CALL   WAITING     kc_pend_run returned first
 *   WAITING     RUNNING     done came (conn_resume)
 *   RUNNING     LINGER      the protocol asked to close before the client's EOF
 *   RUNNING     CLOSED      asked to close after EOF; EOF and nothing parsed; write error
 *   LINGER      CLOSED      EOF, LINGER_SECS or LINGER_BYTES of discarded input
 *   READING     CLOSED      read error, out of memory, kc_conn_close_all, request-timeout
 *                           (an incomplete request), idle-timeout (no input)
 *   WRITING     CLOSED      kc_conn_close_all
 *   WAITING     CLOSED      read error, out of memory, kc_conn_close_all (the wait is dropped)
 *
 *   NEW --> READING <--> RUNNING <--> WRITING
 *                        | ^ ^
 *                        | | +-- WAIT_EARLY <--+
 *                        | +---- WAITING <-----+
 *                        +-----> WAIT_CALL ----+
 *   RUNNING --> LINGER --> CLOSED <-- READING, RUNNING, WRITING, WAITING
 *
 * RUNNING exists only while conn_drive() is on the stack, WAIT_CALL and WAIT_EARLY only inside
 * conn_wait(): every event callback finds the connection READING, WRITING, WAITING or
 * LINGER. Whether the client's EOF was read is a fact about the input, not a state: READING,
 * RUNNING and WAITING can each have seen it; RUNNING closes once it parsed nothing more. */
#ifndef KC_CONN_H
#define KC_CONN_H

#include <event2/event.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "serve/proto_text.h"

#define KC_UDP_HDR     8	   /* request id, sequence, total, reserved: 4 x be16 */
#define KC_UDP_PAYLOAD 1400	   /* memcached's UDP_MAX_PAYLOAD_SIZE, header included */
#define KC_OUT_SOFT    (256 << 10) /* stop parsing input past this much unsent output */

struct kc_conn;
struct kc_tiers;
struct kc_udp_wait;

/* The buffer budget every TCP connection of a daemon shares: the bytes their input and output
 * buffers have allocated, over all workers (atomic: each worker adds and removes its own).
 * Half of it is free for any connection while it lasts; past that a connection may grow only
 * within its fair share of the other half (half / open connections), so a connection holding
 * more than its share stops first: it reads nothing and answers no read command until its
 * client has taken its replies or the budget has room. At most one command's reply past its
 * allowance (and the doubling of a buffer) is over the limit per connection. */
struct kc_conn_budget {
	_Atomic uint64_t used;
	uint64_t limit; /* 0: no budget */
};

struct kc_worker {
	unsigned id;
	struct event_base *base;
	int tcp_fd, udp_fd;
	struct event *tcp_ev, *udp_ev;
	struct kc_stats *stats;
	const struct kc_proto_env *env;
	uint32_t max_conns;
	uint32_t request_timeout;      /* s: an incomplete request open longer is closed; 0 = off */
	uint32_t idle_timeout;	       /* s: READING with no input for longer is closed; 0 = off */
	struct kc_conn_budget *budget; /* shared by every worker; NULL: none */
	struct kc_conn *conns;	       /* list of open connections, for shutdown */
	struct kc_buf udp_out;
	struct kc_tiers *tiers;	       /* lower tiers, or NULL (memory only) */
	unsigned udp_waiting;	       /* datagrams waiting on the lower tiers */
	struct kc_udp_wait *udp_waits; /* their list, for shutdown */
	struct kc_pend *udp_pend;      /* reused by datagrams that do not wait */
};

enum kc_conn_state {
	KC_CONN_NEW,	    /* accepted, its events not armed yet */
	KC_CONN_READING,    /* idle: the read event is armed, the write event not */
	KC_CONN_RUNNING,    /* conn_drive parses, executes and writes what it can */
	KC_CONN_WRITING,    /* the socket took not all output: waits for EV_WRITE, reads nothing */
	KC_CONN_WAIT_CALL,  /* inside kc_pend_run; its done callback has not come */
	KC_CONN_WAIT_EARLY, /* inside kc_pend_run; done came already: RUNNING goes on at once */
	KC_CONN_WAITING,    /* a wait on the lower tiers is under way; input is only buffered */
	KC_CONN_LINGER,	    /* error replies sent, our side shut down: input discarded till EOF */
	KC_CONN_CLOSED,	    /* being freed; nothing follows */
	KC_CONN_NSTATES
};

/* True if a connection may move from `from` to `to` (the table above). Out-of-range states
 * are never allowed. */
bool kc_conn_transition_ok(enum kc_conn_state from, enum kc_conn_state to);
/* "READING", ...; "?" for a value out of range. */
const char *kc_conn_state_name(enum kc_conn_state s);
/* c's state (for tests and debugging). */
enum kc_conn_state kc_conn_get_state(const struct kc_conn *c);
/* Moves c to `to`: the only writer of c's state. Aborts (assert) on a move kc_conn_transition_ok
 * refuses. On c's worker thread. */
void kc_conn_set_state(struct kc_conn *c, enum kc_conn_state to);
/* The drive loop's decision once RUNNING has written all its output: LINGER (the protocol asked
 * to close and the client's EOF has not come), CLOSED (it asked to close, or EOF came and this
 * round made no progress), RUNNING (progress: parse again) or READING. Progress is a round
 * that parsed something, or one that left buffered input unparsed because KC_OUT_SOFT bytes
 * were still unsent: now that they are written it may hold complete requests. */
enum kc_conn_state kc_conn_after_write(bool close, bool eof, bool progress);

/* The most reply text (env->udp_out_max) whose datagrams, each with its KC_UDP_HDR header and
 * at most KC_UDP_PAYLOAD bytes, total at most max_reply bytes (--udp-max-reply). */
size_t kc_udp_out_max(uint64_t max_reply);

/* Event callbacks, registered by server.c on the worker's base. */
void kc_conn_on_accept(evutil_socket_t fd, short what, void *worker);
void kc_udp_on_read(evutil_socket_t fd, short what, void *worker);

/* Closes every connection of the worker and drops datagrams waiting on the lower tiers (at
 * shutdown, on its thread, or after it ended). */
void kc_conn_close_all(struct kc_worker *w);

#endif
