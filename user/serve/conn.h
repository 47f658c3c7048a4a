/* conn.h: one worker's memcached traffic: TCP connections and UDP datagrams.
 * Everything here runs on the owning worker's thread; nothing is shared but the tier. */
#ifndef KC_CONN_H
#define KC_CONN_H

#include <event2/event.h>
#include <stdatomic.h>
#include <stdint.h>

#include "serve/proto_text.h"

#define KC_UDP_HDR     8	   /* request id, sequence, total, reserved: 4 x be16 */
#define KC_UDP_PAYLOAD 1400	   /* memcached's UDP_MAX_PAYLOAD_SIZE, header included */
#define KC_OUT_SOFT    (256 << 10) /* stop parsing a connection's input past this much output */

struct kc_conn;
struct kc_tiers;
struct kc_udp_wait;

struct kc_worker {
	unsigned id;
	struct event_base *base;
	int tcp_fd, udp_fd;
	struct event *tcp_ev, *udp_ev;
	struct kc_stats *stats;
	const struct kc_proto_env *env;
	uint32_t max_conns;
	struct kc_conn *conns; /* list of open connections, for shutdown */
	struct kc_buf udp_out;
	struct kc_tiers *tiers;	       /* lower tiers, or NULL (memory only) */
	unsigned udp_waiting;	       /* datagrams waiting on the lower tiers */
	struct kc_udp_wait *udp_waits; /* their list, for shutdown */
	struct kc_pend *udp_pend;      /* reused by datagrams that do not wait */
};

/* Event callbacks, registered by server.c on the worker's base. */
void kc_conn_on_accept(evutil_socket_t fd, short what, void *worker);
void kc_udp_on_read(evutil_socket_t fd, short what, void *worker);

/* Closes every connection of the worker and drops datagrams waiting on the lower tiers (at
 * shutdown, on its thread, or after it ended). */
void kc_conn_close_all(struct kc_worker *w);

#endif
