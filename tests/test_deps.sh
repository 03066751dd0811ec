#!/bin/sh
# test_deps.sh - scripts/deps.sh: every check can fail and names its Debian
# package, each mode wants only its own packages, root installs, another
# user is told the command.
#
#   sh tests/test_deps.sh        (from the repo root; tests/run.sh does this)
#
# deps.sh finds commands on PATH and files under $FLAXKV_DEPS_ROOT.  The test
# builds a fake machine that has everything: a directory of stub commands
# that succeed (the only directory on PATH; `id` runs the real one) and a fake
# root with the headers, a /usr/bin/python3 stub and the libFuzzer runtime.
#
# (a) the fake machine: every mode reports nothing missing, calls no apt-get;
# (b) each check in turn, on the fake machine less that one dependency (a
#     file removed, a command removed, a python3 whose import fails, the real
#     tclsh unable to find any package, a perl without DBD::SQLite):
#     `deps.sh --check MODE` fails naming exactly the packages, in every mode
#     that needs it, and passes in the others;
# (c) another user (nobody, through setpriv, when the test runs as root):
#     the exact `apt-get install -y ...` command, exit 1, no apt-get run;
# (d) root (an `id` stub that prints 0; apt-get a stub that logs its
#     arguments and "installs" by running a repair script): apt-get install
#     of the missing packages, apt-get update and a retry when it fails, a
#     failure naming what is still missing after it;
# (e) the Makefile runs the mode of each target; the usage error;
# (f) this machine, as `make test` left it: `--check test` finds nothing
#     missing (the real checks pass where the packages are installed).
#
# Ends with "N passed, N failed, N skipped"; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)
sys_path=$PATH

. "$repo/tests/lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/flaxkv-deps.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
# Readable by nobody, for (c); the log directory writable by anyone, so that
# an apt-get run as nobody would be seen.
chmod 755 "$tmp"
cp scripts/deps.sh "$tmp/deps.sh"
mkdir -m 1777 "$tmp/log"
w=$tmp/w

