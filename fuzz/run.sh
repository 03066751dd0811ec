#!/bin/sh
# run.sh - build and run the libFuzzer target fuzz/fuzz_codec.c for a bounded
# time; print the executions and bytes tried, then "N passed, N failed, N skipped"
# (1 passed if libFuzzer found no crash).
#
#   fuzz/run.sh                 # 30 seconds
#   FUZZ_SECONDS=300 fuzz/run.sh
#
# Needs clang with libFuzzer (Debian: clang and libclang-rt-14-dev, or
# libclang-rt-dev for the default clang).  New inputs go to a temporary
# directory; the seed corpus fuzz/corpus/ is only read.  A crash leaves its
# input in build/fuzz/ and prints the command that reproduces it.
set -u
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-30}
out=build/fuzz
bin=$out/fuzz_codec
mkdir -p "$out"
CLANG=${CLANG:-clang}

if ! command -v "$CLANG" >/dev/null 2>&1; then
  echo "fuzz: $CLANG not found (apt-get install clang libclang-rt-14-dev)"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
stale=0
for f in fuzz/fuzz_codec.c ext/codec.c ext/codec.h ext/compress.c ext/compress.h ext/util.c ext/util.h; do
  [ "$f" -nt "$bin" ] && stale=1
done
if [ ! -x "$bin" ] || [ "$stale" = 1 ]; then
  if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -DSQLITE_CORE -Iext fuzz/fuzz_codec.c ext/codec.c ext/compress.c ext/util.c -lsqlite3 -lzstd -lm \
      -o "$bin"; then
    echo "fuzz: cannot build $bin (libFuzzer: apt-get install libclang-rt-14-dev)"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
  fi
fi

work=$(mktemp -d)
log=$out/fuzz_codec.log
trap 'rm -rf "$work"' EXIT
"$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -seed=1 -print_final_stats=1 \
  -artifact_prefix="$out/" "$work" fuzz/corpus >"$log" 2>&1
rc=$?

runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -n 1)
tried=$(grep '^fuzz_codec: .* inputs, .* bytes tried' "$log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n 1)
echo "fuzz_codec: ${runs:-no runs}; ${tried#fuzz_codec: }; $cov; seed corpus $(ls fuzz/corpus | wc -l) files"
if [ "$rc" = 0 ]; then
  echo "1 passed, 0 failed, 0 skipped"
else
  grep -E 'ERROR|fuzz_codec: .*payload|runtime error|SUMMARY|Test unit written' "$log" | head -n 20
  crash=$(sed -n "s/.*Test unit written to \(.*\)/\1/p" "$log" | tail -n 1)
  [ -n "$crash" ] && echo "reproduce: $bin $crash"
  echo "0 passed, 1 failed, 0 skipped"
fi
[ "$rc" = 0 ]
