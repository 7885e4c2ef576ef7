# fwatchdog - see README.md. The user owns CC, CFLAGS, LDFLAGS, PREFIX and
# DESTDIR; project flags live in FW_*.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
PKG_CONFIG ?= pkg-config
CFLAGS     ?= -O2 -g
BUILD      ?= build
VERSION    := 0.1.0
GIT_SHA    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

FW_CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP \
              -DFW_VERSION='"$(VERSION)"' -DFW_GIT_SHA='"$(GIT_SHA)"'
FW_LIBS     = $(if $(filter musl,$(STATIC)),$(MUSL_LIBS), \
              $(shell $(PKG_CONFIG) --libs $(if $(STATIC),--static libuv-static,libuv)) \
              -lhttp_parser)
CHECK_LIBS  = $(shell $(PKG_CONFIG) --libs check)

SRCS       := $(wildcard watchdog/*.c)
OBJS       := $(SRCS:watchdog/%.c=$(BUILD)/%.o)
LIB_OBJS   := $(filter-out $(BUILD)/main.o,$(OBJS))
UNIT_SRCS  := $(wildcard tests/unit/check_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# What `make deps` installs when missing (Debian 12 package names).
DEPS_PKGS  := make gcc libc6-dev pkg-config libuv1-dev libhttp-parser-dev \
              check python3 curl procps
DEV_PKGS   := clang valgrind wrk prometheus libclang-rt-14-dev

SAN_FLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=all
VG         := valgrind --quiet --error-exitcode=99 --leak-check=full \
              --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
              --track-fds=no

.PHONY: all static static-glibc static-musl run test check unit integration asan valgrind bench \
        install uninstall clean deps deps-dev e2e fuzz soak

all: $(BUILD)/fwatchdog

$(BUILD)/fwatchdog: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) $(if $(STATIC),$(FW_STATIC_LDFLAGS)) -o $@ $(OBJS) $(FW_LIBS)

# A stripped, fully static binary for images (build/static/fwatchdog).
# Sized for images: these come after the user's CFLAGS so they win; the
# unused functions of our objects are dropped and no unwind tables are
# kept (C without exceptions; the binary is stripped anyway).
FW_STATIC_CFLAGS   = -Os -ffunction-sections -fdata-sections \
                     -fno-asynchronous-unwind-tables -fno-unwind-tables \
                     $(if $(filter musl,$(STATIC)),$(MUSL_CPPFLAGS))
FW_STATIC_LDFLAGS := -static -s -Wl,--gc-sections -Wl,--build-id=none

# STATIC_LIBC=musl (default): linked against musl (musl-gcc), with libuv
# and http-parser compiled for it from Debian's source packages into
# build/musl/ (build-aux/musl-deps.sh, once). STATIC_LIBC=glibc (or `make
# static-glibc`): against Debian's static glibc, libuv and http-parser,
# about 0.35 MB bigger. Each is built in build/static-<libc>/ and copied to
# build/static/fwatchdog.
STATIC_LIBC ?= musl
MUSL_CC     ?= musl-gcc
MUSL_DIR    := build/musl
MUSL_CPPFLAGS = -isystem $(MUSL_DIR)/include -idirafter $(MUSL_DIR)/kinc
MUSL_LIBS     = $(MUSL_DIR)/lib/libuv.a $(MUSL_DIR)/lib/libhttp_parser.a
STATIC_PKGS_musl  := make gcc libc6-dev musl-tools dpkg-dev
STATIC_PKGS_glibc := make gcc libc6-dev pkg-config libuv1-dev libhttp-parser-dev

static: static-$(STATIC_LIBC)
	@mkdir -p build/static
	@cp build/static-$(STATIC_LIBC)/fwatchdog build/static/.fwatchdog.tmp
	@mv -f build/static/.fwatchdog.tmp build/static/fwatchdog
	@ls -l build/static/fwatchdog | awk '{ print "build/static/fwatchdog ($(STATIC_LIBC)):", $$5, "bytes" }'

static-glibc:
	@$(MAKE) --no-print-directory deps DEPS_PKGS="$(STATIC_PKGS_glibc)"
	@$(MAKE) --no-print-directory BUILD=build/static-glibc STATIC=glibc all

static-musl:
	@$(MAKE) --no-print-directory deps DEPS_PKGS="$(STATIC_PKGS_musl)"
	@$(MAKE) --no-print-directory $(MUSL_DIR)/.built
	@$(MAKE) --no-print-directory BUILD=build/static-musl STATIC=musl \
	    CC=$(MUSL_CC) all

# Objects compiled against older musl builds of libuv are rebuilt.
ifeq ($(STATIC),musl)
$(OBJS): $(MUSL_DIR)/.built
endif

$(MUSL_DIR)/.built: build-aux/musl-deps.sh
	MUSL_CC=$(MUSL_CC) MUSL_CFLAGS="$(CFLAGS) $(FW_STATIC_CFLAGS)" \
	    sh build-aux/musl-deps.sh $(MUSL_DIR)

$(BUILD)/%.o: watchdog/%.c
	@mkdir -p $(@D)
	$(CC) $(FW_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(if $(STATIC),$(FW_STATIC_CFLAGS)) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(FW_CFLAGS) -Iwatchdog $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(LIB_OBJS) $(FW_LIBS) $(CHECK_LIBS)

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d)

# Installs the build and test dependencies that are missing; silent when
# everything is there. Needs root on Debian (apt-get).
deps:
	@missing=""; for p in $(DEPS_PKGS) $(EXTRA_DEPS); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

deps-dev:
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="$(DEV_PKGS)"

run: deps
	@$(MAKE) --no-print-directory all
	@echo
	@echo "demo function (tests/demo/hello.sh) on http://127.0.0.1:8080 - try:"
	@echo "  curl -s -d 'world' http://127.0.0.1:8080/"
	@echo "Ctrl-C stops it."
	@echo
	fprocess="sh $(CURDIR)/tests/demo/hello.sh" $(BUILD)/fwatchdog

test check: deps
	@$(MAKE) --no-print-directory unit integration

unit: $(UNIT_BINS)
	@failed=""; for t in $(UNIT_BINS); do \
	    echo "== $$t"; $(TEST_WRAPPER) $$t || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "unit tests failed:$$failed"; exit 1; fi

integration: $(BUILD)/fwatchdog
	FWATCHDOG=$(CURDIR)/$(BUILD)/fwatchdog FW_WRAPPER="$(FW_WRAPPER)" \
	    python3 tests/integration/run.py $(TESTS)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="$(SAN_FLAGS)" \
	    LDFLAGS="-fsanitize=address,undefined" \
	    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    FW_SANITIZED=1 \
	    unit integration

valgrind: deps
	@$(MAKE) --no-print-directory deps EXTRA_DEPS=valgrind
	@$(MAKE) --no-print-directory BUILD=build/valgrind CFLAGS="-O1 -g" \
	    CK_FORK=no CK_TIMEOUT_MULTIPLIER=10 TEST_WRAPPER="$(VG)" \
	    FW_WRAPPER="$(VG)" FW_SLOW=1 unit integration

bench: deps
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="wrk nginx-light"
	@$(MAKE) --no-print-directory all static
	sh tests/bench/bench.sh $(CURDIR)/$(BUILD)/fwatchdog

# SOAK_REQUESTS mixed requests (fork success, failure, timeout, client
# abort, http mode), then fds, RSS and children back to their warm
# figures and no zombie; then SIGTERM under wrk load (tests/soak/).
SOAK_REQUESTS ?= 100000
soak: deps
	@$(MAKE) --no-print-directory deps EXTRA_DEPS=wrk
	@$(MAKE) --no-print-directory all
	FWATCHDOG=$(CURDIR)/$(BUILD)/fwatchdog SOAK_REQUESTS=$(SOAK_REQUESTS) \
	    python3 tests/soak/soak.py
	FWATCHDOG=$(CURDIR)/$(BUILD)/fwatchdog python3 tests/soak/sigterm_load.py

# Dockerfile.base and every template in real containers; installs podman,
# runc and mmdebstrap when missing (tests/e2e/run.sh, TEMPLATES="a b" for
# some only).
e2e: deps
	bash tests/e2e/run.sh $(TEMPLATES)

# libFuzzer targets (tests/fuzz/README.md), built with clang into
# build/fuzz/; each replays tests/fuzz/regressions/<target>/, then runs
# FUZZ_SECONDS on a copy of its seed corpus under build/fuzz/corpus/.
# FUZZ_SEED fixes libFuzzer's seed (CI's runs repeat); unset, a new one.
FUZZ_SECONDS ?= 60
FUZZ_SEED    ?=
FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_TARGETS := fuzz_request fuzz_config fuzz_proxy_response
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all
FUZZ_OBJS    := $(SRCS:watchdog/%.c=$(FUZZ_DIR)/obj/%.o)

fuzz:
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="clang libclang-rt-14-dev"
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)
	FUZZ_SEED="$(FUZZ_SEED)" \
	    sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(FUZZ_DIR)/obj/%.o: watchdog/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FW_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/obj/fuzz_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FW_CFLAGS) -Iwatchdog $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# An archive: a target's own definitions (fuzz_proxy_response's stand-in
# for upstream.c) keep the library's out of the link.
$(FUZZ_DIR)/libfw.a: $(filter-out $(FUZZ_DIR)/obj/main.o,$(FUZZ_OBJS))
	rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz_%.o $(FUZZ_DIR)/obj/fuzz_common.o \
                    $(FUZZ_DIR)/libfw.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(FW_LIBS)

.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/fuzz_common.o
-include $(wildcard $(FUZZ_DIR)/obj/*.d)

install: $(BUILD)/fwatchdog
	install -D -m 0755 $(BUILD)/fwatchdog $(DESTDIR)$(BINDIR)/fwatchdog

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/fwatchdog

clean:
	rm -rf build
