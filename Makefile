# commsease -- one Makefile for the module, the emulator, the specs and the demo.
# Every ?= variable can be overridden by a packager: make LUA_VERSION=5.3 PREFIX=/usr ...
# Compiler and library flags come from pkg-config; nothing below names a Debian path
# that a variable cannot replace.

# the Lua the module is built for (`make`, `make install`); lua5.1 .. lua5.4 on Debian
LUA_VERSION   ?= 5.4
LUA           ?= lua$(LUA_VERSION)
# pkg-config name of that Lua's headers (luajit for LuaJIT, with LUA_VERSION=5.1)
LUA_PC        ?= lua$(LUA_VERSION)
# LUA_INCDIR set: -I$(LUA_INCDIR) instead of asking pkg-config
LUA_INCDIR    ?=
# lua-compat-5.3's compat-5.3.h and .c, needed below Lua 5.3 (Debian: lua-compat53-dev)
COMPAT53_ROOT ?= /usr/include
COMPAT53_INCDIR ?= $(COMPAT53_ROOT)/lua$(LUA_VERSION)
PKG_CONFIG    ?= pkg-config
PREFIX        ?= /usr/local
LUA_CMODDIR   ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
BINDIR        ?= $(PREFIX)/bin
CC            ?= cc
CFLAGS        ?= -O2 -g
WARN          ?= -Wall -Wextra
# DEV=1 (CI, make test and every spec run) turns warnings into errors
DEV           ?=
BUSTED        ?= $(LUA) /usr/bin/busted
BUILD         ?= build
SANITIZE      ?=
SUDO          ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)

pkg = $(shell $(PKG_CONFIG) $1 2>/dev/null)
LUA_CFLAGS    ?= $(if $(LUA_INCDIR),-I$(LUA_INCDIR),$(call pkg,--cflags $(LUA_PC))) \
                 $(if $(filter 5.1 5.2,$(LUA_VERSION)),-I$(COMPAT53_INCDIR))
CURL_CFLAGS   ?= $(call pkg,--cflags libcurl)
CURL_LIBS     ?= $(call pkg,--libs libcurl)
CRYPTO_CFLAGS ?= $(call pkg,--cflags libcrypto)
CRYPTO_LIBS   ?= $(call pkg,--libs libcrypto)
MHD_CFLAGS    ?= $(call pkg,--cflags libmicrohttpd)
MHD_LIBS      ?= $(call pkg,--libs libmicrohttpd)
CJSON_CFLAGS  ?= $(call pkg,--cflags libcjson)
CJSON_LIBS    ?= $(call pkg,--libs libcjson)
HIREDIS_CFLAGS ?= $(call pkg,--cflags hiredis)
HIREDIS_LIBS  ?= $(call pkg,--libs hiredis)
# for the C tests that embed Lua (spec/c/oom_test.c)
LUA_LIB       ?= $(call pkg,--libs $(LUA_PC))
# asked once per make run, not once per object
LUA_CFLAGS    := $(LUA_CFLAGS)
CURL_CFLAGS   := $(CURL_CFLAGS)
CURL_LIBS     := $(CURL_LIBS)
CRYPTO_CFLAGS := $(CRYPTO_CFLAGS)
CRYPTO_LIBS   := $(CRYPTO_LIBS)
MHD_CFLAGS    := $(MHD_CFLAGS)
MHD_LIBS      := $(MHD_LIBS)
CJSON_CFLAGS  := $(CJSON_CFLAGS)
CJSON_LIBS    := $(CJSON_LIBS)
HIREDIS_CFLAGS := $(HIREDIS_CFLAGS)
HIREDIS_LIBS  := $(HIREDIS_LIBS)
LUA_LIB       := $(LUA_LIB)

# The runtimes `make test` runs the whole busted suite on, each from its own build dir
# (build-5.1, ..., build-jit; the default LUA_VERSION uses $(BUILD)).  jit is whatever
# $(LUAJIT) is: OpenResty's luajit2 on Debian (make deps installs it), or upstream's.
# LUAS="5.4 jit" picks a subset.
LUAS          ?= 5.1 5.2 5.3 5.4 jit
LUAJIT        ?= luajit
LUAJIT_PC     ?= luajit
rt_lua        = $(if $(filter jit,$1),$(LUAJIT),lua$1)
rt_version    = $(if $(filter jit,$1),5.1,$1)
rt_pc         = $(if $(filter jit,$1),$(LUAJIT_PC),lua$1)
rt_build      = $(if $(filter $(LUA_VERSION),$1),$(BUILD),build-$1)
rt_cflags     = $(call pkg,--cflags $(call rt_pc,$1)) \
                $(if $(filter 5.1 5.2 jit,$1),-I$(COMPAT53_ROOT)/lua$(call rt_version,$1))

