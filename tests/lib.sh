# lib.sh - assertions for the sh test scripts (sourced, not run).
# Each assertion counts in npass/nfail; a script ends with
#   echo "$npass passed, $nfail failed"
npass=0
nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
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
has() { grep -qF -- "$2" "$1"; }       # has FILE TEXT
hasnt() { ! grep -q -- "$2" "$1"; }    # hasnt FILE REGEX
