#!/bin/sh
# run.sh - run the flaxkv suite and print one closing line
# "N passed, N failed, N skipped" (the sum over every test program).
#
#   tests/run.sh            the whole suite (make test):
#     plain build:  every test program, the scripts (shell, Python,
#                   examples, dependency checks) and the fuzzer for
#                   FUZZ_SECONDS (20)
#     ASan+UBSan:   every test program against build/asan/flaxkv.so
#     TSan:         the threaded tests against build/tsan/flaxkv.so
#   tests/run.sh --check    the quick subset (make check): plain build only
#
# The lists are the Makefile's (TESTS, TSAN_TESTS, SCRIPT_TESTS,
# CHECK_TESTS), read through `make print-tests`; the programs must be built
# (make test / make check build them first).
#
# Each test program prints its own "N passed, N failed, N skipped" line (the
# skipped part may be absent); a program that crashes, exits non-zero with
# no failure counted, or prints no such line counts as one failure.
set -u
cd "$(dirname "$0")/.."

mode=all
case ${1:-} in
  --check) mode=check ;;
  "") ;;
  *)
    echo "usage: tests/run.sh [--check]" >&2
    exit 2
    ;;
esac

# TESTS, TSAN_TESTS, SCRIPT_TESTS, CHECK_TESTS (not the make running us: its
# flags and job server are not ours).
lists=$(MAKEFLAGS= MAKELEVEL= make -s --no-print-directory print-tests) || {
  echo "tests/run.sh: make print-tests failed"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
}
eval "$lists"

total_pass=0
total_fail=0
total_skip=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

summary='^[0-9]+ passed, [0-9]+ failed'

run() { # run NAME CMD...
  name=$1
  shift
  start=$(date +%s)
  "$@" >"$log" 2>&1
  rc=$?
  line=$(grep -E "$summary" "$log" | tail -n 1)
  secs=$(($(date +%s) - start))
  if [ -z "$line" ]; then
    cat "$log"
    echo "== $name: no summary line (exit $rc): counted as 1 failure"
    total_fail=$((total_fail + 1))
    return
  fi
  p=${line%% passed*}
  f=${line#*passed, }
  f=${f%% failed*}
  s=0
  case $line in *", "*" skipped"*)
    s=${line##*failed, }
    s=${s%% skipped*}
    ;;
  esac
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  if [ "$f" != 0 ]; then cat "$log"; fi
  echo "== $name: $p passed, $f failed, $s skipped (${secs}s)"
  # What was skipped, and the figures a program prints last (operations,
  # kills survived, bytes of bad input tried, memory): the two lines before
  # its summary.
  grep '^SKIP' "$log" | sed 's/^/     /' | cut -c1-160
  grep -vE "$summary|^SKIP" "$log" | tail -n 2 | sed 's/^/     /' | cut -c1-160
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  total_skip=$((total_skip + s))
}

# run_prog DIR LABEL ENTRY: a test list's ENTRY, NAME or NAME:ARGS (ARGS
# separated by commas: test_diff:20,--compress runs build/test_diff 20
# --compress), as DIR/NAME against DIR/flaxkv; LABEL prefixes its name.
run_prog() {
  dir=$1
  label=$2
  name=${3%%:*}
  if [ "$name" = "$3" ]; then
    FLAXKV_EXT=$dir/flaxkv run "$label$name" "$dir/$name"
  else
    args=$(echo "${3#*:}" | tr ',' ' ')
    # shellcheck disable=SC2086 # $args is a list of words
    FLAXKV_EXT=$dir/flaxkv run "$label$name $args" "$dir/$name" $args
  fi
}

if [ "$mode" = check ]; then
  for t in $CHECK_TESTS; do
    run_prog build "" "$t"
  done
  echo "$total_pass passed, $total_fail failed, $total_skip skipped"
  [ "$total_fail" = 0 ]
  exit
fi

for t in $TESTS; do
  run_prog build "" "$t"
done
for path in $SCRIPT_TESTS; do
  name=${path##*/}
  name=${name%.*}
  case $path in
    *.py) FLAXKV_EXT=build/flaxkv run "$name" /usr/bin/python3 "$path" ;;
    *) FLAXKV_EXT=build/flaxkv run "$name" sh "$path" ;;
  esac
done
FUZZ_SECONDS=${FUZZ_SECONDS:-20} run fuzz_codec sh fuzz/run.sh

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in $TESTS; do
  run_prog build/asan "asan " "$t"
done
unset ASAN_OPTIONS UBSAN_OPTIONS

export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for t in $TSAN_TESTS; do
  run_prog build/tsan "tsan " "$t"
done

echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" = 0 ]
