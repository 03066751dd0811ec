# etcd.sh - real etcd clusters for the sh tests (sourced, not run); the C
# tests have the same in tests/cluster.h.
#
# USAGE
#     . tests/etcd.sh
#     etcd_init                      # once: scratch directory, trap
#     etcd_cluster one 1 || { skip "etcd did not start"; ...; }
#     etcd_cluster three 3 --max-txn-ops 16
#     echo "$ETCD_ENDPOINTS_three"   # http://127.0.0.1:P1,http://127.0.0.1:P2,...
#     etcd_leader three              # the leader's member index (0-based)
#     etcd_kill three 0 [SIGNAL]     # KILL (default), TERM, STOP or CONT
#     etcd_restart three 0
#     etcd_stop_all                  # also run by the trap, at exit or on a signal
#
# INVARIANTS
# - Every member runs `etcd` (Debian etcd-server) on 127.0.0.1 with free
#   ports (asked of the kernel by /usr/bin/python3, then released; a start
#   that fails is retried twice with new ports), --heartbeat-interval 50
#   --election-timeout 500 and its own data directory under $ETCD_TMP (a
#   mktemp -d directory); its log is <data dir>.log.
# - Every member's pid is in $ETCD_PIDS (and in ETCD_PID_<cluster>_<i>);
#   etcd_stop_all kills each by its pid (SIGCONT, then SIGKILL), waits for
#   it and removes $ETCD_TMP.  etcd_init sets a trap on EXIT, INT and TERM
#   that runs it, so members are stopped when the test fails or is
#   interrupted.  A script with its own EXIT trap calls etcd_stop_all from
#   it.
# - etcd_cluster waits (at most 20 s) until every member answers
#   `etcdctl endpoint health` (Debian etcd-client); it returns 1 if not, or
#   if etcd is not installed.
# - Variables: ETCD_ENDPOINTS_<name> (every member, in order),
#   ETCD_URL_<name>_<i> (member i), ETCD_N_<name>.

etcd_init() {
  ETCD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/flaxkv-etcd.XXXXXX") || return 1
  ETCD_PIDS=""
  trap 'etcd_stop_all' EXIT
  trap 'etcd_stop_all; exit 1' INT TERM
}

# etcd_free_ports N: N free TCP ports on 127.0.0.1, one per line
etcd_free_ports() {
  /usr/bin/python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks:
    print(s.getsockname()[1])
' "$1"
}

# etcd_spawn NAME I STATE: start member I of cluster NAME (STATE: new or
# existing); the cluster's variables are set
etcd_spawn() {
  _n=$1
  _i=$2
  eval "_cport=\$ETCD_CPORT_${_n}_$_i _pport=\$ETCD_PPORT_${_n}_$_i _init=\$ETCD_INITIAL_$_n"
  eval "_extra=\$ETCD_EXTRA_$_n"
  _dir=$ETCD_TMP/$_n-$_i
  # shellcheck disable=SC2086 # $_extra is a list of flags
  etcd --name "$_n$_i" --data-dir "$_dir" \
    --listen-client-urls "http://127.0.0.1:$_cport" \
    --advertise-client-urls "http://127.0.0.1:$_cport" \
    --listen-peer-urls "http://127.0.0.1:$_pport" \
    --initial-advertise-peer-urls "http://127.0.0.1:$_pport" \
    --initial-cluster "$_init" --initial-cluster-token "$_n" \
    --initial-cluster-state "$3" \
    --heartbeat-interval 50 --election-timeout 500 $_extra \
    >>"$_dir.log" 2>&1 </dev/null &
  eval "ETCD_PID_${_n}_$_i=$!"
  ETCD_PIDS="$ETCD_PIDS $!"
}

# etcd_healthy NAME: every running member of NAME is healthy (at most 20 s)
etcd_healthy() {
  eval "_eps=\$ETCD_LIVE_$1"
  [ -z "$_eps" ] && return 0
  _t=0
  while [ $_t -lt 200 ]; do
    etcdctl --endpoints="$_eps" --dial-timeout=1s --command-timeout=1s endpoint health \
      >/dev/null 2>&1 && return 0
    sleep 0.1
    _t=$((_t + 1))
  done
  return 1
}

# etcd_live NAME: set ETCD_LIVE_<name> to the endpoints of members running
# and not stopped
etcd_live() {
  eval "_cnt=\$ETCD_N_$1"
  _live=""
  _k=0
  while [ $_k -lt "$_cnt" ]; do
    eval "_pid=\$ETCD_PID_$1_$_k _st=\$ETCD_STOPPED_$1_$_k _u=\$ETCD_URL_$1_$_k"
    if [ -n "$_pid" ] && [ "$_st" != 1 ]; then _live="${_live:+$_live,}$_u"; fi
    _k=$((_k + 1))
  done
  eval "ETCD_LIVE_$1=\$_live"
}

