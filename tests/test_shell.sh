#!/bin/sh
# test_shell.sh - flaxkv through the sqlite3 command-line shell.
#
#   sh tests/test_shell.sh        (from the repo root; tests/run.sh does this)
#
# (a) the quick start (sql/quickstart.sql) runs exactly as `make run` runs it,
#     twice on the same database, without an error;
# (b) persistence: a shell process writes without flaxkv_flush() and exits,
#     a second process reads the rows back (the flush at close / exit);
# (c) the same when the writer ends with .exit, .quit, or end of input, and
#     when the reader opens the database from another working directory;
# (d) two shell processes at once: the second sees what the first flushed
#     while the first is still running, and the first sees the second's
#     flushed writes without reopening.
#
# Ends with "N passed, N failed, N skipped"; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
ext="$root/build/flaxkv"
T="timeout 60"

. "$root/tests/lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/flaxkv-shell.XXXXXX")
bgpid=""
cleanup() {
  if [ -n "$bgpid" ]; then kill "$bgpid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ ! -f build/flaxkv.so ]; then
  echo "build/flaxkv.so is missing: run make first" >&2
  bad "build/flaxkv.so exists"
  summary
  exit 1
fi

# ---------------------------------------------------------------------------
# (a) the quick start, as `make run` runs it (cwd = repo root, so that
#     `.load ./build/flaxkv` resolves), on a fresh directory and then again.
mkdir -p "$tmp/a/build/demo"
db="$tmp/a/build/demo/app.db"
for run in 1 2; do
  out="$tmp/a/out$run"
  $T sqlite3 "$db" < sql/quickstart.sql > "$out" 2>&1
  rc=$?
  expect "quickstart run $run: exit status" "$rc" 0
  # The whole output, exactly (box tables of the Debian sqlite3 shell).
  if cmp -s "$out" tests/expected/quickstart.out; then ok; else
    bad "quickstart run $run: output differs from tests/expected/quickstart.out"
    diff tests/expected/quickstart.out "$out" | head -20
  fi
done
check "quickstart: store created beside app.db" test -d "$tmp/a/build/demo/test_db"
check "quickstart: no store in the repo root" test ! -e "$root/test_db"
check "quickstart: rerun prints the same" cmp -s "$tmp/a/out1" "$tmp/a/out2"

# The quick start's data is in LMDB after the shell exits: count it from a
# fresh process.
got=$($T sqlite3 "$db" -cmd ".load $ext" "SELECT count(*), length(value) FROM kv WHERE key = 'matrix'; SELECT count(*) FROM kv;" 2>&1)
expect "quickstart: data read back by a new process" "$got" "1|80000
10"

# ---------------------------------------------------------------------------
# (b) + (c) persistence without flaxkv_flush(): the writer relies on the flush
#     at close / exit.  One writer per way of ending the shell.
mkdir -p "$tmp/b"
n=0
for ending in eof exit quit cmdline; do
  n=$((n + 1))
  db="$tmp/b/$ending.db"
  case $ending in
    eof) tail="" ;;
    exit) tail=".exit" ;;
    quit) tail=".quit" ;;
  esac
  if [ "$ending" = cmdline ]; then
    # SQL given on the command line, no stdin script at all
    $T sqlite3 "$db" -cmd ".load $ext" \
      "PRAGMA journal_mode=WAL; CREATE VIRTUAL TABLE kv USING flaxkv(path='./store_$ending');" \
      "REPLACE INTO kv VALUES (1, 'one'), (2.5, 'two and a half'), ('k', x'00ff'), (x'01', NULL);" \
      "REPLACE INTO kv SELECT value, value * value FROM generate_series(100, 1099);" \
      > "$tmp/b/$ending.out" 2>&1 </dev/null
    rc=$?
  else
    $T sqlite3 "$db" > "$tmp/b/$ending.out" 2>&1 <<EOF
.load $ext
PRAGMA journal_mode=WAL;
CREATE VIRTUAL TABLE kv USING flaxkv(path='./store_$ending');
REPLACE INTO kv VALUES (1, 'one'), (2.5, 'two and a half'), ('k', x'00ff'), (x'01', NULL);
BEGIN;
REPLACE INTO kv SELECT value, value * value FROM generate_series(100, 1099);
COMMIT;
$tail
EOF
    rc=$?
  fi
  expect "writer ($ending): exit status" "$rc" 0
  check "writer ($ending): no error" hasnt "$tmp/b/$ending.out" '[Ee]rror'
  check "writer ($ending): store directory beside the database" test -d "$tmp/b/store_$ending"

  got=$($T sqlite3 "$db" -cmd ".load $ext" \
    "SELECT count(*), (SELECT count(*) FROM kv WHERE key >= 100 AND key < 1100 AND value = key * key) FROM kv;" \
    "SELECT quote(key), typeof(key), quote(value) FROM kv WHERE typeof(key) <> 'integer' OR key < 100 ORDER BY key;" \
    "SELECT value FROM kv WHERE key = 1099;" 2>&1 </dev/null)
  expect "reader after writer ($ending)" "$got" "1004|1000
