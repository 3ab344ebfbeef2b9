# resortd — build, run, test, fuzz, bench, package.
# `make run` and `make test` install missing Debian packages first (scripts/install-deps.sh).

CC      ?= cc
PKGS    := lmdb libevent libevent_openssl libevent_pthreads libssl libcrypto libcjson sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -llmdb -levent -levent_openssl -levent_pthreads -lssl -lcrypto -lcjson -lsqlite3)
# libjwt only for the unit tests: an independent JWT producer that jose.c must agree with.
TEST_LIBS  := $(shell pkg-config --libs libjwt 2>/dev/null || echo -ljwt) -lcmocka

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CSTD    := -std=c11 -D_GNU_SOURCE
INCS    := -Iinclude $(PKG_CFLAGS)
# Debian's hardening: fortified libc calls, stack protection, full RELRO.
CFLAGS_RELEASE := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection \
                  -fcf-protection $(CSTD) $(WARN) $(INCS)
LDFLAGS_RELEASE := -Wl,-z,relro,-z,now
CFLAGS_ASAN    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                  -fno-sanitize-recover=all $(CSTD) $(WARN) $(INCS)
LDLIBS  := $(PKG_LIBS) -lpthread -lm

CORE_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
SCHEMA    := $(sort $(wildcard schema/*.sql))
GEN       := build/gen/schema_sql.c
GEN_DEMO  := build/gen/demo_json.c
HDRS      := $(wildcard include/*.h)

REL_OBJS  := $(patsubst src/%.c,build/release/%.o,$(CORE_SRCS)) build/release/schema_sql.o \
             build/release/demo_json.o
ASAN_OBJS := $(patsubst src/%.c,build/asan/%.o,$(CORE_SRCS)) build/asan/schema_sql.o \
             build/asan/demo_json.o

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,build/asan/%,$(UNIT_SRCS))

PYTEST    := /usr/bin/python3 -m pytest
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))

.PHONY: all run deps deps-test deps-bench test unit api fuzz fuzz-smoke bench deb rpm pkg-test \
        fmt check-fmt clean

all: resortd

resortd: build/release/main.o $(REL_OBJS)
	$(CC) $(CFLAGS_RELEASE) $(LDFLAGS_RELEASE) -o $@ $^ $(LDLIBS)

build/resortd-asan: build/asan/main.o $(ASAN_OBJS)
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(LDLIBS)

$(GEN_DEMO): demo/catalog.json scripts/embed-text.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-text.sh demo_catalog_json demo/catalog.json > $@

$(GEN): $(SCHEMA) scripts/embed-schema.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-schema.sh $(SCHEMA) > $@

build/release/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_RELEASE) -c -o $@ $<

build/asan/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ASAN) -c -o $@ $<

build/release/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_RELEASE) -c -o $@ $<

build/asan/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ASAN) -c -o $@ $<

build/asan/test_%: tests/unit/test_%.c $(ASAN_OBJS)
	$(CC) $(CFLAGS_ASAN) -o $@ $< $(ASAN_OBJS) $(LDLIBS) $(TEST_LIBS)

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh test

deps-bench:
	@scripts/install-deps.sh bench

run: deps
	$(MAKE) resortd
	./resortd serve --demo

test: deps-test
	$(MAKE) check-fmt
	$(MAKE) unit
	$(MAKE) api
	$(MAKE) fuzz-smoke
	$(MAKE) pkg-test

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

api: build/resortd-asan resortd
	TEST_RESORTD_BIN=$(CURDIR)/build/resortd-asan $(PYTEST) -q tests/fakes tests/oidc tests/api

build/fuzz/%: fuzz/%.c $(CORE_SRCS) $(GEN) $(GEN_DEMO) $(HDRS)
	@mkdir -p $(dir $@)
	clang-14 -g -O1 -fsanitize=fuzzer,address,undefined $(CSTD) -Iinclude $(PKG_CFLAGS) \
		-o $@ $< $(CORE_SRCS) $(GEN) $(GEN_DEMO) $(LDLIBS)

fuzz: $(patsubst %,build/fuzz/%,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus/$$t; \
		build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus/$$t fuzz/corpus/$$t; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=15

bench: deps-bench resortd
	bench/run.sh
	bench/search.sh
	bench/booking.sh
	bench/auth.sh

deb: resortd
	packaging/build-deb.sh

rpm: resortd
	packaging/build-rpm.sh

pkg-test: deb rpm
	$(PYTEST) -q tests/pkg

fmt:
	clang-format -i src/*.c include/*.h tests/unit/*.c fuzz/*.c

check-fmt:
	clang-format --dry-run --Werror src/*.c include/*.h tests/unit/*.c fuzz/*.c

clean:
	rm -rf build resortd
