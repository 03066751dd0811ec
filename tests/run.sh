#!/bin/sh
# run.sh - run the whole flaxkv suite and print one closing line
# "N passed, N failed" (the sum over every test program).
#
#   plain build:  every test program, the shell, Python, examples and
#                 dependency-check tests
#   ASan+UBSan:   every test program against build/asan/flaxkv.so
#   TSan:         the threaded tests against build/tsan/flaxkv.so
#
# Each test program prints its own "N passed, N failed" line; a program
# that crashes or prints no such line counts as one failure.
set -u
cd "$(dirname "$0")/.."

TESTS="test_codec test_msgpack test_memtable test_sql test_diff test_interleave test_threads test_procs test_crash test_consist test_fault test_hostile test_security"
TSAN_TESTS="test_memtable test_threads test_consist test_interleave"
total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() { # run NAME CMD...
  name=$1
  shift
  start=$(date +%s)
  "$@" >"$log" 2>&1
  rc=$?
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  secs=$(( $(date +%s) - start ))
  if [ -z "$line" ]; then
    cat "$log"
    echo "== $name: no summary line (exit $rc): counted as 1 failure"
    total_fail=$((total_fail + 1))
    return
  fi
  p=${line%% passed*}
  f=${line#*passed, }
  f=${f%% failed*}
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  if [ "$f" != 0 ]; then cat "$log"; fi
  echo "== $name: $p passed, $f failed (${secs}s)"
  # The figures a program prints last (operations, kills survived, bytes of
  # bad input tried, memory): the two lines before its summary.
  grep -vE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 2 | sed 's/^/     /' | cut -c1-160
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
}

for t in $TESTS; do
  FLAXKV_EXT=build/flaxkv run "$t" "build/$t"
done
run test_shell sh tests/test_shell.sh
run test_python /usr/bin/python3 tests/test_python.py
FLAXKV_EXT=build/flaxkv run test_formats /usr/bin/python3 tests/test_formats.py
run test_examples sh tests/test_examples.sh
run test_deps sh tests/test_deps.sh
FUZZ_SECONDS=${FUZZ_SECONDS:-20} run fuzz_codec sh fuzz/run.sh

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in $TESTS; do
  FLAXKV_EXT=build/asan/flaxkv run "asan $t" "build/asan/$t"
done
unset ASAN_OPTIONS UBSAN_OPTIONS

export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for t in $TSAN_TESTS; do
  FLAXKV_EXT=build/tsan/flaxkv run "tsan $t" "build/tsan/$t"
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
