# flaxkv - a persistent dictionary for SQLite, stored in LMDB.
#
#   make            build build/flaxkv.so
#   make run        build, then run the quick start (sql/quickstart.sql) in the sqlite3 shell
#   make check      the quick subset of the suite (CHECK_TESTS below: plain build, no
#                   sanitizers, under a minute); ends with "N passed, N failed, N skipped"
#   make test       build and run the whole suite (tests/run.sh): every test program plain and
#                   under ASan+UBSan, the threaded ones under TSan, the scripts, the fuzzer
#                   for 20 s; ends with "N passed, N failed, N skipped"
#   make asan       build the AddressSanitizer + UBSan variant (build/asan/)
#   make tsan       build the ThreadSanitizer variant (build/tsan/)
#   make fuzz       run the decoders' libFuzzer target for FUZZ_SECONDS (30)
#   make bench      build and run the benchmark (see its section below)
#   make format     rewrite ext/ in the style of .clang-format
#   make lint       check that style, then -Wall -Wextra -Wshadow -Werror and cppcheck on ext/
#   make analyze    clang's static analyzer on ext/ (slow: about a minute)
#   make install    copy build/flaxkv.so to $(DESTDIR)$(PREFIX)/lib (PREFIX=/usr/local), and
#                   the Python package flaxkv_sqlite where /usr/bin/python3 imports it
#   make uninstall  remove them
#   make clean      remove build/
#   make print-tests  the lists of tests below, as tests/run.sh reads them
#
# One case of a test program runs alone: build/test_sql 3.14 (build/test_sql --list
# lists the cases); randomized programs take --seed S.
#
# Variables (make VAR=value):
#   CC        the C compiler (cc), for everything but the fuzzer (clang)
#   CFLAGS    optimisation and debugging flags (-O2 -g); replacing them keeps the
#             project's own flags (WARN, -std, -fPIC, the sanitizers, ...)
#   XCFLAGS   extra flags added to every compile, after all others (e.g. -DNDEBUG)
#   CPPFLAGS, LDFLAGS   as usual
#   PREFIX, LIBDIR, DESTDIR   where make install copies flaxkv.so
#   PYTHON, PYDIR   the Python whose site directory (PYDIR) gets flaxkv_sqlite
#   JOBS      how many builds make test runs at once (the number of cores)
#   N, BENCH_ARGS, PY_BENCH_ARGS, ETCD_N, ETCD_BENCH_ARGS   make bench's size and options
#             (C, Python, etcd);  FUZZ_SECONDS   make fuzz's time
#
# Each build target first checks the Debian packages it needs (scripts/deps.sh MODE:
# build for make, check, install, asan, tsan and bench; run, test, fuzz for those):
# as root it installs the missing ones, as another user it prints the apt-get
# command and stops.

CC      ?= cc
CFLAGS  ?= -O2 -g
XCFLAGS ?=
WARN     = -Wall -Wextra
LIBS     = -llmdb -lmsgpackc -ljansson -lzstd -lcurl -lpthread -lm

# The version, in one place: the file VERSION, returned by flaxkv_version().
VERSION := $(shell cat VERSION)

# The extension: every room of ext/.
SRC = ext/util.c ext/codec.c ext/compress.c ext/msgpack_fmt.c ext/format.c ext/memtable.c \
      ext/store_lmdb.c ext/store_etcd.c ext/etcd.c ext/buffer.c ext/view.c ext/iter.c ext/txn.c \
      ext/options.c ext/plan.c ext/conn.c ext/update.c ext/vtab.c ext/flaxkv.c