# stub NAME [BODY]: the command NAME on the fake machine (default: succeeds);
# a new file, never written through an existing one
stub() {
  rm -f "$w/bin/$1"
  printf '#!/bin/sh\n%s\n' "${2:-exit 0}" >"$w/bin/$1"
  chmod 755 "$w/bin/$1"
}
# world: a fresh fake machine with everything present; apt-get logs its
# arguments to $tmp/log/apt, fails (exit 100) while $w/apt-fails exists
# (`update` removes it if $w/update-fixes exists), and runs $w/repair (if
# any) on an install that succeeds
world() {
  rm -rf "$w" "$tmp/log/apt"
  mkdir -p "$w/bin" "$w/root/usr/include/x86_64-linux-gnu/curl" "$w/root/usr/bin" \
    "$w/root/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux"
  chmod -R 755 "$w"
  for h in sqlite3.h lmdb.h msgpack.h jansson.h zstd.h x86_64-linux-gnu/curl/curl.h stdio.h; do
    : >"$w/root/usr/include/$h"
  done
  : >"$w/root/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a"
  printf '#!/bin/sh\nexit 0\n' >"$w/root/usr/bin/python3"
  chmod 755 "$w/root/usr/bin/python3"
  for c in cc gcc make sqlite3 clang mdb_stat tclsh perl etcd etcdctl openssl; do stub $c; done
  stub id "exec $(command -v id) \"\$@\""
  stub apt-get "PATH='$sys_path'
echo \"\$*\" >>$tmp/log/apt
[ \"\$1\" = update ] && [ -f $w/update-fixes ] && rm -f $w/apt-fails
[ -f $w/apt-fails ] && exit 100
[ \"\$1\" = install ] && [ -f $w/repair ] && sh $w/repair
exit 0"
}
# fixed_by_install NAME: apt-get install puts a working stub NAME in place
fixed_by_install() {
  echo "printf '#!/bin/sh\\nexit 0\\n' >$w/bin/$1; chmod 755 $w/bin/$1" >>"$w/repair"
}
# run_deps ARGS...: run deps.sh on the fake machine, output in $tmp/out,
# exit status in $rc
run_deps() {
  rc=0
  env PATH="$w/bin" FLAXKV_DEPS_ROOT="$w/root" /bin/sh "$tmp/deps.sh" "$@" >"$tmp/out" 2>&1 || rc=$?
}
# the `apt-get install -y ...` command deps.sh printed
cmd_line() { sed -n 's/^install them as root:  //p' "$tmp/out"; }
apt_log() { cat "$tmp/log/apt" 2>/dev/null; }

# ---------------------------------------------------------------------------
# (a) everything present
world
for mode in build run fuzz test; do
  run_deps --check $mode
  expect "everything present: --check $mode exits 0" "$rc" 0
  expect "everything present: --check $mode prints nothing" "$(cat "$tmp/out")" ""
done
stub id 'echo 0'
run_deps test
expect "everything present, as root: exits 0" "$rc" 0
expect "everything present, as root: no apt-get" "$(apt_log)" ""

# ---------------------------------------------------------------------------
# (b) one dependency missing at a time.
# A tclsh that finds no package: the real tclsh with Tcl's package search
# turned off.  It exits 0 after a failed `package require` on stdin, as the
# real one does without libsqlite3-tcl (what the old check missed).
tclsh_nopkg="{ echo 'package unknown {apply {args {}}}'; $(command -v cat); } | $(command -v tclsh)"
# break CASE: remove or break one dependency on the fake machine
break_dep() {
  case $1 in
    sqlite3.h | lmdb.h | msgpack.h | jansson.h | zstd.h | stdio.h) rm "$w/root/usr/include/$1" ;;
    curl/curl.h) rm "$w/root/usr/include/x86_64-linux-gnu/$1" ;;
    libfuzzer) rm "$w/root/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a" ;;
    python3) rm "$w/root/usr/bin/python3" ;;
    "import lmdb" | "import msgpack" | "import numpy" | "import ensurepip")
      printf '#!/bin/sh\n[ "$2" = "%s" ] && { echo "ModuleNotFoundError" >&2; exit 1; }\nexit 0\n' \
        "$1" >"$w/root/usr/bin/python3" ;;
    "tclsh without sqlite3") stub tclsh "$tclsh_nopkg" ;;
    "perl without DBD::SQLite") stub perl 'echo "Can'"'"'t locate DBD/SQLite.pm in @INC" >&2; exit 2' ;;
    *) rm "$w/bin/$1" ;;
  esac
}
# case | modes that need it | the packages named
while IFS='|' read -r what modes pkgs; do
  world
  break_dep "$what"
  for mode in build run fuzz test; do
    run_deps --check $mode
    case " $modes " in
      *" $mode "*)
        expect "$what missing: --check $mode exits 1" "$rc" 1
        expect "$what missing: --check $mode names" "$(cmd_line)" "apt-get install -y $pkgs"
        check "$what missing: --check $mode says what is missing" \
          has "$tmp/out" "flaxkv ($mode) needs these Debian packages, not installed: $pkgs"
        ;;
      *)
        expect "$what missing: --check $mode does not need it" "$rc $(cat "$tmp/out")" "0 "
        ;;
    esac
  done
done <<'EOF'
sqlite3.h|build run fuzz test|libsqlite3-dev
lmdb.h|build run fuzz test|liblmdb-dev
msgpack.h|build run fuzz test|libmsgpack-dev
jansson.h|build run fuzz test|libjansson-dev
curl/curl.h|build run fuzz test|libcurl4-openssl-dev
zstd.h|build run fuzz test|libzstd-dev
stdio.h|build run fuzz test|libc6-dev
gcc|build run fuzz test|gcc
cc|build run fuzz test|gcc
make|build run fuzz test|make
sqlite3|run test|sqlite3
clang|fuzz test|clang
libfuzzer|fuzz test|libclang-rt-14-dev
mdb_stat|test|lmdb-utils
python3|test|python3 python3-lmdb python3-msgpack python3-numpy python3-venv
import lmdb|test|python3-lmdb
import msgpack|test|python3-msgpack
import numpy|test|python3-numpy
import ensurepip|test|python3-venv
tclsh|test|tcl libsqlite3-tcl
tclsh without sqlite3|test|libsqlite3-tcl
perl without DBD::SQLite|test|libdbd-sqlite3-perl
etcd|test|etcd-server
etcdctl|test|etcd-client
openssl|test|openssl
EOF
# The stub is faithful: the real tclsh exits 0 after the failed require.
world
break_dep "tclsh without sqlite3"
echo 'package require sqlite3' | env PATH="$w/bin" tclsh >/dev/null 2>&1
expect "tclsh without sqlite3: tclsh itself exits 0 (the old check's blind spot)" "$?" 0
# Two missing at once: both named, a package named once (cc and gcc).
world
break_dep gcc
break_dep cc
break_dep "tclsh without sqlite3"
run_deps --check test
expect "gcc, cc, libsqlite3-tcl missing: named once each" "$(cmd_line)" \
  "apt-get install -y gcc libsqlite3-tcl"

