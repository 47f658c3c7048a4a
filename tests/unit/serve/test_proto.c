/* test_proto: the memcached text protocol (proto_text.c, proto_meta.c and their toolkit
 * proto_cmd.c) against a real tier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve/proto_text.h"

static int64_t fake_now = 1700000000;
static int64_t clock_fn(void)
{
	return fake_now;
}

struct fixture {
	struct kc_mem *mem;
	struct kc_proto_env env;
	struct kc_proto_conn conn;
	struct kc_buf out;
};

static struct kc_stats *stats;

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!stats)
		stats = kc_stats_new();
	fake_now = 1700000000;
	kc_mem_set_clock(clock_fn);
	f->mem = kc_mem_new(4 << 20, 64 << 10);
	f->env = (struct kc_proto_env){
	    .mem = f->mem, .item_max = 64 << 10, .threads = 1, .allow_flush = true};
	f->conn = (struct kc_proto_conn){.env = &f->env, .stats = stats, .proto = KC_PROTO_TCP};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kc_buf_free(&f->out);
	kc_mem_free(f->mem);
	kc_mem_set_clock(NULL);
	free(f);
	return 0;
}

/* Runs req in one piece; returns the reply (NUL-terminated) and asserts all was consumed. */
static const char *run(struct fixture *f, const char *req)
{
	size_t len = strlen(req);

	f->out.len = f->out.off = 0;
	size_t used = kc_proto_process(&f->conn, req, len, &f->out, SIZE_MAX);
	assert_int_equal(used, len);
	kc_buf_append(&f->out, "", 1);
	f->out.len--;
	return f->out.data;
}

static void test_exptime_rules(void **state)
{
	(void)state;
	assert_int_equal(kc_proto_exptime(0, 1000), 0);
	assert_int_equal(kc_proto_exptime(-1, 1000), 1);
	assert_int_equal(kc_proto_exptime(10, 1000), 1010);
	assert_int_equal(kc_proto_exptime(2592000, 1000), 2593000); /* 30 days: relative */
	assert_int_equal(kc_proto_exptime(2592001, 3000000), 1);    /* absolute, in the past */
	assert_int_equal(kc_proto_exptime(1800000000, 1700000000), 1800000000);
}

static void test_set_get_gets(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(run(f, "set k 7 0 3\r\nabc\r\n"), "STORED\r\n");
	assert_string_equal(run(f, "get k\r\n"), "VALUE k 7 3\r\nabc\r\nEND\r\n");
	assert_string_equal(run(f, "get nope k nope\r\n"), "VALUE k 7 3\r\nabc\r\nEND\r\n");
	const char *r = run(f, "gets k\r\n");
	unsigned long long cas;

	assert_int_equal(sscanf(r, "VALUE k 7 3 %llu\r\n", &cas), 1);
	char req[128];

	snprintf(req, sizeof(req), "cas k 1 0 1 %llu\r\nz\r\n", cas);
	assert_string_equal(run(f, req), "STORED\r\n");
	assert_string_equal(run(f, req), "EXISTS\r\n");
	assert_string_equal(run(f, "cas gone 0 0 1 1\r\nz\r\n"), "NOT_FOUND\r\n");
	assert_string_equal(run(f, "get k\nget k\n"),
			    "VALUE k 1 1\r\nz\r\nEND\r\nVALUE k 1 1\r\nz\r\nEND\r\n");
}