HDR = $(wildcard ext/*.h)
# Test programs link these rooms directly (SQLITE_CORE: no extension API table);
# the SQL tests load the extension itself (hidden symbols: no clash).
UNIT = ext/util.c ext/codec.c ext/msgpack_fmt.c ext/memtable.c ext/store_lmdb.c ext/store_etcd.c \
       ext/etcd.c ext/buffer.c ext/view.c ext/iter.c ext/txn.c

EXT_CFLAGS  = $(CPPFLAGS) $(CFLAGS) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden -pthread \
              -DFLAXKV_VERSION='"$(VERSION)"'
TEST_CFLAGS = $(CPPFLAGS) $(CFLAGS) $(WARN) -std=gnu11 -pthread -DSQLITE_CORE -Iext

# ---- the tests: one list, read by tests/run.sh through `make print-tests` ----
# An entry is NAME (build/NAME) or NAME:ARGS, its arguments separated by commas
# (test_diff:20,--compress runs build/test_diff 20 --compress).
# The test programs (tests/test_*.c), plain and under ASan+UBSan, in this order;
# test_diff also with compress=zstd.
TESTS = test_codec test_msgpack test_memtable test_sql test_diff test_diff:--compress \
        test_interleave test_threads test_procs test_crash test_consist test_fault test_hostile \
        test_security test_etcd test_etcd_client
TEST_PROGS = $(foreach t,$(TESTS),$(firstword $(subst :, ,$t)))
# The threaded ones, also under TSan.
TSAN_TESTS = test_memtable test_threads test_consist test_interleave test_etcd_client test_etcd
# The scripts (plain build only), then fuzz/run.sh for 20 s.
SCRIPT_TESTS = tests/test_shell.sh tests/test_python.py tests/test_formats.py \
               tests/test_flaxkv_sqlite.py tests/test_examples.sh tests/test_deps.sh \
               tests/test_etcd_sh.sh
# make check: programs that need only the build's packages, fast; NAME:ARG runs
# build/NAME ARG (fewer seeds).  Well under a minute on 2 cores, building included.
CHECK_TESTS = test_codec test_msgpack test_memtable test_sql test_diff:20 test_diff:20,--compress \
              test_interleave:8 test_threads test_consist test_fault test_security
CHECK_PROGS = $(foreach t,$(CHECK_TESTS),$(firstword $(subst :, ,$t)))

# The three build variants, by directory, and their sanitizer flags.
VARIANTS       = build build/asan build/tsan
SAN_build      =
SAN_build/asan = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_build/tsan = -fsanitize=thread
# The plain library is linked with link-time optimisation: the rooms inline
# across files as they would within one (the per-row paths cross four).
LTO_build      = -flto=auto

.PHONY: all loadable run check test test-build asan tsan deps deps-run deps-test deps-fuzz clean bench \
        install uninstall fuzz format lint analyze print-tests
all: loadable
loadable: deps build/flaxkv.so

deps:
	@scripts/deps.sh build
deps-run deps-test deps-fuzz: deps-%:
	@scripts/deps.sh $*

# build/flaxkv.so, build/asan/flaxkv.so, build/tsan/flaxkv.so
$(addsuffix /flaxkv.so,$(VARIANTS)): %/flaxkv.so: $(SRC) $(HDR) VERSION
	@mkdir -p $(@D)
	$(CC) $(EXT_CFLAGS) $(SAN_$*) $(LTO_$*) $(XCFLAGS) -shared -o $@ $(SRC) $(LDFLAGS) $(LIBS)

# The rooms the test programs link, compiled once per variant: VARIANT/obj/ROOM.o
# (secondary expansion: $$* is the target's stem, e.g. build/asan/obj/codec).
.SECONDEXPANSION:
UNIT_OBJ = $(patsubst ext/%.c,%.o,$(UNIT))
$(foreach v,$(VARIANTS),$(addprefix $v/obj/,$(UNIT_OBJ))): %.o: ext/$$(notdir $$*).c $(HDR)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(SAN_$(patsubst %/obj,%,$(@D))) $(XCFLAGS) -c -o $@ $<

# The test programs, one rule for the three variants: VARIANT/test_NAME
ALL_TESTS = $(sort $(TEST_PROGS) $(TSAN_TESTS) $(CHECK_PROGS))
$(foreach v,$(VARIANTS),$(addprefix $v/,$(ALL_TESTS))): %: tests/$$(notdir $$*).c tests/harness.h tests/cluster.h \
    tests/procs.h $$(addprefix $$(@D)/obj/,$(UNIT_OBJ))
	$(CC) $(TEST_CFLAGS) $(SAN_$(@D)) $(XCFLAGS) -o $@ $< $(addprefix $(@D)/obj/,$(UNIT_OBJ)) \
	  $(LDFLAGS) -lsqlite3 $(LIBS)

asan: deps build/asan/flaxkv.so $(addprefix build/asan/,$(TEST_PROGS))
tsan: deps build/tsan/flaxkv.so $(addprefix build/tsan/,$(TSAN_TESTS))

run: deps-run loadable
	@rm -rf build/demo && mkdir -p build/demo
	sqlite3 build/demo/app.db < sql/quickstart.sql

check: loadable $(addprefix build/,$(CHECK_PROGS))
	@tests/run.sh --check

# The suite's builds run JOBS at a time (the machine's cores), then the
# tests one program at a time.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
test: deps-test
	@$(MAKE) --no-print-directory -j$(JOBS) test-build
	@tests/run.sh
test-build: loadable $(addprefix build/,$(TEST_PROGS)) asan tsan

print-tests:
	@echo 'TESTS="$(TESTS)"'
	@echo 'TSAN_TESTS="$(TSAN_TESTS)"'
	@echo 'SCRIPT_TESTS="$(SCRIPT_TESTS)"'
	@echo 'CHECK_TESTS="$(CHECK_TESTS)"'

# make install [PREFIX=/usr/local] [DESTDIR=]: $(DESTDIR)$(PREFIX)/lib/flaxkv.so.
# `.load flaxkv` (no path) finds it where the dynamic loader looks: with
# PREFIX=/usr, or with LD_LIBRARY_PATH=$(PREFIX)/lib.
# The Python package flaxkv_sqlite (python/) goes to PYDIR, where Debian's
# /usr/bin/python3 imports from: $(PREFIX)/lib/python3.X/dist-packages
# (/usr/lib/python3/dist-packages for PREFIX=/usr), with _where.py naming
# the installed flaxkv.so for flaxkv_sqlite.path().  Without $(PYTHON) the
# package is not installed (make says so).
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
PYTHON ?= /usr/bin/python3
PYVER   = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYDIR  ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/python$(PYVER)/dist-packages)
PY_SRC  = python/flaxkv_sqlite/__init__.py python/flaxkv_sqlite/_codec.py python/flaxkv_sqlite/_store.py
install: loadable
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0644 build/flaxkv.so $(DESTDIR)$(LIBDIR)/flaxkv.so
	@if [ -z "$(PYVER)" ]; then \
	  echo "make install: $(PYTHON) not found: the Python package flaxkv_sqlite is not installed"; \
	else \
	  echo "install -m 0644 $(PY_SRC) $(DESTDIR)$(PYDIR)/flaxkv_sqlite/"; \
	  install -d $(DESTDIR)$(PYDIR)/flaxkv_sqlite && \
	  install -m 0644 $(PY_SRC) $(DESTDIR)$(PYDIR)/flaxkv_sqlite/ && \
	  $(PYTHON) -c 'import sys; print("EXTENSION = %r" % sys.argv[1])' '$(LIBDIR)/flaxkv.so' \
	    > $(DESTDIR)$(PYDIR)/flaxkv_sqlite/_where.py; \
	fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/flaxkv.so
	rm -rf $(DESTDIR)$(PYDIR)/flaxkv_sqlite

# The codec's libFuzzer target (built with clang by fuzz/run.sh) for
# FUZZ_SECONDS; make test runs it for 20 s.
FUZZ_SECONDS ?= 30
fuzz: deps-fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# ---- style and static checks (ext/) ---------------------------------------
# clang-format 14 (Debian: clang-format, or the clang package); cppcheck is
# optional: lint says when it is not installed.
CLANG_FORMAT ?= clang-format
FORMAT_FILES  = $(wildcard ext/*.c ext/*.h)
format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

# Each check runs even if one before it failed; lint fails if any did.
lint:
	@rc=0; \
	echo "$(CLANG_FORMAT) --dry-run -Werror ext/"; \
	$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES) || rc=1; \
	echo "$(CC) -Wall -Wextra -Wshadow -Werror -fsyntax-only ext/"; \
	$(CC) $(EXT_CFLAGS) -Wshadow -Werror -fsyntax-only $(SRC) || rc=1; \
	if command -v cppcheck >/dev/null 2>&1; then \
	  echo "cppcheck ext/"; \
	  cppcheck -q --std=c11 --enable=warning,portability --inline-suppr --error-exitcode=1 \
	    -DFLAXKV_VERSION='"$(VERSION)"' $(SRC) || rc=1; \
	else echo "cppcheck not installed: skipped"; fi; \
	exit $$rc

analyze:
	@rc=0; for f in $(SRC); do echo "clang --analyze $$f"; \
	  clang --analyze -Xanalyzer -analyzer-output=text -Xanalyzer -analyzer-werror \
	    $(CPPFLAGS) -std=gnu11 -pthread -DFLAXKV_VERSION='"$(VERSION)"' -o /dev/null $$f || rc=1; \
	done; exit $$rc

clean:
	rm -rf build

# ---- bench -----------------------------------------------------------------
# make bench            build build/bench and run it (N=100000 keys, about 3 minutes),
#                       then bench/python_bench.py (under a minute), then
#                       build/etcd_bench (N keys, at most ETCD_N: about a minute)
# make bench N=10000    the CI size (well under a minute)
# make bench BENCH_ARGS='--scale --flood --csv'   more options: see bench/bench.c
# The benchmark is never a test: it exits 0 whether its targets are met or
# not, non-zero only when a correctness check fails.
BENCH_N = $(if $(N),$(N),100000)
BENCH_ARGS ?=

build/bench: bench/bench.c bench/bench_common.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -std=gnu11 -pthread $(XCFLAGS) -o $@ bench/bench.c \
	  $(LDFLAGS) -lsqlite3 -llmdb -lpthread -lm

# The etcd section (bench/etcd_bench.c): flaxkv on a 1-member and a 3-member
# etcd cluster it starts and stops itself (tests/cluster.h); it links etcd.c
# as "the plain client".  Without etcd installed it says so and is skipped.
ETCD_BENCH_OBJ = build/obj/util.o build/obj/codec.o build/obj/etcd.o
build/etcd_bench: bench/etcd_bench.c bench/bench_common.h tests/harness.h tests/cluster.h $(ETCD_BENCH_OBJ)
	$(CC) $(TEST_CFLAGS) -Itests $(XCFLAGS) -o $@ bench/etcd_bench.c $(ETCD_BENCH_OBJ) \
	  $(LDFLAGS) -lsqlite3 $(LIBS)

build/micro: bench/micro.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -std=gnu11 $(XCFLAGS) -o $@ bench/micro.c $(LDFLAGS) -lsqlite3

# Then the Python section (bench/python_bench.py): flaxkv_sqlite against a
# sqlite3 table and a dict, on FlaxKV's benchmark (1,000 vectors of 1,000
# float64) and on N small keys; PY_BENCH_ARGS adds its options.
# Last, the etcd section (build/etcd_bench): N keys (at most ETCD_N, 20000 by
# default: each cluster takes them twice, in etcd Txns of 100), a 1-member then
# a 3-member cluster; ETCD_BENCH_ARGS adds its options.  Skipped, saying so,
# without etcd.
PY_BENCH_ARGS ?=
ETCD_N ?= 20000
ETCD_BENCH_N = $(shell n=$(BENCH_N); m=$(ETCD_N); echo $$(( n < m ? n : m )))
ETCD_BENCH_ARGS ?=
bench: loadable build/bench build/micro build/etcd_bench
	build/bench --ext build/flaxkv.so -n $(BENCH_N) $(BENCH_ARGS)
	@if [ -x "$(PYTHON)" ]; then \
	  echo "$(PYTHON) bench/python_bench.py --ext build/flaxkv.so --keys $(BENCH_N) $(PY_BENCH_ARGS)"; \
	  $(PYTHON) bench/python_bench.py --ext build/flaxkv.so --keys $(BENCH_N) $(PY_BENCH_ARGS); \
	else echo "python bench: skipped ($(PYTHON) not found)"; fi
	build/etcd_bench --ext build/flaxkv.so -n $(ETCD_BENCH_N) $(ETCD_BENCH_ARGS)
