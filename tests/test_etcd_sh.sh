#!/bin/sh
# test_etcd_sh.sh - the cluster helpers of tests/etcd.sh, which the sh
# tests of the etcd backend use: a 1-member and a 3-member cluster start
# healthy on free ports; a member killed, stopped (SIGSTOP) and resumed,
# restarted; the leader killed and a new one elected within the bound;
# a member with extra flags (--max-txn-ops); every member stopped by its
# pid at the end (none left running), also when the script is interrupted.
#
# Ends with "N passed, N failed, N skipped"; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
. tests/etcd.sh

if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
  skip "etcd or etcdctl is not installed (Debian etcd-server, etcd-client)"
  summary
  exit 0
fi

etcd_init
ctl() { etcdctl --dial-timeout=1s --command-timeout=2s "$@" 2>&1; }

# A 1-member cluster, with an extra flag.
etcd_cluster one 1 --max-txn-ops 2
expect "one: started" "$?" 0
expect "one: one endpoint" "$(echo "$ETCD_ENDPOINTS_one" | tr ',' '\n' | wc -l)" 1
expect "one: put" "$(ctl --endpoints="$ETCD_ENDPOINTS_one" put k v)" OK
expect "one: get" "$(ctl --endpoints="$ETCD_ENDPOINTS_one" get k --print-value-only)" v
check "one: --max-txn-ops 2 applies" sh -c "printf '\nput a 1\nput b 2\nput c 3\n\n\n' |
  etcdctl --endpoints='$ETCD_ENDPOINTS_one' txn 2>&1 | grep -q 'too many operations'"
expect "one: its leader is member 0" "$(etcd_leader one)" 0

# A 3-member cluster.
etcd_cluster three 3
expect "three: started" "$?" 0
expect "three: three endpoints" "$(echo "$ETCD_ENDPOINTS_three" | tr ',' '\n' | wc -l)" 3
has_leader() { etcd_leader "$1" >/dev/null; }
check "three: a leader" has_leader three
expect "three: put" "$(ctl --endpoints="$ETCD_ENDPOINTS_three" put k1 v1)" OK
expect "three: 4 members started" "$(echo $ETCD_PIDS | wc -w)" 4

# The leader killed: a new one, within the bound (20 s, usually ~1 s).
lead=$(etcd_leader three)
etcd_kill three "$lead"
eval "gone=\$ETCD_PID_three_$lead"
expect "three: the old leader's pid is forgotten" "$gone" ""
t0=$(date +%s)
newlead=""
while [ -z "$newlead" ] && [ $(($(date +%s) - t0)) -lt 20 ]; do
  newlead=$(etcd_leader three) || newlead=""
done
check "three: a new leader" [ -n "$newlead" ]
check "three: not the old one" [ "$newlead" != "$lead" ]
eval "u=\$ETCD_URL_three_$newlead"
expect "three: put after the kill" "$(ctl --endpoints="$u" put k2 v2)" OK
etcd_restart three "$lead"
expect "three: the old leader restarts" "$?" 0
eval "u=\$ETCD_URL_three_$lead"
expect "three: the restarted member has k2" \
  "$(ctl --endpoints="$u" get k2 --print-value-only --consistency=s)" v2

# SIGSTOP and SIGCONT.
etcd_kill three "$lead" STOP
eval "u=\$ETCD_URL_three_$lead"
check "three: a stopped member does not answer" \
  sh -c "! etcdctl --endpoints='$u' --dial-timeout=1s --command-timeout=1s get k1 >/dev/null 2>&1"
check "three: the others do" etcd_healthy three
etcd_kill three "$lead" CONT
check "three: healthy after SIGCONT" etcd_healthy three
expect "three: the resumed member answers" \
  "$(ctl --endpoints="$u" get k1 --print-value-only)" v1

# Everything stopped by pid, nothing left.
pids=$ETCD_PIDS
tmp=$ETCD_TMP
etcd_stop_all
left=0
for p in $pids; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
expect "no member left running" "$left" 0
check "the scratch directory is removed" [ ! -e "$tmp" ]

# A failing script still stops its members: a child shell that exits 1.
out=$(sh -c '. tests/etcd.sh; etcd_init; etcd_cluster fail 1 || exit 3
  echo "$ETCD_PIDS"; exit 1')
rc=$?
expect "a failing script: its exit status" "$rc" 1
left=0
for p in $out; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
expect "a failing script: its member stopped by the trap" "$left $(echo $out | wc -w)" "0 1"

summary
[ "$nfail" = 0 ]
