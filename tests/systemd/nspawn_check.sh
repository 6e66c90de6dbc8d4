#!/bin/sh
# The check nspawn_test.sh runs inside its container, as root, from a oneshot
# unit, with systemd as PID 1 and pythreadd under its real hardened units,
# as shipped (state kept in /var/lib/pythread). Two clients hold a lock while their
# command waits for a file: `pythreadctl lock L` as root and `pythreadctl
# lock U` as nobody. Through `systemctl restart pythreadd` and then a crash
# (SIGKILL, brought back by Restart=on-failure) each lock must stay with the
# same process and the same session, taken up again within the grace; once
# the file appears both commands finish, pythreadctl exits 0 and the locks
# are free. `systemctl restart` keeps even their connections (the same
# socket in /proc/PID/fd, pythreadctl sessions says so, and nothing is left
# in systemd's fd store); the crash cannot, and their processes reconnect
# (which they could not if systemd still held their old sockets: they would
# never see them end).
#
# With /etc/default/pythreadd-cluster (nspawn_test.sh ... cluster: the unit's
# drop-in cluster.conf joins the etcd on the host as host "nspawn", TTL 10 s)
# it also checks that the hardened unit reaches etcd (status: this host and a
# lease), that `pythreadctl lock --cluster` runs a command and `list
# --cluster` shows the object, and that `systemctl restart` leaves the
# cluster and joins it again at once (a new lease well within the TTL; the
# old one revoked, so a cluster lock held across the restart is given back,
# and the object can be opened and taken again), while the host locks stay
# held as above; after the crash the daemon joins again once its old lease
# has run out.
#
# Writes OUT/started first, then OUT/log step by step, and at the end
# OUT/result: PASS or FAIL with the reason on its first line, then the steps,
# the daemon's journal and its unit's status. The unit powers the container
# off when this script ends, however it ends.
# shellcheck disable=SC2046,SC2086 # the daemon's figures are split into words on purpose
set -u

out=/var/lib/pythread-nspawn
sock=/run/pythread/pythreadd.sock
go=/tmp/pt-go
mkdir -p "$out"
: >"$out/log"
echo started >"$out/started"

why=""
root_pid=""
nobody_pid=""
cluster_pid=""
cluster=""
[ -f /etc/default/pythreadd-cluster ] && cluster=yes

log() {
    echo "$*" >>"$out/log"
    echo "check: $*"
}

# Every call has a deadline: a hung call must end in FAIL, not in the
# unit's start timeout with no result written.
ctl() {
    timeout 20 pythreadctl --socket "$sock" "$@"
}

finish() {
    # A failed run leaves the holders waiting: let their commands end.
    touch "$go"
    for p in $root_pid $nobody_pid $cluster_pid; do
        kill "$p" 2>/dev/null || true
    done
    {
        if [ -z "$why" ]; then echo PASS; else echo "FAIL: $why"; fi
        echo "--- steps"
        cat "$out/log"
        echo "--- journalctl -u pythreadd.socket -u pythreadd.service"
        journalctl --no-pager -o short-monotonic -u pythreadd.socket -u pythreadd.service
        echo "--- systemctl status pythreadd.service"
        systemctl status --no-pager --lines=0 pythreadd.service
    } >"$out/result.new" 2>&1
    mv "$out/result.new" "$out/result"
    sync
}
trap finish EXIT
trap 'fail "stopped by SIGTERM (the unit timed out?)"' TERM

fail() {
    why=$*
    log "FAIL: $why"
    exit 1
}

# wait_until SECONDS COMMAND...: true once COMMAND succeeds, false if it
# never does within SECONDS.
wait_until() {
    n=$(($1 * 10))
    shift
    while ! "$@"; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}