# ---------------------------------------------------------------------------
# (c) another user: the command to run, exit 1, no apt-get
world
break_dep "tclsh without sqlite3"
break_dep sqlite3
if [ "$(id -u)" = 0 ]; then
  as_user="setpriv --reuid=65534 --regid=65534 --clear-groups --"
else
  as_user=""
fi
for mode in run test; do
  rc=0
  $as_user env PATH="$w/bin" FLAXKV_DEPS_ROOT="$w/root" /bin/sh "$tmp/deps.sh" $mode \
    >"$tmp/out" 2>&1 || rc=$?
  case $mode in run) want="sqlite3" ;; test) want="sqlite3 libsqlite3-tcl" ;; esac
  expect "non-root, $mode: exits 1" "$rc" 1
  expect "non-root, $mode: prints the command" "$(cmd_line)" "apt-get install -y $want"
  expect "non-root, $mode: the whole message" "$(cat "$tmp/out")" \
    "flaxkv ($mode) needs these Debian packages, not installed: $want
install them as root:  apt-get install -y $want"
  expect "non-root, $mode: runs no apt-get" "$(apt_log)" ""
done
rc=0
$as_user env PATH="$w/bin" FLAXKV_DEPS_ROOT="$w/root" /bin/sh "$tmp/deps.sh" build \
  >"$tmp/out" 2>&1 || rc=$?
expect "non-root, build: the test packages are not its business" "$rc $(cat "$tmp/out")" "0 "

# ---------------------------------------------------------------------------
# (d) root: apt-get install, update and retry, re-check
world
stub id 'echo 0'
break_dep sqlite3
break_dep "import msgpack"
fixed_by_install sqlite3
echo "printf '#!/bin/sh\\nexit 0\\n' >$w/root/usr/bin/python3" >>"$w/repair"
run_deps test
expect "root: exits 0 once installed" "$rc" 0
expect "root: says what it installs" "$(cat "$tmp/out")" "installing: sqlite3 python3-msgpack"
expect "root: one apt-get install" "$(apt_log)" "install -y -q sqlite3 python3-msgpack"

world
stub id 'echo 0'
break_dep sqlite3
run_deps --check run
expect "root, --check: exits 1" "$rc" 1
expect "root, --check: prints the command" "$(cmd_line)" "apt-get install -y sqlite3"
expect "root, --check: runs no apt-get" "$(apt_log)" ""

# install fails, update, the retry succeeds
world
stub id 'echo 0'
break_dep sqlite3
fixed_by_install sqlite3
: >"$w/apt-fails"
: >"$w/update-fixes"
run_deps run
expect "root, install fails: exits 0 after update and retry" "$rc" 0
expect "root, install fails: install, update, install" "$(apt_log)" \
  "install -y -q sqlite3
update -q
install -y -q sqlite3"

# install fails even after update
world
stub id 'echo 0'
break_dep sqlite3
: >"$w/apt-fails"
run_deps run
expect "root, install fails twice: exits 1" "$rc" 1
check "root, install fails twice: says so" has "$tmp/out" "apt-get install failed: sqlite3"

# apt-get succeeds but the check still fails (a wrong package name)
world
stub id 'echo 0'
break_dep libfuzzer
run_deps fuzz
expect "root, still missing after install: exits 1" "$rc" 1
expect "root, still missing after install: names it" "$(cat "$tmp/out")" \
  "installing: libclang-rt-14-dev
still missing after apt-get install -y libclang-rt-14-dev: libclang-rt-14-dev"

# ---------------------------------------------------------------------------
# (e) the Makefile's targets and their modes; the usage error
for t in "all:build" "loadable:build" "install:build" "asan:build" "bench:build" \
  "run:run build" "fuzz:fuzz" "test:test build" "check:build"; do
  target=${t%%:*}
  got=$(make -n -C "$repo" "$target" 2>/dev/null | sed -n 's/^scripts\/deps\.sh //p' | tr '\n' ' ')
  expect "make $target runs deps.sh" "$got" "${t#*:} "
done
run_deps
expect "no mode: exit 2" "$rc" 2
check "no mode: usage" has "$tmp/out" "usage: scripts/deps.sh [--check] build|run|fuzz|test"
run_deps --check tests
expect "unknown mode: exit 2" "$rc" 2

# ---------------------------------------------------------------------------
# (f) this machine, with the real checks
rc=0
sh scripts/deps.sh --check test >"$tmp/out" 2>&1 || rc=$?
expect "this machine: --check test finds nothing missing" "$rc $(cat "$tmp/out")" "0 "

summary
[ "$nfail" = 0 ]
