/* fuzz_proto: libFuzzer target for the memcached text protocol (classic and meta commands).
 *
 * The input is split at a fuzzer-chosen point into two reads, as TCP would deliver it, and
 * run through kc_proto_process against a small real memory tier, so parsing, execution,
 * swallowing of oversized values and the "need more input" path are all exercised. The same
 * bytes are also run as one UDP datagram. Invariants: never consume more than given, make
 * progress on complete lines, and the tier never exceeds its capacity. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "serve/proto_text.h"

static struct kc_mem *mem;
static struct kc_stats *stats;
static struct kc_proto_env env;

static void run(const char *data, size_t len, size_t split, enum kc_proto proto)
{
	struct kc_proto_conn c = {.env = &env, .stats = stats, .proto = proto};
	struct kc_buf in = {0}, out = {0};
	size_t pos = 0;

	/* Deliver the first part, then the rest, keeping unconsumed bytes as a connection does. */
	for (int part = 0; part < 2 && !c.close; part++) {
		size_t end = part == 0 ? split : len;

		kc_buf_append(&in, data + pos, end - pos);
		pos = end;
		for (;;) {
			size_t avail = kc_buf_avail(&in);
			size_t used = kc_proto_process(&c, kc_buf_head(&in), avail, &out, 4096);

			assert(used <= avail);
			kc_buf_consume(&in, used);
			out.len = out.off = 0; /* "sent" */
			if (used == 0 || c.close)
				break;
		}
	}
	kc_buf_free(&in);
	kc_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_mem_stats ms;

	if (!mem) {
		mem = kc_mem_new(1 << 20, 64 << 10);
		stats = kc_stats_new();
		env = (struct kc_proto_env){
		    .mem = mem, .item_max = 64 << 10, .threads = 1, .memory_limit = 1 << 20};
	}
	if (size == 0)
		return 0;
	size_t split = data[0] % (size + 1);

	run((const char *)data + 1, size - 1, split > size - 1 ? size - 1 : split, KC_PROTO_TCP);
	run((const char *)data + 1, size - 1, size - 1, KC_PROTO_UDP);
	kc_mem_stats(mem, &ms);
	assert(ms.bytes <= ms.capacity);
	return 0;
}
