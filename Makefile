# commsease -- one Makefile for the module, the emulator, the specs and the demo.
# Every ?= variable can be overridden by a packager: make LUA_INCDIR=... PREFIX=...

LUA           ?= lua5.4
LUA_VERSION   ?= 5.4
LUA_INCDIR    ?= /usr/include/lua$(LUA_VERSION)
LUA_CFLAGS    ?= -I$(LUA_INCDIR)
PREFIX        ?= /usr/local
LUA_CMODDIR   ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
BINDIR        ?= $(PREFIX)/bin
CC            ?= cc
CFLAGS        ?= -O2 -g
WARN          ?= -Wall -Wextra -Werror
BUSTED        ?= $(LUA) /usr/bin/busted
BUILD         ?= build
SANITIZE      ?=
SUDO          ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)

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

ALL_CFLAGS = $(CFLAGS) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden -Isrc/core $(SANITIZE)
MOD_LIBS   = -lcurl -lcrypto -lhiredis
EMU_LIBS   = -lmicrohttpd -lcjson -lcurl -lcrypto -lhiredis -lpthread

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
LUA_LIB  ?= -llua$(LUA_VERSION)
SPECFORK = $(BUILD)/spec_fork.so

.PHONY: all deps deps-check test test-plain test-asan test-compat demo bench fuzz lint install clean \
        memcheck valgrind \
        rockspec-check jit

all: $(MODULE) $(EMULATOR)

$(BUILD)/src/lua/%.o: src/lua/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) -MMD -c $< -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -c $< -o $@

$(MODULE): $(CORE_OBJ) $(LUA_OBJ)
	$(CC) -shared $(SANITIZE) -o $@ $^ $(MOD_LIBS)

$(EMULATOR): $(CORE_OBJ) $(EMU_OBJ)
	$(CC) $(SANITIZE) -o $@ $^ $(EMU_LIBS)

# unit tests of src/core, no Lua involved
$(CORETEST): spec/c/core_test.c $(CORE_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lcjson -lcurl -lcrypto -lhiredis

# the shared rate stores (shm: across processes with kill -9, redis:// against
# a redis-server it starts on a free port)
$(STORETEST): spec/c/store_test.c $(CORE_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lcurl -lcrypto -lhiredis

# the JSON scanner against known texts and cJSON
$(JSONTEST): spec/c/json_test.c $(CORE_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lcjson -lcurl -lcrypto -lhiredis

# the fan-out scheduler on a fake clock, no Lua, no server
$(SCHEDTEST): spec/c/sched_test.c $(CORE_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lcurl -lcrypto -lhiredis

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

# The specs run twice: a plain build, then the module and the emulator built with
# AddressSanitizer and UndefinedBehaviorSanitizer.
test: deps
	$(MAKE) deps-check
	$(MAKE) lint
	$(MAKE) test-plain
	$(MAKE) test-asan
	$(MAKE) test-compat
	$(MAKE) rockspec-check

# the same sources built for Lua 5.1 and for LuaJIT (OpenResty) through
# lcms_compat.h (lua-compat-5.3), smoke-tested against the emulator
test-compat: $(EMULATOR)
	$(MAKE) build-51/commsease.so BUILD=build-51 LUA_CFLAGS="-I/usr/include/lua5.1"
	lua5.1 spec/compat/smoke.lua build-51 $(EMULATOR)
	$(MAKE) build-jit/commsease.so BUILD=build-jit \
	  LUA_CFLAGS="-I/usr/include/luajit-2.1 -I/usr/include/lua5.1"
	luajit spec/compat/smoke.lua build-jit $(EMULATOR)

# the module for LuaJIT, which the OpenResty specs load into nginx (spec/helpers_nginx.lua)
JIT_BUILD ?= build-jit
jit:
	$(MAKE) $(JIT_BUILD)/commsease.so BUILD=$(JIT_BUILD) \
	  LUA_CFLAGS="-I/usr/include/luajit-2.1 -I/usr/include/lua5.1"

rockspec-check:
	LUA=$(LUA) LUA_VERSION=$(LUA_VERSION) rockspec/check.sh

test-plain: all $(CORETEST) $(JSONTEST) $(SCHEDTEST) $(OOMTEST) $(STORETEST) $(SPECFORK) jit
	$(CORETEST)
	$(JSONTEST)
	$(SCHEDTEST)
	$(OOMTEST) $(BUILD)
	$(STORETEST)
	COMMSEASE_BUILD=$(BUILD) COMMSEASE_JIT_BUILD=$(JIT_BUILD) spec/run-busted.sh $(BUSTED)

ASAN_LIB = $(shell $(CC) -print-file-name=libasan.so)
test-asan: jit
	$(MAKE) all build-asan/core-test build-asan/json-test build-asan/sched-test \
	  build-asan/oom-test build-asan/store-test build-asan/spec_fork.so BUILD=build-asan \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
	ASAN_OPTIONS=detect_leaks=1 build-asan/core-test
	ASAN_OPTIONS=detect_leaks=1 build-asan/json-test
	ASAN_OPTIONS=detect_leaks=1 build-asan/sched-test
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=spec/c/oom_lsan.supp build-asan/oom-test build-asan
	ASAN_OPTIONS=detect_leaks=1 build-asan/store-test
	COMMSEASE_BUILD=build-asan COMMSEASE_JIT_BUILD=$(JIT_BUILD) LD_PRELOAD=$(ASAN_LIB) \
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

clean:
	rm -rf build build-asan build-fuzz build-51 build-jit
