/* test_metrics.c: counters, histogram bucket placement, summing across threads, the text
 * exposition, collectors, and the exposition checked by promtool (which must be installed).
 *
 * The registry is process-wide and never shrinks, so each test counts on its own
 * (proto, op) pairs or compares before and after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/metrics.h"

#define PROMTOOL "/usr/bin/promtool"

static uint64_t ld(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static char *render(void)
{
	struct kc_buf b = {0};

	assert_int_equal(kc_metrics_render(&b), 0);
	assert_int_equal(kc_buf_append(&b, "", 1), 0);
	return b.data;
}

static void assert_has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("missing from the exposition: %s\n---\n%s", line, text);
}

static void test_names(void **state)
{
	assert_string_equal(kc_op_name(KC_OP_GET), "get");
	assert_string_equal(kc_op_name(KC_OP_FLUSH_ALL), "flush_all");
	assert_string_equal(kc_op_name(KC_OP_OTHER), "other");
	assert_string_equal(kc_op_name(KC_OP__COUNT), "unknown");
	assert_string_equal(kc_res_name(KC_RES_CLIENT_ERROR), "client_error");
	assert_string_equal(kc_res_name(KC_RES_NOT_STORED), "not_stored");
	assert_string_equal(kc_proto_name(KC_PROTO_TCP), "tcp");
	assert_string_equal(kc_proto_name(KC_PROTO_HTTP), "http");
	assert_string_equal(kc_proto_name((enum kc_proto) - 1), "unknown");
}

static void test_count_and_buckets(void **state)
{
	struct kc_stats *s = kc_stats_new();
	struct kc_hist *h;

	assert_non_null(s);
	assert_true(((uintptr_t)s & 63) == 0);
	kc_stats_count(s, KC_PROTO_TCP, KC_OP_SET, KC_RES_STORED);
	kc_stats_count(s, KC_PROTO_TCP, KC_OP_SET, KC_RES_STORED);
	kc_stats_count(s, KC_PROTO_TCP, KC_OP_SET, KC_RES_NOT_STORED);
	assert_int_equal(ld(&s->requests[KC_PROTO_TCP][KC_OP_SET][KC_RES_STORED]), 2);
	assert_int_equal(ld(&s->requests[KC_PROTO_TCP][KC_OP_SET][KC_RES_NOT_STORED]), 1);

	h = &s->duration[KC_PROTO_TCP][KC_OP_SET];
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_SET, 0);	  /* bucket 0 */
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_SET, 1000);	  /* le is inclusive: bucket 0 */
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_SET, 1001);	  /* bucket 1 (2.5us) */
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_SET, 999999);	  /* bucket 9 (1ms) */
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_SET, 2000000);	  /* bucket 10 (10ms) */
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_SET, 1000000000); /* bucket 13 (1s) */
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_SET, 1000000001); /* +Inf */
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_SET, UINT64_MAX / 4); /* +Inf */
	assert_int_equal(ld(&h->bucket[0]), 2);
	assert_int_equal(ld(&h->bucket[1]), 1);
	assert_int_equal(ld(&h->bucket[9]), 1);
	assert_int_equal(ld(&h->bucket[10]), 1);
	assert_int_equal(ld(&h->bucket[13]), 1);
	assert_int_equal(ld(&h->bucket[KC_HIST_BUCKETS]), 2);
	assert_int_equal(ld(&h->count), 8);
	assert_true(ld(&h->sum_ns) ==
		    1000 + 1001 + 999999 + 2000000 + 1000000000 + 1000000001 + UINT64_MAX / 4);
	for (int i = 1; i < KC_HIST_BUCKETS; i++)
		assert_true(kc_hist_bounds_ns[i] > kc_hist_bounds_ns[i - 1]);
}

#define PER_THREAD 100000

static void *hammer(void *arg)
{
	struct kc_stats *s = kc_stats_new();

	assert_non_null(s);
	for (int i = 0; i < PER_THREAD; i++) {
		kc_stats_count(s, KC_PROTO_UDP, KC_OP_MA, KC_RES_SERVER_ERROR);
		kc_stats_observe(s, KC_PROTO_UDP, KC_OP_MA, 3000);
		atomic_fetch_add_explicit(&s->bytes_read, 10, memory_order_relaxed);
	}
	return NULL;
}

