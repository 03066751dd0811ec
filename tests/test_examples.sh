#!/bin/sh
# test_examples.sh - every example of examples/ and sql/ runs and prints what
# it should.
#
#   sh tests/test_examples.sh        (from the repo root; tests/run.sh does this)
#
# (a) examples/python_example.py, tcl_example.tcl, perl_example.pl: run from
#     the repo root as their headers say, with a temporary DIR argument; each
#     checks what it reads back and exits non-zero on a mismatch.  Run twice
#     on one DIR (they are re-runnable), and all three print the same rows.
# (b) the SQL scripts: their stores are under build/examples/ of the working
#     directory, so they run in a temporary directory laid out like the repo
#     (build/flaxkv.so a link to the built extension), never in the repo's
#     build/:
#       examples/make_embeddings.py, then sqlite3 :memory: < sql/embeddings.sql
#       sqlite3 :memory: < sql/json_cache.sql (twice: the same output)
#       examples/counter.py, then sqlite3 :memory: < sql/counter.sql
#
# tclsh with Tcl's sqlite3 package, and Perl's DBD::SQLite, are Debian
# packages (tcl libsqlite3-tcl, libdbd-sqlite3-perl): if one is missing, its
# example counts as one failure that names the package.
#
# Ends with "N passed, N failed, N skipped"; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
T="timeout 300"
PY=/usr/bin/python3

. "$root/tests/lib.sh"
# runs NAME FILE CMD...: run CMD with its output in FILE; one assertion on
# its exit status (the output is shown when it fails)
runs() {
  name=$1
  out=$2
  shift 2
  "$@" >"$out" 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then ok; else bad "$name: exit status $rc"; cat "$out" >&2; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/flaxkv-examples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

if [ ! -f build/flaxkv.so ]; then
  bad "build/flaxkv.so is missing: run make first"
  summary
  exit 1
fi

# ---------------------------------------------------------------------------
# (a) the host-language examples, from the repo root.
have_python() { [ -x $PY ]; }
have_tcl() { echo 'package require sqlite3' | tclsh >/dev/null 2>&1; }
have_perl() { perl -MDBI -MDBD::SQLite -e 1 >/dev/null 2>&1; }

for lang in python tcl perl; do
  case $lang in
    python) need=have_python pkg=python3 cmd="$PY examples/python_example.py" ;;
    tcl) need=have_tcl pkg="tcl libsqlite3-tcl" cmd="tclsh examples/tcl_example.tcl" ;;
    perl) need=have_perl pkg=libdbd-sqlite3-perl cmd="perl examples/perl_example.pl" ;;
  esac
  if ! $need; then
    bad "$lang example: not run, missing Debian packages (apt-get install -y $pkg)"
    continue
  fi
  dir="$tmp/$lang"
  for run in 1 2; do
    out="$tmp/$lang.out$run"
    runs "$lang example run $run" "$out" $T $cmd "$dir"
    check "$lang example run $run: ok" has "$out" "ok"
    check "$lang example run $run: 3 rows in LMDB" has "$out" "rows in LMDB: 3"
    check "$lang example run $run: flaxkv_dot" grep -qE '^vec: .+ dot\(vec, vec\) = 6\.5$' "$out"
    check "$lang example run $run: join" grep -q '^bob    light$' "$out"
    check "$lang example run $run: outer join" grep -q '^carol  (no settings)$' "$out"
  done
  check "$lang example: store in DIR" test -f "$dir/store/data.mdb"
  grep -E '^(rows in LMDB|alice|bob|carol) ' "$tmp/$lang.out1" >"$tmp/$lang.rows"
done
# The rows the three print are the same (where all three ran).
for lang in tcl perl; do
  if [ -s "$tmp/python.rows" ] && [ -s "$tmp/$lang.rows" ]; then
    check "python and $lang examples print the same rows" cmp -s "$tmp/python.rows" "$tmp/$lang.rows"
  fi
done
# With no DIR, the example uses a temporary directory and removes it.
if have_python; then
  runs "python example without DIR" "$tmp/python.out0" env TMPDIR="$tmp/own" sh -c \
    "mkdir -p '$tmp/own' && $PY examples/python_example.py"
  check "python example without DIR: its temporary directory is removed" \
    test -z "$(ls -A "$tmp/own")"
fi

# ---------------------------------------------------------------------------
# (b) the SQL scripts, in a copy of the repo layout: build/flaxkv.so only.
work="$tmp/repo"
mkdir -p "$work/build"
ln -s "$root/build/flaxkv.so" "$work/build/flaxkv.so"
cd "$work" || exit 1