# "locked pid session uid" of the lock NAME's first holder ("false 0 0 0"
# when free); of the cluster's lock NAME with --cluster first.
holder() {
    ctl show "$@" --json |
        jq -r '[.object.locked, (.holders[0].pid // 0), (.holders[0].session // 0),
                (.holders[0].uid // 0)] | map(tostring) | join(" ")'
}

# "pid in_grace taken_up" of the daemon answering on the socket (a daemon
# without --state-dir has no "state": no grace, nothing taken up).
daemon_state() {
    ctl status --json |
        jq -r '[.pid, (.state.in_grace // false), (.state.sessions.taken_up // 0)] | map(tostring) | join(" ")'
}

exited() { # PID: our child PID has exited (a zombie until waited for)
    ! kill -0 "$1" 2>/dev/null || grep -q ') Z ' "/proc/$1/stat"
}

held_by() { # NAME PID [--cluster]: NAME is locked by PID
    [ "$(holder ${3:-} "$1" | cut -d' ' -f1,2)" = "true $2" ]
}

# A daemon other than OLD_PID answers and its grace is over.
new_daemon_ready() { # OLD_PID
    set -- "$1" $(daemon_state 2>/dev/null)
    [ $# -eq 4 ] && [ "$2" != "$1" ] && [ "$3" = false ]
}

# The locks are still held by the same processes and sessions.
check_holders() { # WHEN
    when=$1
    for l in "L $root_pid $root_session 0" "U $nobody_pid $nobody_session 65534"; do
        set -- $l
        h=$(holder "$1") || fail "$when: pythreadctl show $1 failed"
        log "$when: $1: locked, pid, session, uid = $h"
        [ "$h" = "true $2 $3 $4" ] || fail "$when: $1 is not held by pid $2 in session $3 (uid $4): $h"
    done
}

# The daemon PID runs under the unit's sandbox, not merely beside it: a
# seccomp filter, no new privileges, no capabilities, and a /proc of its own
# that hides other users' processes (which the daemon must cope with).
check_hardened() { # WHEN PID
    st=/proc/$2/status
    sandbox="$(grep -E '^(Seccomp|NoNewPrivs|CapEff):' "$st" | tr -s '\t ' ' ' | tr '\n' ' ')"
    procfs=$(awk '$5 == "/proc" { print $NF }' "/proc/$2/mountinfo")
    log "$1: daemon sandbox: ${sandbox}/proc $procfs"
    grep -q '^Seccomp:[[:space:]]*2$' "$st" || fail "$1: the daemon has no seccomp filter"
    grep -q '^NoNewPrivs:[[:space:]]*1$' "$st" || fail "$1: the daemon may gain privileges"
    grep -q '^CapEff:[[:space:]]*0*$' "$st" || fail "$1: the daemon has capabilities"
    case $procfs in
    *hidepid=invisible*) ;;
    *) fail "$1: the daemon's /proc does not hide other users' processes: $procfs" ;;
    esac
}

# After a restart: a new daemon, the unit's main process, over its grace,
# has taken up both clients' sessions.
check_restarted() { # WHEN OLD_PID
    when=$1
    wait_until 30 new_daemon_ready "$2" || fail "$when: no new daemon out of its grace within 30 s"
    set -- $(daemon_state)
    main=$(systemctl show -p MainPID --value pythreadd.service)
    log "$when: daemon pid $1 (unit MainPID $main), sessions taken up: $3"
    log "$when: state: $(ctl status --json | jq -c '.state // "none (no --state-dir)"')"
    [ "$1" = "$main" ] || fail "$when: the daemon answering (pid $1) is not the unit's MainPID $main"
    [ "$3" -ge 2 ] || fail "$when: state.sessions.taken_up is $3, not the 2 sessions holding locks"
    check_hardened "$when" "$1"
    check_holders "$when"
}

# The sockets PID has open past its standard streams (those are the
# unit's journal stream, shared), "socket:[INODE]" each, sorted on one line.
sockets_of() { # PID
    for f in /proc/"$1"/fd/*; do
        case ${f##*/} in
        0 | 1 | 2) ;;
        *) readlink "$f" ;;
        esac
    done 2>/dev/null | grep '^socket:' | sort | tr '\n' ' '
}

# "connection_kept" of SESSION as pythreadctl sessions reports it.
session_kept() { # SESSION
    ctl sessions --json | jq -r --argjson s "$1" '.sessions[] | select(.id == $s) | .connection_kept'
}