# etcd_cluster NAME N [ETCD FLAGS...]: start a cluster of N members and
# wait until it is healthy.  NAME: letters and digits.
etcd_cluster() {
  _name=$1
  _cnt=$2
  shift 2
  command -v etcd >/dev/null 2>&1 || return 1
  eval "ETCD_N_$_name=$_cnt ETCD_EXTRA_$_name=\"\$*\""
  for _try in 1 2 3; do
    # shellcheck disable=SC2046 # one port a word
    set -- $(etcd_free_ports $((_cnt * 2)))
    _init=""
    _eps=""
    _k=0
    while [ $_k -lt "$_cnt" ]; do
      eval "ETCD_CPORT_${_name}_$_k=$1 ETCD_PPORT_${_name}_$_k=$2"
      eval "ETCD_URL_${_name}_$_k=http://127.0.0.1:$1 ETCD_STOPPED_${_name}_$_k=0"
      _init="${_init:+$_init,}$_name$_k=http://127.0.0.1:$2"
      _eps="${_eps:+$_eps,}http://127.0.0.1:$1"
      shift 2
      _k=$((_k + 1))
    done
    eval "ETCD_INITIAL_$_name=\$_init ETCD_ENDPOINTS_$_name=\$_eps"
    _k=0
    while [ $_k -lt "$_cnt" ]; do
      rm -rf "$ETCD_TMP/$_name-$_k"
      etcd_spawn "$_name" $_k new
      _k=$((_k + 1))
    done
    etcd_live "$_name"
    etcd_healthy "$_name" && return 0
    _k=0
    while [ $_k -lt "$_cnt" ]; do
      etcd_kill "$_name" $_k KILL
      _k=$((_k + 1))
    done
  done
  tail -n 20 "$ETCD_TMP/$_name"-*.log >&2
  return 1
}

# etcd_kill NAME I [KILL|TERM|STOP|CONT]: signal member I by its pid;
# KILL and TERM wait for it to end
etcd_kill() {
  eval "_pid=\$ETCD_PID_$1_$2"
  [ -n "$_pid" ] || return 0
  _sig=${3:-KILL}
  case $_sig in
    STOP | CONT)
      kill -"$_sig" "$_pid" 2>/dev/null
      eval "ETCD_STOPPED_$1_$2=$([ "$_sig" = STOP ] && echo 1 || echo 0)"
      ;;
    *)
      kill -CONT "$_pid" 2>/dev/null
      kill -"$_sig" "$_pid" 2>/dev/null
      wait "$_pid" 2>/dev/null
      eval "ETCD_PID_$1_$2="
      ;;
  esac
  etcd_live "$1"
}

# etcd_restart NAME I: start member I again on its data directory
etcd_restart() {
  eval "_pid=\$ETCD_PID_$1_$2"
  [ -z "$_pid" ] || return 0
  etcd_spawn "$1" "$2" existing
  etcd_live "$1"
  etcd_healthy "$1"
}

# etcd_leader NAME: print the index of the leader (1 if none is found)
etcd_leader() {
  eval "_cnt=\$ETCD_N_$1"
  _k=0
  while [ $_k -lt "$_cnt" ]; do
    eval "_u=\$ETCD_URL_$1_$_k _st=\$ETCD_STOPPED_$1_$_k _pid=\$ETCD_PID_$1_$_k"
    if [ -n "$_pid" ] && [ "$_st" != 1 ]; then
      _f=$(etcdctl --endpoints="$_u" --dial-timeout=1s --command-timeout=1s endpoint status \
        -w fields 2>/dev/null)
      _me=$(echo "$_f" | sed -n 's/^"MemberID" : //p')
      _ld=$(echo "$_f" | sed -n 's/^"Leader" : //p')
      if [ -n "$_me" ] && [ "$_me" = "$_ld" ]; then
        echo $_k
        return 0
      fi
    fi
    _k=$((_k + 1))
  done
  return 1
}

# etcd_stop_all: stop every member by its pid, remove the scratch directory
etcd_stop_all() {
  for _pid in $ETCD_PIDS; do
    kill -CONT "$_pid" 2>/dev/null
    kill -KILL "$_pid" 2>/dev/null
    wait "$_pid" 2>/dev/null
  done
  ETCD_PIDS=""
  [ -n "${ETCD_TMP:-}" ] && rm -rf "$ETCD_TMP"
  ETCD_TMP=""
}
