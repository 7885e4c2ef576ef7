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
FW_LIBS     = $(shell $(PKG_CONFIG) --libs $(if $(STATIC),--static libuv-static,libuv)) \
              -lhttp_parser
CHECK_LIBS  = $(shell $(PKG_CONFIG) --libs check)

SRCS       := $(wildcard watchdog/*.c)
OBJS       := $(SRCS:watchdog/%.c=$(BUILD)/%.o)
LIB_OBJS   := $(filter-out $(BUILD)/main.o,$(OBJS))
UNIT_SRCS  := $(wildcard tests/unit/check_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# What `make deps` installs when missing (Debian 12 package names).
DEPS_PKGS  := make gcc libc6-dev pkg-config libuv1-dev libhttp-parser-dev \
              check python3 curl procps
DEV_PKGS   := clang valgrind wrk

SAN_FLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=all
VG         := valgrind --quiet --error-exitcode=99 --leak-check=full \
              --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
              --track-fds=no

.PHONY: all static run test check unit integration asan valgrind bench \
        install uninstall clean deps deps-dev

all: $(BUILD)/fwatchdog

$(BUILD)/fwatchdog: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) $(if $(STATIC),-static -s) -o $@ $(OBJS) $(FW_LIBS)

# A stripped, fully static binary for images (build/static/fwatchdog).
static:
	@$(MAKE) --no-print-directory BUILD=build/static STATIC=1 all
	@ls -l build/static/fwatchdog | awk '{ print "build/static/fwatchdog:", $$5, "bytes" }'

$(BUILD)/%.o: watchdog/%.c
	@mkdir -p $(@D)
	$(CC) $(FW_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

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

install: $(BUILD)/fwatchdog
	install -D -m 0755 $(BUILD)/fwatchdog $(DESTDIR)$(BINDIR)/fwatchdog

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/fwatchdog

clean:
	rm -rf build
