# flaxkv - a persistent dictionary for SQLite, stored in LMDB.
#
#   make            build build/flaxkv.so
#   make run        build, then run the quick start (sql/quickstart.sql) in the sqlite3 shell
#   make test       build and run the whole suite: plain, ASan+UBSan, and the threaded tests
#                   under TSan; ends with "N passed, N failed"
#   make asan       build the AddressSanitizer + UBSan variant (build/asan/)
#   make tsan       build the ThreadSanitizer variant (build/tsan/)
#   make fuzz       run the decoders' libFuzzer target for FUZZ_SECONDS (20)
#   make install    copy build/flaxkv.so to $(DESTDIR)$(PREFIX)/lib (PREFIX=/usr/local)
#   make clean
#
# Each target first checks the Debian packages it needs (scripts/deps.sh MODE:
# build for make, install, asan, tsan and bench; run, test, fuzz for those):
# as root it installs the missing ones, as another user it prints the
# apt-get command and stops.

CC      ?= cc
OPT     ?= -O2 -g
WARN     = -Wall -Wextra
CFLAGS_EXT = $(OPT) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden -pthread
LIBS     = -llmdb -lmsgpackc -ljansson -lpthread -lm

SRC  = ext/util.c ext/codec.c ext/msgpack_fmt.c ext/format.c ext/memtable.c ext/store_lmdb.c \
       ext/buffer.c ext/view.c ext/iter.c ext/txn.c ext/options.c ext/plan.c ext/conn.c \
       ext/update.c ext/vtab.c ext/flaxkv.c
HDR  = $(wildcard ext/*.h)
# Test programs link these rooms directly (SQLITE_CORE: no extension API table);
# the SQL tests load the extension itself (hidden symbols: no clash).
UNIT = ext/util.c ext/codec.c ext/msgpack_fmt.c ext/memtable.c ext/store_lmdb.c ext/buffer.c \
       ext/view.c ext/iter.c ext/txn.c

TESTS = test_codec test_msgpack test_memtable test_sql test_diff test_interleave test_threads \
        test_procs test_crash test_consist test_fault test_hostile test_security

ASAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TSAN = -fsanitize=thread

.PHONY: all loadable run test asan tsan deps deps-run deps-test deps-fuzz clean bench install \
        uninstall fuzz
all: loadable
loadable: deps build/flaxkv.so

deps:
	@scripts/deps.sh build
deps-run deps-test deps-fuzz: deps-%:
	@scripts/deps.sh $*

build/flaxkv.so: $(SRC) $(HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_EXT) -shared -o $@ $(SRC) $(LIBS)

build/asan/flaxkv.so: $(SRC) $(HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_EXT) $(ASAN) -shared -o $@ $(SRC) $(LIBS)

build/tsan/flaxkv.so: $(SRC) $(HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_EXT) $(TSAN) -shared -o $@ $(SRC) $(LIBS)

# Test programs, one per variant directory.
build/test_%: tests/test_%.c tests/harness.h tests/procs.h $(UNIT) $(HDR)
	@mkdir -p $(@D)
	$(CC) $(OPT) $(WARN) -std=gnu11 -pthread -DSQLITE_CORE -Iext -o $@ $< $(UNIT) -lsqlite3 $(LIBS)
build/asan/test_%: tests/test_%.c tests/harness.h tests/procs.h $(UNIT) $(HDR)
	@mkdir -p $(@D)
	$(CC) $(OPT) $(WARN) $(ASAN) -std=gnu11 -pthread -DSQLITE_CORE -Iext -o $@ $< $(UNIT) -lsqlite3 $(LIBS)
build/tsan/test_%: tests/test_%.c tests/harness.h tests/procs.h $(UNIT) $(HDR)
	@mkdir -p $(@D)
	$(CC) $(OPT) $(WARN) $(TSAN) -std=gnu11 -pthread -DSQLITE_CORE -Iext -o $@ $< $(UNIT) -lsqlite3 $(LIBS)

asan: deps build/asan/flaxkv.so $(addprefix build/asan/,$(TESTS))
TSAN_TESTS = test_memtable test_threads test_consist test_interleave
tsan: deps build/tsan/flaxkv.so $(addprefix build/tsan/,$(TSAN_TESTS))

run: deps-run loadable
	@rm -rf build/demo && mkdir -p build/demo
	sqlite3 build/demo/app.db < sql/quickstart.sql

test: deps-test loadable $(addprefix build/,$(TESTS)) asan tsan
	@tests/run.sh

# make install [PREFIX=/usr/local] [DESTDIR=]: $(DESTDIR)$(PREFIX)/lib/flaxkv.so.
# `.load flaxkv` (no path) finds it where the dynamic loader looks: with
# PREFIX=/usr, or with LD_LIBRARY_PATH=$(PREFIX)/lib.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
install: loadable
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0644 build/flaxkv.so $(DESTDIR)$(LIBDIR)/flaxkv.so

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/flaxkv.so

# The codec's libFuzzer target, for FUZZ_SECONDS (default 20); make test runs it.
fuzz: deps-fuzz
	@fuzz/run.sh

clean:
	rm -rf build

# ---- bench (issue 5) -------------------------------------------------------
# make bench            build build/bench and run it (N=100000 keys, about 3 minutes)
# make bench N=10000    the CI size (well under a minute)
# make bench BENCH_ARGS='--scale --flood --csv'   more options: see bench/bench.c
# The benchmark is never a test: it exits 0 whether its targets are met or
# not, non-zero only when a correctness check fails.
BENCH_N = $(if $(N),$(N),100000)
BENCH_ARGS ?=

build/bench: bench/bench.c
	@mkdir -p $(@D)
	gcc -O2 -g -Wall -Wextra -std=gnu11 -pthread -o $@ bench/bench.c -lsqlite3 -llmdb -lpthread -lm

build/micro: bench/micro.c
	@mkdir -p $(@D)
	gcc -O2 -g -Wall -Wextra -std=gnu11 -o $@ bench/micro.c -lsqlite3

bench: loadable build/bench build/micro
	build/bench --ext build/flaxkv.so -n $(BENCH_N) $(BENCH_ARGS)
# ---- end of bench ------------------------------------------------------------