# embeddings: the SQL step alone fails, and says which store it misses
out="$tmp/emb.before"
$T sqlite3 :memory: <"$root/sql/embeddings.sql" >"$out" 2>&1
rc=$?
check "embeddings.sql before step 1: fails" test "$rc" != 0
check "embeddings.sql before step 1: names the store" has "$out" "Runtime error near line 21: flaxkv: no store at build/examples/emb_store (No such file or directory); readonly=1 creates none (14)"
check "embeddings.sql before step 1: creates no store" test ! -e build/examples/emb_store

out="$tmp/emb.step1"
runs "make_embeddings.py" "$out" $T $PY "$root/examples/make_embeddings.py"
check "make_embeddings.py: 1000 vectors" grep -qE '^stored 1000 embeddings \(64 x float32, 256000 bytes\) in table emb of build/examples/emb_store in [0-9.]+ ms$' "$out"
out="$tmp/emb.step2"
runs "embeddings.sql" "$out" $T sqlite3 :memory: <"$root/sql/embeddings.sql"
check "embeddings.sql: no error" hasnt "$out" 'rror'
check "embeddings.sql: 1000 vectors of 64" grep -qE '^│ 1000 +│ 64 +│$' "$out"
check "embeddings.sql: doc 42 nearest itself" grep -qE '^│ 42 +│ chemistry note 42 +│ 1\.0 +│$' "$out"
top5=$(sed -n '/nearest to document 42/,/^$/p' "$out" | grep -cE '^│ [0-9]+ +│ chemistry note')
expect "embeddings.sql: the 5 nearest are chemistry notes" "$top5" 5
check "embeddings.sql: 20 of 20 neighbours share the topic" grep -qE '^│ 20 +│ 20 +│$' "$out"
y2023=$(sed -n '/nearest of 2023/,/^$/p' "$out" | grep -cE '^│ [0-9]+ +│ chemistry note [0-9]+ +│ 2023 ')
expect "embeddings.sql: 3 chemistry notes of 2023" "$y2023" 3
check "embeddings.sql: within-topic similarity" grep -qE '^│ 1 +│ 450 +│ 0\.[5-9]' "$out"

# json_cache: twice, the same output (the cache persists, the script re-fills it)
for run in 1 2; do
  out="$tmp/json.out$run"
  runs "json_cache.sql run $run" "$out" $T sqlite3 :memory: <"$root/sql/json_cache.sql"
  check "json_cache.sql run $run: no error" hasnt "$out" 'rror'
done
out="$tmp/json.out1"
check "json_cache.sql: 200 cached" grep -qE '^│ 200 +│$' "$out"
check "json_cache.sql: a document" has "$out" '/api/products/42 = {"id":42,"name":"product 42","category":"garden","price":59.99,"stock":46,"tags":["sale"],"fetched_at":"2024-05-15"}'
check "json_cache.sql: ->> fields" grep -qE '^│ product 42 +│ 59\.99 +│ sale +│$' "$out"
check "json_cache.sql: json_each filter" grep -qE '^│ 35 +│ books +│ 5 +│$' "$out"
check "json_cache.sql: join, top category" grep -qE '^│ garden +│ 200 +│ 399 +│ 22846\.01 +│$' "$out"
check "json_cache.sql: json_set" grep -qE '^│ 0 +│ \["sold out"\] +│$' "$out"
check "json_cache.sql: expired" grep -qE '^│ 53 +│ 147 +│$' "$out"
check "json_cache.sql: orders to refetch" grep -qE '^│ 265 +│$' "$out"
check "json_cache.sql: flushed to LMDB" grep -qE '^│ 1 +│ 147 +│$' "$out"
check "json_cache.sql: the second run prints the same" cmp -s "$tmp/json.out1" "$tmp/json.out2"

# counter: 100,000 increments from Python, then one in SQL, then 100,000 more
out="$tmp/counter.py1"
runs "counter.py" "$out" $T $PY "$root/examples/counter.py"
check "counter.py: 0 -> 100000" has "$out" "hits: 0 -> 100000"
grep -F 'increments in' "$out"
out="$tmp/counter.sql"
runs "counter.sql" "$out" $T sqlite3 :memory: <"$root/sql/counter.sql"
check "counter.sql: no error" hasnt "$out" 'rror'
check "counter.sql: reads 100000 first" grep -qE '^│ hits +│ 100000 +│$' "$out"
check "counter.sql: one increment" grep -qE '^│ hits +│ 100001 +│ integer +│$' "$out"
check "counter.sql: flushed" grep -qE '^│ 1 +│ 1 +│ full +│$' "$out"
out="$tmp/counter.py2"
runs "counter.py again" "$out" $T $PY "$root/examples/counter.py"
check "counter.py again: 100001 -> 200001" has "$out" "hits: 100001 -> 200001"

summary
[ "$nfail" = 0 ]