# Debian packages the project needs: make deps installs the missing ones and never
# removes a package (.ci/deps).  LuaJIT is not listed: .ci/deps adds OpenResty's
# luajit2 + libluajit2-5.1-dev (what libnginx-mod-http-lua links), or upstream's
# luajit + libluajit-5.1-dev where that one is installed; the two pairs conflict.
DEB_PACKAGES = gcc libc6-dev pkg-config \
               lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
               lua5.4 liblua5.4-dev lua-compat53-dev \
               lua-cjson lua-busted lua-socket lua-posix lua-check luarocks \
               libcurl4-openssl-dev libssl-dev libcjson-dev libmicrohttpd-dev libhiredis-dev \
               nginx libnginx-mod-http-lua lua-resty-core redis-server \
               clang libclang-rt-14-dev valgrind openssl

CORE_SRC = $(wildcard src/core/*.c)
LUA_SRC  = $(wildcard src/lua/*.c)
EMU_SRC  = $(wildcard src/emulator/*.c)

ALL_CFLAGS = $(CFLAGS) $(WARN) $(if $(filter 1,$(DEV)),-Werror) -std=gnu11 -fPIC \
             -fvisibility=hidden -Isrc/core $(CURL_CFLAGS) $(CRYPTO_CFLAGS) $(HIREDIS_CFLAGS) \
             $(SANITIZE)
EMU_CFLAGS = $(MHD_CFLAGS) $(CJSON_CFLAGS)
CORE_LIBS  = $(CURL_LIBS) $(CRYPTO_LIBS) $(HIREDIS_LIBS)
MOD_LIBS   = $(CORE_LIBS)
EMU_LIBS   = $(MHD_LIBS) $(CJSON_LIBS) $(CORE_LIBS) -lpthread

CORE_OBJ = $(CORE_SRC:%.c=$(BUILD)/%.o)
LUA_OBJ  = $(LUA_SRC:%.c=$(BUILD)/%.o)
EMU_OBJ  = $(EMU_SRC:%.c=$(BUILD)/%.o)

MODULE   = $(BUILD)/commsease.so
EMULATOR = $(BUILD)/commsease-emulator
CORETEST = $(BUILD)/core-test
JSONTEST = $(BUILD)/json-test
STORETEST = $(BUILD)/store-test
SCHEDTEST = $(BUILD)/sched-test
OOMTEST  = $(BUILD)/oom-test
SPECFORK = $(BUILD)/spec_fork.so

# what the busted specs need besides the module and the emulator in $(BUILD); built
# for every runtime (Lua C modules get $(LUA_CFLAGS)); jit: the LuaJIT module that
# the OpenResty specs load into nginx
SPEC_NEEDS = $(SPECFORK) jit
# the C unit tests (spec/c), run by test-c once per build flavour (plain, ASan)
C_TESTS    = $(CORETEST) $(JSONTEST) $(SCHEDTEST) $(OOMTEST) $(STORETEST)
# what `make test` runs, in order (each step runs even when an earlier one failed)
TEST_STEPS = deps-check lint summary-check test-c test-luas test-asan rockspec-check

.PHONY: all deps deps-check test test-plain test-c test-busted test-luas test-asan \
        demo bench fuzz fuzz-prepare lint install clean rockspec-check memcheck valgrind jit summary-check FORCE

all: $(MODULE) $(EMULATOR)

FORCE:

# every object depends on the flags it was built with: a build dir built without
# DEV=1 (or for another Lua) is rebuilt, not reused
FLAGS_STAMP = $(BUILD)/flags.txt
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) $(EMU_CFLAGS)' | cmp -s - $@ || \
	  echo '$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) $(EMU_CFLAGS)' > $@

$(BUILD)/src/lua/%.o: src/lua/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) -MMD -c $< -o $@

$(BUILD)/src/emulator/%.o: src/emulator/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(EMU_CFLAGS) -MMD -c $< -o $@

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -c $< -o $@

$(MODULE): $(CORE_OBJ) $(LUA_OBJ)
	$(CC) -shared $(SANITIZE) -o $@ $^ $(MOD_LIBS)

$(EMULATOR): $(CORE_OBJ) $(EMU_OBJ)
	$(CC) $(SANITIZE) -o $@ $^ $(EMU_LIBS)

# unit tests of src/core, no Lua involved
$(CORETEST): spec/c/core_test.c $(CORE_OBJ)
	$(CC) $(ALL_CFLAGS) $(CJSON_CFLAGS) -o $@ $^ $(CJSON_LIBS) $(CORE_LIBS)

# the shared rate stores (shm: across processes with kill -9, redis:// against
# a redis-server it starts on a free port)
$(STORETEST): spec/c/store_test.c $(CORE_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CORE_LIBS)

# the JSON scanner against known texts and cJSON
$(JSONTEST): spec/c/json_test.c $(CORE_OBJ)
	$(CC) $(ALL_CFLAGS) $(CJSON_CFLAGS) -o $@ $^ $(CJSON_LIBS) $(CORE_LIBS)

# the fan-out scheduler on a fake clock, no Lua, no server
$(SCHEDTEST): spec/c/sched_test.c $(CORE_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CORE_LIBS)

# the binding under memory failure: Lua embedded with a failing allocator (test-only)
$(OOMTEST): spec/c/oom_test.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) -o $@ $< $(LUA_LIB)

# fork() for spec/41-fork_spec.lua on Lua 5.4 (Debian's lua-posix stops at 5.3); test-only
$(SPECFORK): spec/c/spec_fork.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) -shared -o $@ $<

-include $(CORE_OBJ:.o=.d) $(LUA_OBJ:.o=.d) $(EMU_OBJ:.o=.d)

deps:
	@SUDO="$(SUDO)" .ci/deps $(DEB_PACKAGES)

# proof that make deps removes nothing here: apt-get install -s of the whole list
deps-check:
	@.ci/deps --check $(DEB_PACKAGES)

# Everything CI runs (.ci/run): the package check, luacheck, the C unit tests, the whole
# busted suite on every runtime in LUAS, the suite again on 5.4 under ASan/UBSan, and
# the rockspec; -Werror throughout.  Ends with one line per busted run and the time.
# Each run's line goes to $(TEST_SUMMARY) (spec/run-busted.sh appends it); a step that
# should have run busted and did not (its build failed) gets a line saying so, so the
# summary never leaves a run out in silence.
TEST_DEV ?= 1
TEST_SUMMARY_FILE = $(CURDIR)/$(BUILD)/busted-summary.txt
test: deps
	@start=$$(date +%s); failed=""; \
	mkdir -p $(BUILD); TEST_SUMMARY="$(TEST_SUMMARY_FILE)"; export TEST_SUMMARY; \
	: > "$$TEST_SUMMARY"; \
	for step in $(TEST_STEPS); do \
	  before=$$(wc -l < "$$TEST_SUMMARY"); \
	  $(MAKE) --no-print-directory $$step DEV=$(TEST_DEV) || failed="$$failed $$step"; \
	  case $$step in test-busted|test-asan) \
	    [ "$$(wc -l < "$$TEST_SUMMARY")" -gt "$$before" ] || \
	      printf '%-40s %s\n' "$$step:" "busted did not run (a build or an earlier command failed)" \
	        >> "$$TEST_SUMMARY";; \
	  esac; \
	done; \
	echo "== make test: the busted runs"; \
	if [ -s "$$TEST_SUMMARY" ]; then cat "$$TEST_SUMMARY"; else echo "(none in TEST_STEPS)"; fi; \
	echo "== make test: $$(( $$(date +%s) - start )) s$${failed:+, FAILED:$$failed}"; \
	[ -z "$$failed" ]

# the summary above, checked: make test run with a stand-in busted (spec/make_summary_check.sh)
summary-check:
	spec/make_summary_check.sh

# what an engineer runs before landing: the C unit tests and the suite on $(LUA)
test-plain: test-c test-busted

test-c: $(C_TESTS) $(MODULE)
	$(CORETEST)
	$(JSONTEST)
	$(SCHEDTEST)
	$(OOMTEST) $(BUILD)
	$(STORETEST)

# the busted suite on $(LUA) against $(BUILD)
export LUA_NAME = local j = rawget(_G, "jit"); print(j and j.version .. \
  (pcall(require, "table.isempty") and ", OpenResty's luajit2" or ", upstream") or _VERSION)
test-busted: all $(SPEC_NEEDS)
	@echo "== busted on $(LUA) ($$($(LUA) -e "$$LUA_NAME")), build dir $(BUILD)"
	COMMSEASE_BUILD=$(BUILD) COMMSEASE_JIT_BUILD=$(JIT_BUILD) BUSTED_LABEL="$(LUA) $(BUILD)" \
	  spec/run-busted.sh $(BUSTED)

# the same sources built for each runtime through src/lua/lcms_compat.h and the whole
# suite run on it; every runtime runs, and the target fails if any failed
test-luas:
	@failed=""; for v in $(LUAS); do \
	  before=$$([ -n "$$TEST_SUMMARY" ] && wc -l < "$$TEST_SUMMARY"); \
	  $(MAKE) --no-print-directory test-lua-$$v || failed="$$failed $$v"; \
	  if [ -n "$$TEST_SUMMARY" ] && [ "$$(wc -l < "$$TEST_SUMMARY")" -le "$$before" ]; then \
	    printf '%-40s %s\n' "test-lua-$$v:" "busted did not run (a build or an earlier command failed)" \
	      >> "$$TEST_SUMMARY"; \
	  fi; \
	done; [ -z "$$failed" ] || { echo "test-luas: FAILED on:$$failed"; exit 1; }

RT_VARS = LUA_VERSION=$(call rt_version,$1) LUA=$(call rt_lua,$1) LUA_PC=$(call rt_pc,$1) \
	  BUILD=$(call rt_build,$1) BUSTED="$(call rt_lua,$1) /usr/bin/busted" \
	  LUA_CFLAGS="$(call rt_cflags,$1)" LUA_LIB="$(call pkg,--libs $(call rt_pc,$1))"
test-lua-%:
	@$(MAKE) --no-print-directory test-busted $(call RT_VARS,$*)

# the module for LuaJIT, which the OpenResty specs load into nginx (spec/helpers_nginx.lua);
# the same build dir and flags as test-lua-jit
JIT_BUILD ?= $(call rt_build,jit)
jit:
	@$(MAKE) --no-print-directory $(JIT_BUILD)/commsease.so $(call RT_VARS,jit) BUILD=$(JIT_BUILD)

rockspec-check:
	LUA=$(LUA) LUA_VERSION=$(LUA_VERSION) rockspec/check.sh

# the module, the emulator and the C tests built with AddressSanitizer and
# UndefinedBehaviorSanitizer, and the whole suite on $(LUA) (5.4) against them
ASAN_LIB = $(shell $(CC) -print-file-name=libasan.so)
ASAN_BUILD = $(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
test-asan: jit
	$(ASAN_BUILD) all build-asan/core-test build-asan/json-test build-asan/sched-test \
	  build-asan/oom-test build-asan/store-test build-asan/spec_fork.so
	ASAN_OPTIONS=detect_leaks=1 build-asan/core-test
	ASAN_OPTIONS=detect_leaks=1 build-asan/json-test
	ASAN_OPTIONS=detect_leaks=1 build-asan/sched-test
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=spec/c/oom_lsan.supp build-asan/oom-test build-asan
	ASAN_OPTIONS=detect_leaks=1 build-asan/store-test
	COMMSEASE_BUILD=build-asan COMMSEASE_JIT_BUILD=$(JIT_BUILD) LD_PRELOAD=$(ASAN_LIB) \
	  BUSTED_LABEL="$(LUA) build-asan (ASan/UBSan)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  spec/run-busted.sh $(BUSTED)

# the C unit tests and the whole busted suite under valgrind memcheck: a memory
# error or a byte definitely or indirectly lost fails it (spec/memcheck.sh sums the
# figures of every process; spec/valgrind.supp holds the only suppressions)
memcheck: all $(CORETEST) $(SCHEDTEST) $(SPECFORK)
	spec/memcheck.sh $(BUILD) $(BUSTED)
valgrind: memcheck

# client CPU per request and req/s against one loopback server, side by side
# with plain C and pure Lua; see bench/README.md
bench: deps all jit
	$(LUA) bench/run.lua

demo: deps all
	@$(LUA) examples/run-demo.lua $(EMULATOR)

install: $(MODULE) $(EMULATOR)
	install -d $(DESTDIR)$(LUA_CMODDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(MODULE) $(DESTDIR)$(LUA_CMODDIR)/commsease.so
	install -m 0755 $(EMULATOR) $(DESTDIR)$(BINDIR)/commsease-emulator

# luacheck (Debian: lua-check) over the Lua of specs, examples and the bench
lint:
	luacheck spec examples bench rockspec src/lua/commsease

# libFuzzer targets (clang) for src/core and the emulator's request checks;
# slow, so not part of `make test`
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) spec/fuzz/run.sh

# the differential fuzz of client:prepare: the same random params through $(BUILD)
# (Lua 5.4: lua_next walks) and $(JIT_BUILD) (LuaJIT: counted by table.nkeys),
# FUZZ_CASES of them from FUZZ_SEED, compared (about 20 s a 100,000 cases); not in `make test`
FUZZ_CASES ?= 200000
FUZZ_SEED ?= 1
fuzz-prepare: all jit
	COMMSEASE_BUILD=$(BUILD) COMMSEASE_JIT_BUILD=$(JIT_BUILD) LUA=$(LUA) \
	  $(LUA) spec/fuzz/prepare_diff.lua $(FUZZ_CASES) $(FUZZ_SEED)

clean:
	rm -rf build build-*