static void test_sum_two_threads(void **state)
{
	struct kc_stats *before = calloc(1, sizeof(*before));
	struct kc_stats *after = calloc(1, sizeof(*after));
	pthread_t t[2];

	assert_non_null(before);
	assert_non_null(after);
	kc_stats_sum(before);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	kc_stats_sum(after);

	assert_int_equal(ld(&after->requests[KC_PROTO_UDP][KC_OP_MA][KC_RES_SERVER_ERROR]) -
			     ld(&before->requests[KC_PROTO_UDP][KC_OP_MA][KC_RES_SERVER_ERROR]),
			 2 * PER_THREAD);
	assert_int_equal(ld(&after->duration[KC_PROTO_UDP][KC_OP_MA].bucket[2]) -
			     ld(&before->duration[KC_PROTO_UDP][KC_OP_MA].bucket[2]),
			 2 * PER_THREAD);
	assert_int_equal(ld(&after->duration[KC_PROTO_UDP][KC_OP_MA].sum_ns) -
			     ld(&before->duration[KC_PROTO_UDP][KC_OP_MA].sum_ns),
			 2 * PER_THREAD * 3000ull);
	assert_int_equal(ld(&after->bytes_read) - ld(&before->bytes_read), 2 * PER_THREAD * 10ull);
	free(before);
	free(after);
}

static void test_render_lines(void **state)
{
	struct kc_stats *s = kc_stats_new();
	char *text;

	assert_non_null(s);
	for (int i = 0; i < 3; i++)
		kc_stats_count(s, KC_PROTO_TCP, KC_OP_GATS, KC_RES_HIT);
	kc_stats_count(s, KC_PROTO_TCP, KC_OP_GATS, KC_RES_CLIENT_ERROR);
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_GATS, 500);
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_GATS, 3000);
	kc_stats_observe(s, KC_PROTO_TCP, KC_OP_GATS, 2000000000);
	atomic_fetch_add(&s->udp_bad_frames, 1);

	text = render();
	assert_has(text, "# HELP kcache_requests_total ");
	assert_has(text, "# TYPE kcache_requests_total counter\n");
	assert_has(text, "\nkcache_requests_total{proto=\"tcp\",op=\"gats\",result=\"hit\"} 3\n");
	assert_has(
	    text, "\nkcache_requests_total{proto=\"tcp\",op=\"gats\",result=\"client_error\"} 1\n");
	/* zero series are left out */
	assert_null(strstr(text, "op=\"gats\",result=\"miss\""));
	assert_null(strstr(text, "proto=\"http\",op=\"gats\""));

	assert_has(text, "# TYPE kcache_request_duration_seconds histogram\n");
	assert_has(text, "\nkcache_request_duration_seconds_bucket{proto=\"tcp\",op=\"gats\","
			 "le=\"1e-06\"} 1\n");
	assert_has(text, "\nkcache_request_duration_seconds_bucket{proto=\"tcp\",op=\"gats\","
			 "le=\"2.5e-06\"} 1\n");
	assert_has(text, "\nkcache_request_duration_seconds_bucket{proto=\"tcp\",op=\"gats\","
			 "le=\"5e-06\"} 2\n");
	assert_has(text, "\nkcache_request_duration_seconds_bucket{proto=\"tcp\",op=\"gats\","
			 "le=\"0.001\"} 2\n");
	assert_has(text, "\nkcache_request_duration_seconds_bucket{proto=\"tcp\",op=\"gats\","
			 "le=\"1\"} 2\n");
	assert_has(text, "\nkcache_request_duration_seconds_bucket{proto=\"tcp\",op=\"gats\","
			 "le=\"+Inf\"} 3\n");
	assert_has(
	    text, "\nkcache_request_duration_seconds_sum{proto=\"tcp\",op=\"gats\"} 2.000003500\n");
	assert_has(text, "\nkcache_request_duration_seconds_count{proto=\"tcp\",op=\"gats\"} 3\n");

	assert_has(text, "# TYPE kcache_connections_opened_total counter\n");
	assert_has(text, "# TYPE kcache_connections_closed_total counter\n");
	assert_has(text, "# TYPE kcache_bytes_read_total counter\n");
	assert_has(text, "# TYPE kcache_bytes_written_total counter\n");
	assert_has(text, "# TYPE kcache_udp_bad_frames_total counter\n");
	assert_non_null(strstr(text, "\nkcache_udp_bad_frames_total "));
	free(text);
}

