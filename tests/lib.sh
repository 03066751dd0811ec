# lib.sh - assertions for the sh test scripts (sourced, not run).
# Each assertion counts in npass/nfail, each skipped one in nskip; a script
# ends with
#   summary
# which prints "N passed, N failed, N skipped".
npass=0
nfail=0
nskip=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
# skip WHY: an assertion that cannot run here
skip() { nskip=$((nskip + 1)); echo "SKIP $*"; }
summary() { echo "$npass passed, $nfail failed, $nskip skipped"; }
# check NAME CMD...: one assertion, passes when CMD succeeds
check() {
  name=$1
  shift
  if "$@"; then ok; else bad "$name"; fi
}
# expect NAME GOT WANT: one assertion on a string
expect() {
  if [ "$2" = "$3" ]; then ok; else bad "$1: got [$2], want [$3]"; fi
}
has() { grep -qxF -- "$2" "$1"; }      # has FILE LINE: a whole line, exactly
hasnt() { ! grep -q -- "$2" "$1"; }    # hasnt FILE REGEX
