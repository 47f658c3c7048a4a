# kcache: one strict Makefile for the daemon, the tools, the BPF programs and the tests.
# Sources are found by wildcard: a new user/<folder>/x.c (into that folder's archive), tools/x.c,
# tools/bench/x.c, bpf/x.bpf.c, bench/bpf/x.bpf.c, tests/unit/<job>/test_x.c, tests/bpf/test_x.c
# or tests/integration/<job>/drv_x.c (a test driver that links the archives) is built without
# editing this file; a new folder of user/ goes into LIB_DIRS and user/LAYERS; a new fuzzer
# tests/fuzz/fuzz_x.c names its folders in FUZZ_LIBS_fuzz_x.
#
#   make            build everything into $(BUILD)       make V=1   show full commands
#   make SANITIZER=address|undefined   sanitized build into build/san-<name>

.DELETE_ON_ERROR:
# Keep skeletons and objects: they are inputs of later builds, not throwaway intermediates.
.SECONDARY:
.SUFFIXES:
SHELL := /bin/bash

SANITIZER ?=
ifeq ($(SANITIZER),)
BUILD ?= build
else
BUILD ?= build/san-$(SANITIZER)
endif

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
ifeq ($(origin CC),default)
CC := gcc
endif
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
FUZZ_RUNS ?= 10000000
FUZZ_SECONDS ?= 1800

V ?= 0
ifeq ($(V),0)
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
else
Q :=
msg =
endif

PKGS := libbpf libelf zlib libevent libevent_pthreads libevent_openssl yaml-0.1 libcrypto libssl \
	hiredis libxxhash libzstd libcurl
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter
CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -fno-strict-aliasing -pthread \
	-Iinclude -Iuser -I$(BUILD)/skel $(PKG_CFLAGS) -MMD -MP
LDLIBS := $(PKG_LIBS) -pthread -lm
ifneq ($(SANITIZER),)
override CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZER)
endif

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-Iinclude -Ibpf -Ivmlinux/$(ARCH)

# --- sources -------------------------------------------------------------------------------
# BPF: the product's programs (bpf/), the benches' (bench/bpf/) and the tests' helpers
# (tests/lib/); every object lands in $(BUILD)/bpf/ whatever its folder.
BPF_DIRS := bpf bench/bpf tests/lib
BPF_SRCS := $(foreach d,$(BPF_DIRS),$(wildcard $(d)/*.bpf.c))
SKELS := $(patsubst %.bpf.c,$(BUILD)/skel/%.skel.h,$(notdir $(BPF_SRCS)))
BPF_HDRS := $(wildcard bpf/*.h include/kcache/*.h)

# Userspace: one archive per folder of user/ (user/LAYERS says which may include which);
# user/kcached.c and user/server.c, the composition root, link them all.
LIB_DIRS := core mem serve tiers tiers/redis tiers/store tiers/journal kernel audit netpol client
lib_srcs = $(wildcard user/$(1)/*.c)
lib_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call lib_srcs,$(1)))
lib_a = $(foreach d,$(1),$(BUILD)/lib/$(d).a)
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(call lib_srcs,$(d)))
# Link order: callers before callees, so each archive resolves from those after it.
DAEMON_LIBS := $(call lib_a,serve tiers tiers/journal tiers/store kernel audit tiers/redis \
	netpol mem core)
ALL_LIBS := $(call lib_a,client) $(DAEMON_LIBS)
ROOT_OBJS := $(BUILD)/obj/user/server.o
# A job's objects wait only for their own skeleton; the root, tools and tests for all.
$(call lib_objs,kernel): | $(BUILD)/skel/cache.skel.h
$(call lib_objs,netpol): | $(BUILD)/skel/policy.skel.h
$(call lib_objs,audit): | $(BUILD)/skel/audit.skel.h

TOOL_SRCS := $(wildcard tools/*.c)
TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(TOOL_SRCS))
# kcache-bench: tools/bench/kcache-bench.c and its engine, over core/ only.
BENCH_SRCS := $(wildcard tools/bench/*.c)
BENCH_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(BENCH_SRCS))
$(BENCH_OBJS): | $(BUILD)/skel/bench_txgen.skel.h
UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNITS := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(UNIT_SRCS)))
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFTS := $(patsubst tests/bpf/test_%.c,$(BUILD)/tests/bpf_%,$(BPFT_SRCS))
TLIB_SRCS := $(filter-out %.bpf.c,$(wildcard tests/lib/*.c))
TLIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TLIB_SRCS))
# Drivers of integration tests that link the library (built for sanitized builds too).
DRV_SRCS := $(wildcard tests/integration/*/drv_*.c)
DRVS := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(DRV_SRCS)))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
$(ROOT_OBJS) $(BUILD)/obj/user/kcached.o $(patsubst %.c,$(BUILD)/obj/%.o,$(TOOL_SRCS) \
	$(UNIT_SRCS) $(BPFT_SRCS) $(TLIB_SRCS) $(DRV_SRCS)): | $(SKELS)