1|integer|'one'
2.5|real|'two and a half'
'k'|text|X'00FF'
X'01'|blob|NULL
1207801"

  # The same database opened from another working directory: the relative
  # path='./store_...' is resolved against the database's directory.
  got=$(cd / && $T sqlite3 "$db" -cmd ".load $ext" "SELECT count(*) FROM kv; SELECT value FROM kv WHERE key = 1;" 2>&1 </dev/null)
  expect "reader from another cwd ($ending)" "$got" "1004
one"
done

# A store with no path option lives beside the database file; it persists too.
db="$tmp/b/default.db"
$T sqlite3 "$db" -cmd ".load $ext" \
  "PRAGMA journal_mode=WAL; CREATE VIRTUAL TABLE kv USING flaxkv; REPLACE INTO kv VALUES ('x', 42);" \
  >/dev/null 2>&1 </dev/null
expect "default store: writer exit status" "$?" 0
got=$($T sqlite3 "$db" -cmd ".load $ext" "SELECT value FROM kv WHERE key = 'x';" 2>&1 </dev/null)
expect "default store: read back" "$got" "42"

# A rollback-journal database: the flush at exit still lands.
db="$tmp/b/rollback.db"
$T sqlite3 "$db" -cmd ".load $ext" \
  "CREATE VIRTUAL TABLE kv USING flaxkv(path='./store_rollback'); REPLACE INTO kv VALUES ('x', 'y'); DELETE FROM kv WHERE key = 'x'; REPLACE INTO kv VALUES ('z', 26);" \
  >/dev/null 2>&1 </dev/null
expect "rollback journal: writer exit status" "$?" 0
got=$($T sqlite3 "$db" -cmd ".load $ext" "SELECT key, value FROM kv;" 2>&1 </dev/null)
expect "rollback journal: read back (delete persisted too)" "$got" "z|26"

# ---------------------------------------------------------------------------
# (d) two processes at once.  The first shell reads its commands from a FIFO
#     and stays alive; it announces each step by writing to its output file.
mkdir -p "$tmp/d"
db="$tmp/d/app.db"
fifo="$tmp/d/fifo"
out1="$tmp/d/out1"
mkfifo "$fifo"
$T sqlite3 "$db" < "$fifo" > "$out1" 2>&1 &
bgpid=$!
exec 3> "$fifo"

# wait_for FILE TEXT: up to ~20 s for TEXT to appear in FILE
wait_for() {
  i=0
  while ! grep -qF -- "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then return 1; fi
    sleep 0.1
  done
  return 0
}

cat >&3 <<EOF
.load $ext
PRAGMA journal_mode=WAL;
CREATE VIRTUAL TABLE kv USING flaxkv(path='./store');
REPLACE INTO kv VALUES ('from1', 'first process');
REPLACE INTO kv SELECT 'n' || value, value FROM generate_series(1, 500);
SELECT flaxkv_flush();
.print STEP1-DONE
EOF
check "concurrent: first process flushed" wait_for "$out1" STEP1-DONE

got=$($T sqlite3 "$db" -cmd ".load $ext" \
  "SELECT value FROM kv WHERE key = 'from1'; SELECT count(*) FROM kv;" 2>&1 </dev/null)
expect "concurrent: second process sees the first's flushed rows" "$got" "first process
501"

# The second process writes (flushed at its exit); the first, still running,
# reads it without reopening.
$T sqlite3 "$db" -cmd ".load $ext" \
  "REPLACE INTO kv VALUES ('from2', 'second process'); DELETE FROM kv WHERE key = 'n1';" \
  >/dev/null 2>&1 </dev/null
expect "concurrent: second process exit status" "$?" 0
cat >&3 <<EOF
SELECT 'READ:' || coalesce((SELECT value FROM kv WHERE key = 'from2'), 'missing') || ':' || (SELECT count(*) FROM kv);
.print STEP2-DONE
EOF
check "concurrent: first process answered" wait_for "$out1" STEP2-DONE
check "concurrent: first process sees the second's flushed write" has "$out1" "READ:second process:501"

exec 3>&-          # end of input: the first shell exits (and flushes)
wait "$bgpid"
rc=$?
bgpid=""
expect "concurrent: first process exit status" "$rc" 0
check "concurrent: first process printed no error" hasnt "$out1" '[Ee]rror'
got=$($T sqlite3 "$db" -cmd ".load $ext" \
  "SELECT count(*), sum(key IN ('from1', 'from2')) FROM kv;" 2>&1 </dev/null)
expect "concurrent: final contents" "$got" "501|2"

# make install: `.load flaxkv` (no path) finds the installed extension
inst=$(mktemp -d)
make -s install DESTDIR="$inst" PREFIX=/usr >/dev/null 2>&1
check "make install puts flaxkv.so under PREFIX/lib" test -f "$inst/usr/lib/flaxkv.so"
got=$(cd / && LD_LIBRARY_PATH="$inst/usr/lib" $T sqlite3 :memory: ".load flaxkv" \
  "SELECT json_extract(flaxkv_version(), '\$.flaxkv') IS NOT NULL;" 2>&1 </dev/null)
expect "installed: .load flaxkv without a path" "$got" "1"
rm -rf "$inst"

summary
[ "$nfail" = 0 ]