# After `systemctl restart`: both holders on the sockets they had, their
# sessions marked kept, and nothing of them left in systemd's fd store.
check_kept() { # WHEN
    when=$1
    for l in "L $root_pid $root_session $root_sockets" "U $nobody_pid $nobody_session $nobody_sockets"; do
        set -- $l
        name=$1 pid=$2 session=$3
        shift 3
        now=$(sockets_of "$pid")
        log "$when: $name: pythreadctl (pid $pid) sockets: $now (before: $*)"
        [ "$now" = "$* " ] || fail "$when: pythreadctl lock $name (pid $pid) is not on the connection it had: $now, before: $*"
        k=$(session_kept "$session")
        [ "$k" = true ] || fail "$when: pythreadctl sessions does not say session $session kept its connection: $k"
    done
    n=$(ctl status --json | jq -r '.state.sessions.connection_kept // 0')
    log "$when: state.sessions.connection_kept: $n"
    [ "$n" -ge 2 ] || fail "$when: state.sessions.connection_kept is $n, not the 2 holders"
    stored=$(systemctl show -p NFileDescriptorStore --value pythreadd.service)
    log "$when: NFileDescriptorStore=$stored"
    [ "$stored" = 0 ] || fail "$when: systemd's fd store still holds $stored descriptors: the daemon did not take its connections out"
}

# After the crash: each holder reconnected (no socket it had before).
check_reconnected() { # WHEN
    when=$1
    for l in "L $root_pid $root_sockets" "U $nobody_pid $nobody_sockets"; do
        set -- $l
        name=$1 pid=$2
        shift 2
        now=$(sockets_of "$pid")
        log "$when: $name: pythreadctl (pid $pid) sockets: $now (before the restarts: $*)"
        for old in "$@"; do
            case " $now" in
            *" $old "*) fail "$when: pythreadctl lock $name (pid $pid) still has $old: it never saw the crashed daemon's connection end" ;;
            esac
        done
    done
}

# ---- the cluster (with cluster.conf) -------------------------------------

# "host lease" of this daemon in the cluster ("- null" outside one). The
# lease as the daemon wrote it: jq 1.6 reads numbers as doubles, and the
# leases etcd grants one after another differ in the last digits only.
cluster_state() {
    j=$(ctl status --json) || return 1
    printf '%s %s\n' "$(echo "$j" | jq -r '.cluster.host // "-"')" \
        "$(echo "$j" | tr -d ' \n' | grep -o '"lease":[-0-9a-z]*' | cut -d: -f2)"
}

# This daemon is in the cluster as host "nspawn" with a lease other than OLD.
joined() { # [OLD_LEASE]
    set -- "${1:-}" $(cluster_state 2>/dev/null)
    [ "$2" = nspawn ] && [ "$3" != null ] && [ "$3" != "$1" ]
}

# The daemon reaches etcd through the unit's hardening: joined, in its
# own list of hosts. Sets lease.
check_joined() { # WHEN [OLD_LEASE]
    when=$1
    t0=$(date +%s.%N)
    wait_until "$3" joined "${2:-}" ||
        fail "$when: not in the cluster (a new lease) within $3 s: $(ctl status --json | jq -c .cluster)"
    t1=$(date +%s.%N)
    st=$(ctl status --json | jq -c .cluster)
    lease=$(cluster_state | cut -d' ' -f2)
    log "$when: joined as lease $lease (waited $(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }') s): $st"
    echo "$st" | jq -e '.members | index("nspawn")' >/dev/null ||
        fail "$when: host nspawn is not among the cluster's members: $st"
}

# What the unit's network settings came to (check_firewall sees whether
# systemd could put them in force: in a container it says it cannot only at
# debug level).
log_network() {
    log "unit: $(systemctl show -p PrivateNetwork -p RestrictAddressFamilies -p IPAddressDeny \
        -p IPAddressAllow pythreadd.service | tr '\n' ' ')"
    deny=$(systemctl show -p IPAddressDeny --value pythreadd.service | tr ' ' '\n' | sort | tr '\n' ' ')
    [ "$deny" = "0.0.0.0/0 ::/0 " ] || fail "the unit's IPAddressDeny= is not 'any' with cluster.conf: $deny"
    [ "$(systemctl show -p IPAddressAllow --value pythreadd.service)" = "127.0.0.1/32" ] ||
        fail "the unit's IPAddressAllow= is not etcd's 127.0.0.1 alone"
}