.PHONY: all deps run test test-unit test-bpf test-integration bench check check-layers \
	check-circles format fuzz clean help vmlinux check-vmlinux
all: $(BUILD)/kcached $(TOOLS) $(BUILD)/kcache-bench $(UNITS) $(BPFTS) $(DRVS) \
	$(BUILD)/bpf/audit_floor.bpf.o

help:
	@echo "kcache make targets:"
	@echo "  make            build kcached, kcachectl, kcache-bench, BPF objects and tests into $(BUILD)/"
	@echo "  make deps       install the Debian packages for build, tests and benches (root)"
	@echo "  make run        deps + build, then run kcached on embedded defaults (root)"
	@echo "  make test       deps + build, then run every test (unit, bpf, integration), the"
	@echo "                  unit and protocol tests also under ASan and UBSan (SAN_TESTS=0: not)"
	@echo "  make bench      run the side-by-side benchmarks in bench/"
	@echo "  make check      clang-format, static analysis (clang-tidy, cppcheck), the layering"
	@echo "                  rule (user/LAYERS), call circles between files, vmlinux.h drift"
	@echo "  make fuzz       build the libFuzzer targets, run each FUZZ_RUNS=$(FUZZ_RUNS) times"
	@echo "  make vmlinux    regenerate vmlinux/$(ARCH)/vmlinux.h from this kernel's BTF"
	@echo "  make clean      remove build/"
	@echo "Variables: V=1 (full commands), SANITIZER=address|undefined, BUILD=dir"

deps:
	$(Q)tools/deps.sh

# --- BPF: vmlinux.h -> object -> skeleton ---------------------------------------------------
define bpf_rule
$(BUILD)/bpf/%.bpf.o: $(1)/%.bpf.c $(BPF_HDRS) vmlinux/$(ARCH)/vmlinux.h
	$$(call msg,BPF,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$$(CLANG) $$(BPF_CFLAGS) -c $$< -o $$@
endef
$(foreach d,$(BPF_DIRS),$(eval $(call bpf_rule,$(d))))

# The policy's token buckets and deny reports use compare-and-swap and exchange (BPF ISA v3).
$(BUILD)/bpf/policy.bpf.o: BPF_CFLAGS += -mcpu=v3

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# --- userspace ------------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

define lib_rule
$(BUILD)/lib/$(1).a: $(call lib_objs,$(1))
	$$(call msg,AR,$$@)
	$(Q)mkdir -p $$(@D) && rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach d,$(LIB_DIRS),$(eval $(call lib_rule,$(d))))