static void test_storage_modes_and_noreply(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(run(f, "add a 0 0 1\r\n1\r\n"), "STORED\r\n");
	assert_string_equal(run(f, "add a 0 0 1\r\n2\r\n"), "NOT_STORED\r\n");
	assert_string_equal(run(f, "replace b 0 0 1\r\n1\r\n"), "NOT_STORED\r\n");
	assert_string_equal(run(f, "append a 0 0 2\r\n23\r\n"), "STORED\r\n");
	assert_string_equal(run(f, "prepend a 0 0 1\r\n0\r\n"), "STORED\r\n");
	assert_string_equal(run(f, "get a\r\n"), "VALUE a 0 4\r\n0123\r\nEND\r\n");
	assert_string_equal(run(f, "set a 0 0 1 noreply\r\nx\r\nadd a 0 0 1 noreply\r\ny\r\n"), "");
	assert_string_equal(run(f, "delete a noreply\r\ndelete a\r\n"), "NOT_FOUND\r\n");
	assert_string_equal(
	    run(f, "delete a 5\r\n"),
	    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
	/* As memcached: noreply hides errors too (hold times, bad numbers, non-numeric values). */
	assert_string_equal(run(f, "set a x 0 1 noreply\r\n"), "");
	assert_string_equal(
	    run(f, "delete a 10 noreply\r\nincr a x noreply\r\ntouch a x noreply\r\n"), "");
	assert_string_equal(run(f, "set a 0 0 1\r\nx\r\nincr a 1 noreply\r\nmn\r\n"),
			    "STORED\r\nMN\r\n");
	/* The meta commands have no noreply: q never hides an error. */
	assert_string_equal(run(f, "ma a q\r\n"),
			    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
}

static void test_length_past_int_max(void **state)
{
	struct fixture *f = *state;

	/* Refused on the command line, swallowing nothing: the next line is a command. */
	assert_string_equal(run(f, "set k 0 0 2147483646\r\nget k\r\n"),
			    "CLIENT_ERROR bad command line format\r\nEND\r\n");
	assert_string_equal(run(f, "ms k 2147483647\r\nmn\r\n"),
			    "CLIENT_ERROR bad command line format\r\nMN\r\n");
	/* INT_MAX - 2 is a length memcached reads (and swallows as too large). */
	assert_int_equal(
	    kc_proto_process(&f->conn, "set k 0 0 2147483645\r\n", 22, &f->out, SIZE_MAX), 22);
	assert_int_equal(f->conn.swallow, 2147483647ull);
	f->conn.swallow = 0;
}

static void test_http_request_line_closes(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(run(f, "GET / HTTP/1.0\r\n"), "");
	assert_true(f->conn.close);
	f->conn.close = false;
	assert_string_equal(run(f, "POST /x?y HTTP/1.1\r\n"), "");
	assert_true(f->conn.close);
	f->conn.close = false;
	/* memcached's first-letter families answer ERROR; get is a get. */
	assert_string_equal(run(f, "gxx / HTTP/1.0\r\nget / HTTP/1.0\r\n"), "ERROR\r\nEND\r\n");
	assert_false(f->conn.close);
	f->conn.proto = KC_PROTO_UDP; /* no connection to close, and no reply either */
	assert_string_equal(run(f, "GET / HTTP/1.0\r\n"), "");
	assert_false(f->conn.close);
}

static void test_stats_count_like_memcached(void **state)
{
	struct fixture *f = *state;
	struct kc_stats *s = stats;
	uint64_t cmds = s->get_cmds, hits = s->get_hits, misses = s->get_misses,
		 touches = s->touch_cmds;

	run(f, "set h 0 0 1\r\nv\r\n");
	run(f, "get h m1 m2\r\nmg h\r\nmg m3 v\r\ngat 0 h m4\r\nmg h T0\r\ntouch h 0\r\n");
	assert_int_equal(s->get_cmds - cmds, 5);      /* 3 keys of get, 2 mg without T */
	assert_int_equal(s->get_hits - hits, 2);      /* h by get, h by mg */
	assert_int_equal(s->get_misses - misses, 3);  /* m1 m2 m3: one each */
	assert_int_equal(s->touch_cmds - touches, 4); /* gat's 2 keys, mg T, touch */
}

static void test_arith(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(run(f, "incr n 1\r\n"), "NOT_FOUND\r\n");
	run(f, "set n 0 0 20\r\n18446744073709551615\r\n");
	assert_string_equal(run(f, "incr n 1\r\n"), "0\r\n"); /* 64-bit wrap */
	assert_string_equal(run(f, "incr n 10\r\n"), "10\r\n");
	assert_string_equal(run(f, "decr n 3\r\n"), "7\r\n");
	assert_string_equal(run(f, "decr n 100\r\n"), "0\r\n"); /* floor at 0 */
	assert_string_equal(run(f, "get n\r\n"), "VALUE n 0 1\r\n0\r\nEND\r\n");
	assert_string_equal(run(f, "incr n -1\r\n"),
			    "CLIENT_ERROR invalid numeric delta argument\r\n");
	run(f, "set s 0 0 3\r\nabc\r\n");
	assert_string_equal(run(f, "incr s 1\r\n"),
			    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
}

static void test_expiry_and_touch(void **state)
{
	struct fixture *f = *state;

	run(f, "set e 0 10 1\r\nv\r\nset forever 0 0 1\r\nv\r\nset past 0 -1 1\r\nv\r\n");
	assert_string_equal(run(f, "get past\r\n"), "END\r\n");
	fake_now += 9;
	assert_string_equal(run(f, "get e\r\n"), "VALUE e 0 1\r\nv\r\nEND\r\n");
	assert_string_equal(run(f, "touch e 100\r\n"), "TOUCHED\r\n");
	fake_now += 50;
	assert_string_equal(run(f, "get e\r\n"), "VALUE e 0 1\r\nv\r\nEND\r\n");
	fake_now += 51;
	assert_string_equal(run(f, "get e\r\n"), "END\r\n");
	assert_string_equal(run(f, "touch e 10\r\n"), "NOT_FOUND\r\n");
	assert_string_equal(run(f, "gat 5 forever\r\n"), "VALUE forever 0 1\r\nv\r\nEND\r\n");
	fake_now += 6;
	assert_string_equal(run(f, "get forever\r\n"), "END\r\n");
}

static void test_flush(void **state)
{
	struct fixture *f = *state;

	run(f, "set a 0 0 1\r\n1\r\n");
	assert_string_equal(run(f, "flush_all\r\n"), "OK\r\n");
	assert_string_equal(run(f, "get a\r\n"), "END\r\n");
	run(f, "set a 0 0 1\r\n1\r\n");
	assert_string_equal(run(f, "flush_all 10\r\n"), "OK\r\n");
	assert_string_equal(run(f, "get a\r\n"), "VALUE a 0 1\r\n1\r\nEND\r\n");
	fake_now += 11;
	assert_string_equal(run(f, "get a\r\n"), "END\r\n");
	assert_string_equal(run(f, "flush_all x\r\n"), "CLIENT_ERROR invalid exptime argument\r\n");
	assert_string_equal(run(f, "flush_all 1 2 3\r\n"), "ERROR\r\n");
	assert_string_equal(run(f, "flush_all 0 0\r\nflush_all noreply\r\nflush_all -1\r\n"),
			    "OK\r\nOK\r\n");
	/* Off (the default, allow-flush false): memcached -F's answer, silent with noreply, and
	 * nothing is flushed. */
	f->env.allow_flush = false;
	run(f, "set a 0 0 1\r\n1\r\n");
	assert_string_equal(run(f, "flush_all\r\n"), "CLIENT_ERROR flush_all not allowed\r\n");
	assert_string_equal(run(f, "flush_all noreply\r\n"), "");
	assert_string_equal(run(f, "flush_all 0\r\n"), "CLIENT_ERROR flush_all not allowed\r\n");
	assert_string_equal(run(f, "get a\r\n"), "VALUE a 0 1\r\n1\r\nEND\r\n");
}

/* One datagram over UDP: the reply (NUL-terminated); *used gets the bytes consumed. */
static const char *run_udp(struct fixture *f, const char *req, size_t *used)
{
	f->conn = (struct kc_proto_conn){.env = &f->env, .stats = stats, .proto = KC_PROTO_UDP};
	f->out.len = f->out.off = 0;
	*used = kc_proto_process(&f->conn, req, strlen(req), &f->out, SIZE_MAX);
	kc_buf_append(&f->out, "", 1);
	f->out.len--;
	return f->out.data;
}

/* UDP serves reads only (issue 13): each mutation and control command is refused without
 * running (nothing after it in the datagram runs either), silently with noreply. */
static void test_udp_reads_only(void **state)
{
	static const char *const refused[] = {
	    "set a 0 0 1\r\nX\r\n",
	    "add b 0 0 1\r\nX\r\n",
	    "append a 0 0 1\r\nX\r\n",
	    "delete a\r\n",
	    "incr n 1\r\n",
	    "decr n 1\r\n",
	    "touch a 1\r\n",
	    "gat 1 a\r\n",
	    "ms a 1\r\nX\r\n",
	    "md a\r\n",
	    "ma n\r\n",
	    "mg a T1 v\r\n",
	    "mg a N30 v\r\n",
	    "flush_all\r\n",
	    "verbosity 1\r\n",
	    "stats\r\n",
	    "get a\r\ndelete a\r\n",
	    "md a q\r\n",
	};
	static const char *const quiet[] = {
	    "set a 0 0 1 noreply\r\nX\r\n", "delete a noreply\r\n",  "incr n 1 noreply\r\n",
	    "flush_all noreply\r\n",	    "verbosity noreply\r\n",
	};
	struct fixture *f = *state;
	uint64_t before = atomic_load(&stats->udp_refused[KC_UDP_REFUSED_WRITE]) +
			  atomic_load(&stats->udp_refused[KC_UDP_REFUSED_COMMAND]);
	size_t used;

	run(f, "set a 0 0 1\r\n1\r\nset n 0 0 1\r\n5\r\n");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_string_equal(run_udp(f, refused[i], &used), KC_UDP_NOT_ALLOWED);
		assert_true(f->conn.close);
	}
	for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
		assert_string_equal(run_udp(f, quiet[i], &used), "");
	assert_int_equal(atomic_load(&stats->udp_refused[KC_UDP_REFUSED_WRITE]) +
			     atomic_load(&stats->udp_refused[KC_UDP_REFUSED_COMMAND]),
			 before + 23);
	/* Reads are served. */
	assert_string_equal(run_udp(f, "get a\r\n", &used), "VALUE a 0 1\r\n1\r\nEND\r\n");
	assert_string_equal(run_udp(f, "gets nokey\r\nmn\r\n", &used), "END\r\nMN\r\n");
	assert_string_equal(run_udp(f, "mg a v\r\n", &used), "VA 1\r\n1\r\n");
	assert_string_equal(run_udp(f, "frobnicate\r\n", &used), "ERROR\r\n");
	/* Over TCP nothing changed. */
	f->conn.proto = KC_PROTO_TCP;
	f->conn.close = false;
	assert_string_equal(run(f, "get a n\r\n"),
			    "VALUE a 0 1\r\n1\r\nVALUE n 0 1\r\n5\r\nEND\r\n");
	/* --udp-writes: mutations are served; flush_all, verbosity and stats still never. */
	f->env.udp_writes = true;
	assert_string_equal(run_udp(f, "set a 0 0 1\r\n2\r\n", &used), "STORED\r\n");
	assert_string_equal(run_udp(f, "incr n 1\r\n", &used), "6\r\n");
	assert_string_equal(run_udp(f, "flush_all\r\n", &used), KC_UDP_NOT_ALLOWED);
	assert_string_equal(run_udp(f, "stats\r\n", &used), KC_UDP_NOT_ALLOWED);
	assert_string_equal(run_udp(f, "get a\r\n", &used), "VALUE a 0 1\r\n2\r\nEND\r\n");
}

/* A datagram's reply is capped: past udp_out_max the whole reply is one size error, and a
 * value is refused before it is copied. */
static void test_udp_reply_cap(void **state)
{
	struct fixture *f = *state;
	char req[400], val[300];
	uint64_t before = atomic_load(&stats->udp_refused[KC_UDP_REFUSED_SIZE]);
	size_t used;

	memset(val, 'v', 200);
	snprintf(req, sizeof(req), "set big 0 0 200\r\n%.200s\r\nset s 0 0 5\r\nhello\r\n", val);
	run(f, req);
	f->env.udp_out_max = 100;
	assert_string_equal(run_udp(f, "get s\r\n", &used), "VALUE s 0 5\r\nhello\r\nEND\r\n");
	assert_string_equal(run_udp(f, "get big\r\n", &used), KC_UDP_TOO_LARGE);
	assert_string_equal(run_udp(f, "get s big\r\n", &used), KC_UDP_TOO_LARGE);
	assert_string_equal(run_udp(f, "mg big v\r\n", &used), KC_UDP_TOO_LARGE);
	assert_string_equal(run_udp(f, "get s s s s s\r\n", &used), KC_UDP_TOO_LARGE);
	/* 4 x 25 bytes is the cap exactly, a fifth passes it */
	assert_string_equal(run_udp(f, "get s\r\nget s\r\nget s\r\nget s\r\nget s\r\n", &used),
			    KC_UDP_TOO_LARGE);
	assert_int_equal(atomic_load(&stats->udp_refused[KC_UDP_REFUSED_SIZE]), before + 5);
	/* Exactly at the cap is served: "VALUE s 0 5\r\nhello\r\nEND\r\n" is 25 bytes. */
	f->env.udp_out_max = 25;
	assert_string_equal(run_udp(f, "get s\r\n", &used), "VALUE s 0 5\r\nhello\r\nEND\r\n");
	f->env.udp_out_max = 24;
	assert_string_equal(run_udp(f, "get s\r\n", &used), KC_UDP_TOO_LARGE);
}

static void test_meta(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(run(f, "ms k 2 F5 T0\r\nhi\r\n"), "HD\r\n");
	assert_string_equal(run(f, "mg k v f s k t O9\r\n"), "VA 2 f5 s2 kk t-1 O9\r\nhi\r\n");
	assert_string_equal(run(f, "mg k\r\n"), "HD\r\n");
	assert_string_equal(run(f, "mg none v\r\n"), "EN\r\n");
	assert_string_equal(run(f, "mg none v q\r\nmn\r\n"), "MN\r\n");
	assert_string_equal(run(f, "ms k 1 ME\r\nx\r\n"), "NS\r\n");
	assert_string_equal(run(f, "ms k 1 MA\r\nx\r\nmg k v\r\n"), "HD\r\nVA 3\r\nhix\r\n");
	assert_string_equal(run(f, "ms k 1 C1\r\nx\r\n"), "EX\r\n");
	assert_string_equal(run(f, "md k q\r\nmd k\r\n"), "NF\r\n");
	assert_string_equal(run(f, "ma c\r\n"), "NF\r\n");
	assert_string_equal(run(f, "ma c N0 J5 v\r\nma c D10 v\r\nma c MD D3 v\r\n"),
			    "VA 1\r\n5\r\nVA 2\r\n15\r\nVA 2\r\n12\r\n");
	assert_string_equal(run(f, "mg k Z\r\n"), "CLIENT_ERROR invalid flag\r\n");
	/* A refused ms swallows its value instead of running it as commands. */
	assert_string_equal(run(f, "ms k 3 Z\r\nget\r\nmn\r\n"),
			    "CLIENT_ERROR invalid flag\r\nMN\r\n");
}

static void test_meta_ttl_and_access(void **state)
{
	struct fixture *f = *state;

	run(f, "set k 0 0 1\r\nv\r\n");
	/* t reports the ttl before this request's T, and after it once T has been read. */
	assert_string_equal(run(f, "mg k t T100\r\nmg k T50 t\r\n"), "HD t-1\r\nHD t50\r\n");
	assert_string_equal(run(f, "mg k t T-1\r\nmg k\r\n"), "HD t50\r\nEN\r\n");
	run(f, "set k 0 0 1\r\nv\r\n");
	fake_now += 7;
	/* h: fetched before this request; l: seconds since the last read; u changes neither. */
	assert_string_equal(run(f, "mg k h l u\r\nmg k h l\r\nmg k h l\r\n"),
			    "HD h0 l7\r\nHD h0 l7\r\nHD h1 l0\r\n");
	const char *r = run(f, "me k\r\n");

	assert_int_equal(strncmp(r, "ME k exp=-1 la=0 cas=", 21), 0);
	assert_non_null(strstr(r, " fetch=yes cls=1 size="));
	assert_string_equal(run(f, "me none\r\nme\r\n"),
			    "EN\r\nCLIENT_ERROR bad command line format\r\n");
}

static void test_meta_leases(void **state)
{
	struct fixture *f = *state;

	/* N: the first client of a missing key gets an empty item and the lease (W), others Z. */
	assert_string_equal(run(f, "mg v N30 v t\r\nmg v N30 v\r\n"),
			    "VA 0 t30 W\r\n\r\nVA 0 Z\r\n\r\n");
	assert_string_equal(run(f, "ms v 1\r\nx\r\nmg v v\r\n"), "HD\r\nVA 1\r\nx\r\n");
	/* R: the lease goes to one client once the ttl left is below R's. */
	run(f, "set r 0 100 1\r\nv\r\n");
	assert_string_equal(run(f, "mg r R30\r\n"), "HD\r\n");
	fake_now += 80;
	assert_string_equal(run(f, "mg r R30\r\nmg r R30\r\n"), "HD W\r\nHD Z\r\n");
	/* md I: stale (X), the next client wins; ms I with an older cas stays stale. */
	run(f, "set s 0 0 1\r\nv\r\n");
	assert_string_equal(run(f, "md s I T30\r\nmg s v t\r\nmg s\r\n"),
			    "HD\r\nVA 1 t30 X W\r\nv\r\nHD Z X\r\n");
	assert_string_equal(run(f, "ms s 1 C1 I\r\nw\r\nmg s v\r\n"), "HD\r\nVA 1 Z X\r\nw\r\n");
	assert_string_equal(run(f, "ms s 1 C1\r\nw\r\n"), "EX\r\n"); /* without I: a cas miss */
	/* md compares a C0 too (no stored cas is 0); ma's C0 means no cas. */
	run(f, "set z 0 0 1\r\n1\r\n");
	assert_string_equal(run(f, "md z C0\r\nma z C0 v\r\n"), "EX\r\nVA 1\r\n2\r\n");
	/* ma: C must match, t/T as mg's. */
	run(f, "set n 0 0 1\r\n5\r\n");
	assert_string_equal(run(f, "ma n C1\r\nma n t T30 v\r\nma n t\r\n"),
			    "EX\r\nVA 1 t-1\r\n6\r\nHD t30\r\n");
}

static void test_meta_base64_keys(void **state)
{
	struct fixture *f = *state;

	/* "a2V5" is "key"; an item stored with b shows its key in base64. */
	assert_string_equal(run(f, "ms a2V5 1 b k\r\nv\r\nget key\r\n"),
			    "HD ka2V5 b\r\nVALUE key 0 1\r\nv\r\nEND\r\n");
	assert_string_equal(run(f, "mg a2V5 b k v\r\nmg a2V5 k\r\n"),
			    "VA 1 ka2V5 b\r\nv\r\nEN ka2V5\r\n");
	assert_string_equal(run(f, "mg a2V b\r\nmd !!!! b\r\n"),
			    "CLIENT_ERROR error decoding key\r\n"
			    "CLIENT_ERROR invalid or duplicate flag\r\n");
	assert_string_equal(run(f, "md a2V5 b\r\nget key\r\n"), "HD\r\nEND\r\n");
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	char key[300];

	memset(key, 'k', 251);
	key[251] = 0;
	char req[400];

	snprintf(req, sizeof(req), "get %s\r\n", key);
	assert_string_equal(run(f, req), "CLIENT_ERROR bad command line format\r\n");
	snprintf(req, sizeof(req), "get a %s\r\n", key + 1); /* 250: fine */
	assert_string_equal(run(f, req), "END\r\n");
	assert_string_equal(run(f, "bogus\r\n"), "ERROR\r\n");
	assert_string_equal(run(f, "\r\n"), "ERROR\r\n");
	assert_string_equal(run(f, "get\r\n"), "ERROR\r\n");
	assert_string_equal(run(f, "set k 0 0 -1\r\n"), "CLIENT_ERROR bad command line format\r\n");
	assert_string_equal(run(f, "set k 0 0 1\r\nabc\r\n"),
			    "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
	assert_string_equal(run(f, "stats nope\r\n"), "ERROR\r\n");
	assert_string_equal(run(f, "verbosity\r\n"), "ERROR\r\n");
}

static void test_oversized_value_is_swallowed_across_reads(void **state)
{
	struct fixture *f = *state;
	size_t n = 100000; /* > item_max (64 KiB) */
	char *req = malloc(n + 100);
	size_t len = (size_t)sprintf(req, "set big 0 0 %zu\r\n", n);

	memset(req + len, 'x', n);
	len += n;
	memcpy(req + len, "\r\nmn\r\n", 6);
	len += 6;
	f->out.len = 0;
	/* Deliver in 1000-byte pieces as a socket would. */
	size_t pos = 0, have = 0;

	while (have < len) {
		have = have + 1000 < len ? have + 1000 : len;
		pos += kc_proto_process(&f->conn, req + pos, have - pos, &f->out, SIZE_MAX);
	}
	assert_int_equal(pos, len);
	kc_buf_append(&f->out, "", 1);
	assert_string_equal(f->out.data, "SERVER_ERROR object too large for cache\r\nMN\r\n");
	free(req);
}

static void test_byte_by_byte_equals_one_piece(void **state)
{
	struct fixture *f = *state;
	const char *script = "set a 1 0 5\r\nhello\r\nget a b\r\nappend a 0 0 1\r\n!\r\n"
			     "incr n 1\r\nms m 2\r\nhi\r\nmg m v\r\ngets a\r\nmn\r\n";
	struct kc_buf one = {0};

	run(f, "flush_all\r\n");
	kc_buf_puts(&one, run(f, script));
	run(f, "flush_all\r\n");
	f->out.len = 0;
	size_t pos = 0, len = strlen(script);

	for (size_t have = 1; have <= len; have++)
		pos += kc_proto_process(&f->conn, script + pos, have - pos, &f->out, SIZE_MAX);
	assert_int_equal(pos, len);
	/* CAS values differ between the two runs: compare up to the gets reply. */
	size_t cmp = (size_t)(strstr(one.data, "VALUE a 1 6 ") - one.data);

	assert_true(f->out.len >= cmp);
	assert_memory_equal(f->out.data, one.data, cmp);
	kc_buf_free(&one);
}

static void test_line_too_long_closes(void **state)
{
	struct fixture *f = *state;
	size_t n = KC_LINE_MAX + 10;
	char *req = malloc(n);

	memset(req, 'a', n);
	f->out.len = 0;
	size_t used = kc_proto_process(&f->conn, req, n, &f->out, SIZE_MAX);

	assert_int_equal(used, n);
	assert_true(f->conn.close);
	kc_buf_append(&f->out, "", 1);
	assert_string_equal(f->out.data, "CLIENT_ERROR line too long\r\n");
	/* Shorter than the limit without a newline: wait for more. */
	f->conn.close = false;
	f->out.len = 0;
	assert_int_equal(kc_proto_process(&f->conn, req, 1000, &f->out, SIZE_MAX), 0);
	assert_false(f->conn.close);
	free(req);
}

/* A get longer than KC_LINE_MAX is answered key by key as its bytes arrive (memcached answers
 * any number of keys); nothing of it is buffered past KC_LINE_MAX. */
static void test_get_longer_than_a_line(void **state)
{
	struct fixture *f = *state;
	size_t cap = 300000, len = 0, pos = 0;
	char *req = malloc(cap);

	run(f, "set k7 0 0 1\r\nv\r\nset k17000 0 0 2\r\nvv\r\n");
	len += (size_t)sprintf(req, "get");
	for (int i = 0; i < 30000; i++)
		len += (size_t)sprintf(req + len, " k%d", i);
	len += (size_t)sprintf(req + len, "\r\nmn\r\n");
	assert_true(len > 2 * KC_LINE_MAX);
	f->out.len = 0;
	/* As a socket delivers it: 1000 bytes more each time, never more than the unconsumed
	 * bytes plus 1000 held. */
	for (size_t have = 0; have < len;) {
		have = have + 1000 < len ? have + 1000 : len;
		pos += kc_proto_process(&f->conn, req + pos, have - pos, &f->out, SIZE_MAX);
		assert_true(have - pos <= KC_LINE_MAX);
	}
	assert_int_equal(pos, len);
	assert_false(f->conn.close);
	kc_buf_append(&f->out, "", 1);
	assert_string_equal(f->out.data,
			    "VALUE k7 0 1\r\nv\r\nVALUE k17000 0 2\r\nvv\r\nEND\r\nMN\r\n");
	/* A bad key past the first piece ends it: its error, the rest of its line dropped (more
	 * than a piece of it), then the next command. */
	len = (size_t)sprintf(req, "get");
	for (int i = 0; i < 15000; i++)
		len += (size_t)sprintf(req + len, " k%d", i);
	req[len++] = ' ';
	memset(req + len, 'x', KC_KEY_MAX + 1);
	len += KC_KEY_MAX + 1;
	for (int i = 0; i < 15000; i++) /* more than a piece after it: dropped unread */
		len += (size_t)sprintf(req + len, " k%d", i);
	len += (size_t)sprintf(req + len, "\r\nmn\r\n");
	f->out.len = 0;
	pos = 0;
	for (size_t have = 0; have < len;) {
		have = have + 1000 < len ? have + 1000 : len;
		pos += kc_proto_process(&f->conn, req + pos, have - pos, &f->out, SIZE_MAX);
	}
	assert_int_equal(pos, len);
	kc_buf_append(&f->out, "", 1);
	assert_string_equal(f->out.data, "VALUE k7 0 1\r\nv\r\n"
					 "CLIENT_ERROR bad command line format\r\nMN\r\n");
	free(req);
}

static void test_quit_and_udp(void **state)
{
	struct fixture *f = *state;

	run(f, "quit\r\n");
	assert_true(f->conn.close);
	f->conn.close = false;
	f->conn.proto = KC_PROTO_UDP;
	run(f, "quit\r\n");
	assert_false(f->conn.close); /* UDP has no connection to close */
	assert_string_equal(run(f, "version\r\n"), "VERSION 1.6.0-kcache-0.1.0\r\n");
}

static void test_stats(void **state)
{
	struct fixture *f = *state;
	const char *r = run(f, "stats\r\n");

	assert_non_null(strstr(r, "STAT curr_items "));
	assert_non_null(strstr(r, "STAT version 1.6.0-kcache"));
	assert_int_equal(strcmp(r + strlen(r) - 5, "END\r\n"), 0);
	r = run(f, "stats settings\r\n");
	assert_non_null(strstr(r, "STAT item_size_max 65536\r\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exptime_rules),
	    cmocka_unit_test_setup_teardown(test_set_get_gets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_modes_and_noreply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_arith, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry_and_touch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_reads_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_reply_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_meta_ttl_and_access, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_meta_leases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_meta_base64_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_length_past_int_max, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_request_line_closes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats_count_like_memcached, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversized_value_is_swallowed_across_reads, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_byte_by_byte_equals_one_piece, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_too_long_closes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_longer_than_a_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quit_and_udp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