# The deny is enforced here, not merely configured: a pythreadd of its own
# under IPAddressDeny=any alone (pythread-nspawn-probe.service, for 3 s)
# cannot reach the etcd the service joined through IPAddressAllow=.
check_firewall() {
    systemctl start pythread-nspawn-probe.service
    said=$(journalctl --no-pager -o cat -u pythread-nspawn-probe.service | grep -m 1 'no endpoint answered' || true)
    [ -n "$said" ] || log "the probe: $(journalctl --no-pager -o cat -u pythread-nspawn-probe.service)"
    log "a pythreadd under IPAddressDeny=any alone: ${said:-reached etcd}"
    [ -n "$said" ] || fail "a pythreadd under IPAddressDeny=any reached etcd: the firewall is not in force"
}

check_cluster_start() {
    check_joined "cluster" "" 20
    log_network
    check_firewall
    lease0=$lease
    # shellcheck disable=SC2016 # expanded by the command's shell
    ctl lock --cluster CT -- sh -c 'echo "$PYTHREAD_LOCK_NAME $PYTHREAD_LOCK_TOKEN" >/tmp/pt-ct' ||
        fail "pythreadctl lock --cluster CT -- CMD exited $?"
    log "pythreadctl lock --cluster CT ran its command: $(cat /tmp/pt-ct)"
    [ "$(cut -d' ' -f1 /tmp/pt-ct)" = CT ] || fail "the command under lock --cluster CT saw $(cat /tmp/pt-ct)"
    pythreadctl --socket "$sock" lock --cluster C -- sh -c "$hold_cmd" &
    cluster_pid=$!
    wait_until 20 held_by C "$cluster_pid" --cluster ||
        fail "cluster lock C is not held by pythreadctl (pid $cluster_pid): $(holder --cluster C)"
    log "cluster lock C held by pid $cluster_pid: $(ctl show --cluster C --json | jq -c '.holders[0]')"
    names=$(ctl list --cluster --json | jq -r '.. | objects | select(has("name") and has("kind")) | .name' | sort | tr '\n' ' ')
    log "pythreadctl list --cluster: $names"
    for n in C CT; do
        case " $names" in
        *" $n "*) ;;
        *) fail "pythreadctl list --cluster does not show $n: $names" ;;
        esac
    done
}

# After `systemctl restart` (which took RESTART_SECONDS): the daemon left (its
# lease revoked at the stop: a new lease at once, not a TTL later) and the
# cluster lock held across it was given back.
check_cluster_restart() { # RESTART_SECONDS
    journalctl --no-pager -o cat -u pythreadd.service | grep -q 'left the cluster' ||
        fail "after systemctl restart: the daemon did not say it left the cluster"
    check_joined "after systemctl restart" "$lease0" 5
    awk -v t="$1" 'BEGIN { exit !(t < 5) }' ||
        fail "after systemctl restart: the restart took $1 s, near the TTL of 10 s"
    # The holder's session ended with the cluster's (never kept across a
    # restart): pythreadctl learns at once, signals its command and exits 4.
    h=$(holder --cluster C)
    log "after systemctl restart: cluster lock C: locked, pid, session, uid = $h"
    [ "${h%% *}" = false ] || fail "after systemctl restart: cluster lock C is still held: $h"
    wait_until 10 exited "$cluster_pid" ||
        fail "after systemctl restart: pythreadctl lock --cluster C (pid $cluster_pid) still runs its command, without the cluster lock"
    st=0
    wait "$cluster_pid" || st=$?
    log "after systemctl restart: pythreadctl lock --cluster C (pid $cluster_pid) exited $st"
    [ "$st" = 4 ] || fail "after systemctl restart: pythreadctl lock --cluster C exited $st, not 4 (session lost)"
    cluster_pid=""
    ctl lock --cluster -w 5 C -- true ||
        fail "after systemctl restart: pythreadctl lock --cluster -w 5 C -- true exited $?"
    log "after systemctl restart: cluster lock C taken and released again"
    lease1=$lease
}

# ---- a. two holders ----------------------------------------------------
systemctl is-active --quiet pythreadd.socket || fail "pythreadd.socket is not active"
hold_cmd="until [ -e $go ]; do sleep 0.1; done; echo ok > /tmp/pt-done-\$(id -un)"
pythreadctl --socket "$sock" lock L -- sh -c "$hold_cmd" &
root_pid=$!
# setpriv execs pythreadctl: $! is the pythreadctl process.
setpriv --reuid=65534 --regid=65534 --clear-groups \
    pythreadctl --socket "$sock" lock U -- sh -c "$hold_cmd" &
