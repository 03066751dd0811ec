#!/bin/sh
# deps.sh - check, and as root install, the Debian packages that one make
# target needs.
#
#   scripts/deps.sh build   make, make install, make asan/tsan, make bench:
#                           libsqlite3-dev liblmdb-dev libmsgpack-dev
#                           libjansson-dev libcurl4-openssl-dev libzstd-dev
#                           libc6-dev gcc make
#   scripts/deps.sh run     make run: build's, and sqlite3 (the shell)
#   scripts/deps.sh fuzz    make fuzz: build's, and clang libclang-rt-14-dev
#   scripts/deps.sh test    make test: run's and fuzz's, and lmdb-utils
#                           python3 python3-lmdb python3-msgpack
#                           python3-numpy python3-venv tcl
#                           libsqlite3-tcl libdbd-sqlite3-perl etcd-server
#                           etcd-client openssl
#   scripts/deps.sh --check MODE   report only: never install
#
# Nothing missing: prints nothing, exits 0.  Something missing: as root
# (and without --check), installs it with `apt-get install -y` (after
# `apt-get update` if that fails), checks again, and fails naming what is
# still missing; as another user, or with --check, prints the missing
# packages and the exact `apt-get install -y ...` command, and exits 1.
# A bad MODE exits 2.
#
# INVARIANTS
# - Every check can fail: it runs what the build or the tests run (the
#   compiler, the shell, an import, a `package require` whose failure is the
#   exit status: tclsh reading a script from stdin exits 0 after an error),
#   or looks for the file they read (a header in /usr/include or in its
#   multiarch directory, as the compiler does).  A check names the one
#   package that provides it; where a tool is missing, the checks that use
#   it (an import, a Tcl package) fail too and name their packages as well.
# - Commands are found on PATH; files (headers, /usr/bin/python3, which the
#   tests run, the libFuzzer runtime) under $FLAXKV_DEPS_ROOT (empty: /).
#   Only tests/test_deps.sh sets it, to point the checks at a fake machine.
#   Besides the checked commands the script runs only shell builtins, `id`
#   and `apt-get`.
set -u

check_only=0
if [ "${1:-}" = --check ]; then
  check_only=1
  shift
fi
mode=${1:-}
case $mode in
  build | run | fuzz | test) ;;
  *)
    echo "usage: scripts/deps.sh [--check] build|run|fuzz|test" >&2
    exit 2
    ;;
esac

root=${FLAXKV_DEPS_ROOT:-}
py=$root/usr/bin/python3

# need PACKAGE PROBE...: PACKAGE is wanted (once) unless PROBE succeeds
need() {
  pkg=$1
  shift
  "$@" >/dev/null 2>&1 </dev/null && return
  case " $missing " in *" $pkg "*) ;; *) missing="${missing:+$missing }$pkg" ;; esac
}
# header FILE: /usr/include/FILE, or in a multiarch directory
# (/usr/include/x86_64-linux-gnu/curl/curl.h)
header() {
  for f in "$root/usr/include/$1" "$root"/usr/include/*/"$1"; do
    [ -f "$f" ] && return 0
  done
  return 1
}
py_import() { "$py" -c "import $1"; }
tcl_package() { echo "exit [catch {package require $1}]" | tclsh; }
libfuzzer() {
  for f in "$root"/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a; do
    [ -f "$f" ] && return 0
  done
  return 1
}

# probe: set $missing to the packages $mode needs that are not installed
probe() {
  missing=""
  need libsqlite3-dev header sqlite3.h
  need liblmdb-dev header lmdb.h
  need libmsgpack-dev header msgpack.h
  need libjansson-dev header jansson.h
  need libcurl4-openssl-dev header curl/curl.h
  need libzstd-dev header zstd.h
  need libc6-dev header stdio.h
  need gcc gcc --version
  need gcc cc --version
  need make make --version
  case $mode in run | test) need sqlite3 sqlite3 -version ;; esac
  case $mode in fuzz | test)
    need clang clang --version
    need libclang-rt-14-dev libfuzzer
    ;;
  esac
  [ "$mode" = test ] || return 0
  need lmdb-utils mdb_stat -V
  need python3 test -x "$py"
  need python3-lmdb py_import lmdb
  need python3-msgpack py_import msgpack
  need python3-numpy py_import numpy
  need python3-venv py_import ensurepip
  need tcl tcl_package Tcl
  need libsqlite3-tcl tcl_package sqlite3
  need libdbd-sqlite3-perl perl -MDBI -MDBD::SQLite -e 1
  need etcd-server etcd --version
  need etcd-client etcdctl version
  need openssl openssl version
}

probe
[ -z "$missing" ] && exit 0

if [ "$check_only" = 1 ] || [ "$(id -u)" != 0 ]; then
  echo "flaxkv ($mode) needs these Debian packages, not installed: $missing" >&2
  echo "install them as root:  apt-get install -y $missing" >&2
  exit 1
fi
echo "installing: $missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # $missing is a list of package names
apt-get install -y -q $missing >/dev/null 2>&1 || {
  apt-get update -q >/dev/null 2>&1
  apt-get install -y -q $missing || {
    echo "apt-get install failed: $missing" >&2
    exit 1
  }
}
wanted=$missing
probe
if [ -n "$missing" ]; then
  echo "still missing after apt-get install -y $wanted: $missing" >&2
  exit 1
fi