static void test_collector_cb(void *ctx, struct kc_buf *out)
{
	int *calls = ctx;

	(*calls)++;
	kc_metric_header(out, "kcache_test_items", "gauge", "Items, with a \\ and a\nnewline.");
	kc_metric_u64(out, "kcache_test_items", "tier=\"memory\"", 42);
	kc_metric_f64(out, "kcache_test_items", "tier=\"redis\"", 0.1);
	kc_metric_f64(out, "kcache_test_items", "tier=\"s3\"", 1.0 / 0.0);
	kc_metric_header(out, "kcache_test_evictions_total", "counter", "Evictions.");
	kc_metric_u64(out, "kcache_test_evictions_total", NULL, 7);
}

static int collector_calls;

static void test_collector(void **state)
{
	int before = collector_calls;
	char *text;

	assert_int_equal(kc_metrics_add_collector(test_collector_cb, &collector_calls), 0);
	assert_int_equal(kc_metrics_add_collector(test_collector_cb, &collector_calls), -EEXIST);
	text = render();
	assert_int_equal(collector_calls, before + 1);
	assert_has(text, "# HELP kcache_test_items Items, with a \\\\ and a\\nnewline.\n"
			 "# TYPE kcache_test_items gauge\n"
			 "kcache_test_items{tier=\"memory\"} 42\n"
			 "kcache_test_items{tier=\"redis\"} 0.1\n"
			 "kcache_test_items{tier=\"s3\"} +Inf\n");
	assert_has(text, "\nkcache_test_evictions_total 7\n");
	/* collectors come after the built-in families */
	assert_true(strstr(text, "kcache_test_items") >
		    strstr(text, "kcache_udp_bad_frames_total"));
	free(text);
}

static void test_f64(void **state)
{
	struct kc_buf b = {0};

	assert_int_equal(kc_metric_f64(&b, "m", NULL, 0.0 / 0.0), 0);
	assert_int_equal(kc_metric_f64(&b, "m", NULL, -1.0 / 0.0), 0);
	assert_int_equal(kc_metric_f64(&b, "m", "", 1e-9), 0);
	assert_int_equal(kc_metric_f64(&b, "m", NULL, 1.0 / 3.0), 0);
	assert_int_equal(kc_buf_append(&b, "", 1), 0);
	assert_string_equal(b.data, "m NaN\nm -Inf\nm 1e-09\nm 0.33333333333333331\n");
	kc_buf_free(&b);
}

/* Runs promtool on the exposition; lint problems count as failures too. */
static void test_promtool(void **state)
{
	char path[] = "/tmp/kc_test_metrics.XXXXXX", cmd[256], msg[4096] = "";
	struct kc_stats *s = kc_stats_new();
	struct kc_buf b = {0};
	size_t n = 0;
	FILE *p;
	int fd, st;

	if (access(PROMTOOL, X_OK) != 0)
		fail_msg("%s not found: install Debian's prometheus package (make deps)", PROMTOOL);
	assert_non_null(s);
	/* populate every family, so that promtool sees histograms and all label sets */
	for (int p_ = 0; p_ < KC_PROTO__COUNT; p_++) {
		for (int r = 0; r < KC_RES__COUNT; r++)
			kc_stats_count(s, p_, KC_OP_GET, r);
		kc_stats_observe(s, p_, KC_OP_GET, 12345);
		kc_stats_observe(s, p_, KC_OP_DELETE, 5000000000ull);
	}
	kc_metrics_add_collector(test_collector_cb, &collector_calls); /* may be there already */
	assert_int_equal(kc_metrics_render(&b), 0);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(write(fd, b.data, b.len) == (ssize_t)b.len);
	close(fd);
	snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s 2>&1", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n < sizeof(msg) - 1 && fgets(msg + n, (int)(sizeof(msg) - n), p))
		n = strlen(msg);
	st = pclose(p);
	unlink(path);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || n != 0)
		fail_msg("promtool check metrics: status %d, output:\n%s\n---\n%.*s", st, msg,
			 (int)b.len, b.data);
	kc_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),	    cmocka_unit_test(test_count_and_buckets),
	    cmocka_unit_test(test_sum_two_threads), cmocka_unit_test(test_render_lines),
	    cmocka_unit_test(test_collector),	    cmocka_unit_test(test_f64),
	    cmocka_unit_test(test_promtool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