$(BUILD)/kcached: $(BUILD)/obj/user/kcached.o $(ROOT_OBJS) $(DAEMON_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# kcachectl: the client folder and what it needs, never the daemon's front doors or tiers.
$(BUILD)/kcachectl: $(BUILD)/obj/tools/kcachectl.o $(call lib_a,client audit netpol core)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kcache-bench: $(BENCH_OBJS) $(call lib_a,core)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Tests link every archive; the linker takes only the objects they use.
TEST_LIBS := $(ALL_LIBS)
define test_rule
$(BUILD)/tests/$(2): $(BUILD)/obj/$(1:.c=.o) $(3) $(TEST_LIBS)
	$$(call msg,LD,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) $(4)
endef
# tests/unit/bench tests kcache-bench's engine, which is in no archive.
$(BUILD)/tests/test_bench_raw: $(BUILD)/obj/tools/bench/bench_raw.o
$(foreach s,$(UNIT_SRCS),$(eval $(call test_rule,$(s),$(basename $(notdir $(s))),$(TLIB_OBJS),-lcmocka)))
$(foreach s,$(BPFT_SRCS),$(eval $(call test_rule,$(s),$(patsubst test_%,bpf_%,$(basename $(notdir $(s)))),$(TLIB_OBJS),-lcmocka)))
$(foreach s,$(DRV_SRCS),$(eval $(call test_rule,$(s),$(basename $(notdir $(s))),,)))

# --- fuzzing: clang + libFuzzer, the library rebuilt with coverage ---------------------------
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -pthread -Iinclude -Iuser -I$(BUILD)/skel \
	$(PKG_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer

$(BUILD)/fuzz/obj/%.o: %.c | $(SKELS)
	$(call msg,CLANG,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@

define fuzz_lib_rule
$(BUILD)/fuzz/lib/$(1).a: $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(call lib_srcs,$(1)))
	$$(call msg,AR,$$@)
	$(Q)mkdir -p $$(@D) && rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach d,$(LIB_DIRS),$(eval $(call fuzz_lib_rule,$(d))))

# Each fuzzer links only the folders it fuzzes (and what those call).
FUZZ_LIBS_fuzz_audit_policy := audit core
FUZZ_LIBS_fuzz_blob := tiers mem core
FUZZ_LIBS_fuzz_journal := tiers/journal core
FUZZ_LIBS_fuzz_net_policy := netpol core
FUZZ_LIBS_fuzz_proto := serve tiers tiers/journal tiers/store tiers/redis mem core
FUZZ_LIBS_fuzz_redis_url := tiers/redis core
FUZZ_LIBS_fuzz_store_obj := tiers/store core
.SECONDEXPANSION:
$(BUILD)/fuzz/%: tests/fuzz/%.c $$(foreach d,$$(FUZZ_LIBS_$$*),$(BUILD)/fuzz/lib/$$(d).a)
	$(call msg,FUZZ,$@)
	$(Q)test -n "$(FUZZ_LIBS_$*)" || { echo "Makefile: FUZZ_LIBS_$* is not set" >&2; exit 1; }
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: $(FUZZERS)
	$(Q)for f in $(FUZZERS); do \
		n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		cp -n tests/fuzz/corpus/$$n/* $(BUILD)/fuzz/corpus-$$n/ 2>/dev/null || true; \
		echo "fuzz: $$n for $(FUZZ_RUNS) runs (at most $(FUZZ_SECONDS)s)"; \
		$$f -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(BUILD)/fuzz/corpus-$$n \
			2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|crash' ; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# --- the two commands -----------------------------------------------------------------------
run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(BUILD)/kcached --iface lo --xdp-mode skb $(RUN_ARGS)

# The suite runs on the normal build; unit tests and the protocol integration tests run again
# on ASan and UBSan builds (SAN_TESTS=0 skips those, for a quick local run).
SAN_TESTS ?= 1
SAN_BUILDS := $(if $(filter 1,$(SAN_TESTS)),build/san-address build/san-undefined)
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)for san in $(patsubst build/san-%,%,$(SAN_BUILDS)); do \
		$(MAKE) --no-print-directory SANITIZER=$$san all || exit 1; done
	$(Q)BUILD=$(BUILD) KC_SAN_BUILDS="$(SAN_BUILDS)" tests/run.sh $(TESTS)

test-unit test-bpf test-integration: all
	$(Q)BUILD=$(BUILD) tests/run.sh $(patsubst test-%,%,$@)

bench: all
	$(Q)for b in bench/*.sh; do echo "== $$b"; BUILD=$(BUILD) $$b || exit 1; done

# --- hygiene --------------------------------------------------------------------------------
# clang-tidy gets the preprocessor flags only, one file per run (clang-tidy 14's va_list
# checker misfires across files in one run); warnings inside generated skeletons are not ours.
TIDY_FLAGS = -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser -I$(BUILD)/skel $(PKG_CFLAGS)
C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^vmlinux/')
check: all check-vmlinux check-layers check-circles
	$(call msg,FORMAT,clang-format --dry-run)
	$(Q)clang-format --dry-run --Werror $(C_FILES)
	$(call msg,TIDY,clang-tidy)
	$(Q)printf '%s\n' $(filter user/%.c tools/%.c,$(C_FILES)) \
		| xargs -P2 -I{} clang-tidy --quiet {} -- $(TIDY_FLAGS) 2>&1 \
		| grep -E 'warning:|error:' | grep -v '^$(BUILD)/skel/' && exit 1 || true
	$(call msg,CPPCHECK,cppcheck)
	$(Q)cppcheck -q --error-exitcode=1 --enable=warning,portability --inline-suppr \
		-Iinclude -Iuser --suppress=missingIncludeSystem user tools

# The layering rule: user/LAYERS says which folder may include which.
check-layers:
	$(call msg,LAYERS,tools/check-layers.sh)
	$(Q)tools/check-layers.sh

format:
	$(Q)clang-format -i $(C_FILES)

vmlinux:
	$(Q)tools/gen-vmlinux.sh vmlinux/$(ARCH)/vmlinux.h

# Files that call each other in a circle (outside tiers/redis), from nm of the archives.
check-circles: all
	$(Q)BUILD=$(BUILD) tools/check-circles.sh

check-vmlinux:
	$(Q)tools/gen-vmlinux.sh --check vmlinux/$(ARCH)/vmlinux.h

clean:
	$(Q)rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