nobody_pid=$!
wait_until 20 held_by L "$root_pid" || fail "L is not held by pythreadctl (pid $root_pid): $(holder L)"
wait_until 20 held_by U "$nobody_pid" || fail "U is not held by pythreadctl (pid $nobody_pid): $(holder U)"
root_session=$(holder L | cut -d' ' -f3)
nobody_session=$(holder U | cut -d' ' -f3)
set -- $(daemon_state)
first=$1
log "held: L by root pid $root_pid session $root_session, U by nobody pid $nobody_pid session $nobody_session; daemon pid $first"
check_hardened before "$first"
check_holders before
root_sockets=$(sockets_of "$root_pid")
nobody_sockets=$(sockets_of "$nobody_pid")
[ -n "$root_sockets" ] && [ -n "$nobody_sockets" ] || fail "no socket found in /proc/PID/fd of the holders"
[ -z "$cluster" ] || check_cluster_start

# ---- b. a restart ------------------------------------------------------
t0=$(date +%s.%N)
systemctl restart pythreadd.service || fail "systemctl restart pythreadd.service failed"
t1=$(date +%s.%N)
took=$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')
log "systemctl restart pythreadd.service took $took s"
check_restarted "after systemctl restart" "$first"
check_kept "after systemctl restart"
[ -z "$cluster" ] || check_cluster_restart "$took"
# Stopped by SIGTERM, the daemon exits 0.
if journalctl --no-pager -o cat -u pythreadd.service | grep -q 'Failed with result'; then
    fail "after systemctl restart: the daemon did not stop cleanly: $(journalctl --no-pager -o cat -u pythreadd.service | grep 'Failed with result')"
fi
set -- $(daemon_state)
second=$1

# ---- c. a crash --------------------------------------------------------
# The main process only: the daemon is that one process, and killing the
# whole control group walks it, which was seen to fail with EIO after the
# SIGKILL had gone out (systemctl kill then exits 1; the cause is not
# known).
systemctl kill --kill-whom=main -s KILL pythreadd.service ||
    fail "systemctl kill --kill-whom=main -s KILL pythreadd.service failed"
check_restarted "after SIGKILL" "$second"
check_reconnected "after SIGKILL"
n=$(ctl status --json | jq -r '.state.sessions.connection_kept // 0')
[ "$n" = 0 ] || fail "after SIGKILL: state.sessions.connection_kept is $n: a crash cannot keep connections"
restarts=$(systemctl show -p NRestarts --value pythreadd.service)
log "after SIGKILL: NRestarts=$restarts"
[ "$restarts" -ge 1 ] || fail "after SIGKILL: the daemon came back without Restart= (NRestarts=$restarts)"
# The killed daemon's lease stands until its TTL (10 s) runs out: the new one
# joins after that.
[ -z "$cluster" ] || check_joined "after SIGKILL" "$lease1" 30

# ---- d. the commands finish --------------------------------------------
touch "$go"
wait_until 30 exited "$root_pid" || fail "pythreadctl lock L still runs 30 s after its command could end"
wait_until 30 exited "$nobody_pid" || fail "pythreadctl lock U still runs 30 s after its command could end"
wait "$root_pid"
rc=$?
root_pid=""
wait "$nobody_pid"
nrc=$?
nobody_pid=""
log "pythreadctl lock exit status: L (root) $rc, U (nobody) $nrc"
[ $rc -eq 0 ] || fail "pythreadctl lock L exited $rc"
[ $nrc -eq 0 ] || fail "pythreadctl lock U (as nobody) exited $nrc"
if [ -n "$cluster_pid" ]; then
    wait_until 30 exited "$cluster_pid" || fail "pythreadctl lock --cluster C still runs 30 s after its command could end"
    wait "$cluster_pid"
    log "pythreadctl lock --cluster C (pid $cluster_pid) exit status: $?"
    cluster_pid=""
fi
[ "$(cat /tmp/pt-done-root 2>/dev/null)" = ok ] || fail "the command under lock L did not write its file"
[ "$(cat /tmp/pt-done-nobody 2>/dev/null)" = ok ] || fail "the command under lock U did not write its file"
for l in L U; do
    h=$(holder $l)
    log "at the end: $l: $h"
    [ "${h%% *}" = false ] || fail "$l is still locked at the end: $h"
done
log "all checks passed"
