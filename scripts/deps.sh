#!/bin/sh
# deps.sh - install what building and testing flaxkv needs, from Debian's
# packages, if it is missing.  Run as root (apt-get install); as another user
# it prints the command to run and fails.
#
#   scripts/deps.sh          build + test needs
set -u

need=""
have_hdr() { [ -f "/usr/include/$1" ]; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }

have_hdr sqlite3.h || need="$need libsqlite3-dev"
have_hdr lmdb.h    || need="$need liblmdb-dev"
have_hdr msgpack.h || need="$need libmsgpack-dev"
have_hdr jansson.h || need="$need libjansson-dev"
have_cmd sqlite3   || need="$need sqlite3"
have_cmd mdb_stat  || need="$need lmdb-utils"
have_cmd cc        || need="$need gcc"
have_cmd make      || need="$need make"
[ -x /usr/bin/python3 ] || need="$need python3"
/usr/bin/python3 -c 'import lmdb, msgpack' 2>/dev/null || need="$need python3-lmdb python3-msgpack"
have_cmd tclsh     || need="$need tcl"
echo 'package require sqlite3' | tclsh >/dev/null 2>&1 || need="$need libsqlite3-tcl"
perl -MDBD::SQLite -e 1 >/dev/null 2>&1 || need="$need libdbd-sqlite3-perl"
have_cmd clang     || need="$need clang"
[ -n "$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ] ||
  need="$need libclang-rt-14-dev"

[ -z "$need" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "flaxkv needs these Debian packages:$need" >&2
  echo "install them as root:  apt-get install -y$need" >&2
  exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $need >/dev/null 2>&1 || {
  apt-get update -q >/dev/null 2>&1
  apt-get install -y -q $need || { echo "apt-get install failed:$need" >&2; exit 1; }
}
