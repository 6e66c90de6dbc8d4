#!/bin/sh
# pythreadd under a real systemd as PID 1: boots Debian 12 with
# `systemd-nspawn -b` in a debootstrapped root holding the built pythreadd,
# pythreadctl and libpythread and the project's own hardened units (which
# keep the state in /var/lib/pythread), and runs nspawn_check.sh there from
# a oneshot unit:
# locks held by root and by nobody through `pythreadctl lock` must stay with
# their processes and sessions across `systemctl restart` (on the very
# connections they had, through systemd's fd store, left empty afterwards)
# and a SIGKILL (Restart=on-failure: they reconnect), and the commands under
# them must finish undisturbed.
#
# With "cluster" after the arguments it also starts a one-member etcd on this
# host (Debian's etcd-server) and boots the container in this host's network
# namespace (not --private-network, so that it reaches that etcd on
# 127.0.0.1), with systemd/cluster.conf installed as shipped,
# /etc/default/pythreadd-cluster naming that etcd and a drop-in narrowing
# IPAddressAllow= to its address, as cluster.conf says: the check then also
# looks at the cluster (the host's name and lease in `pythreadctl status`, a
# cluster lock taken, listed, and given back when a `systemctl restart`
# makes the daemon leave, which it must join again at once; a pythreadd
# under IPAddressDeny=any alone must not reach etcd).
#
# Usage: nspawn_test.sh PYTHREADD PYTHREADCTL LIBPYTHREAD_DIR UNIT_DIR [cluster]
#
# Exit status 77 (skipped, with the reason printed) when it cannot run here:
# not root, no systemd-nspawn or debootstrap and apt-get cannot install them,
# (cluster) no etcd and apt-get cannot install etcd-server, or it does not start,
# debootstrap fails (no network), or systemd in the container never reaches
# the check. The base root is kept between runs, keyed by its package list,
# in $PT_NSPAWN_CACHE (default /var/tmp/pythread-nspawn-bookworm); each run
# boots a copy of it. PT_NSPAWN_MIRROR chooses the Debian mirror and
# PT_NSPAWN_KEEP=1 keeps the run's copy for a look afterwards.
set -eu

daemon=$1 ctl=$2 libdir=$3 units=$4 mode=${5:-host}
case $mode in
host) name=systemd.nspawn ;;
cluster) name=systemd.nspawn_cluster ;;
*)
    echo "usage: nspawn_test.sh PYTHREADD PYTHREADCTL LIBPYTHREAD_DIR UNIT_DIR [cluster]" >&2
    exit 2
    ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=${PT_NSPAWN_MIRROR:-http://deb.debian.org/debian}
cache=${PT_NSPAWN_CACHE:-/var/tmp/pythread-nspawn-$suite}
# Within ctest's 900 s: debootstrap (about a minute here, once), then boot,
# check and power off (seconds; the check itself gives up after 240 s).
debootstrap_timeout=480
boot_timeout=300
# debootstrap and systemd-nspawn live in sbin directories.
PATH=$PATH:/usr/sbin:/sbin
export PATH

run=""
nspawn_pid=""
etcd_pid=""
etcd_dir=""

say() {
    echo "$name: $*"
}

skip() {
    say "skipped: $*"
    exit 77
}

fail() {
    echo "$name: FAILED: $*" >&2
    exit 1
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    # The container first: its root is about to go.
    if [ -n "$nspawn_pid" ]; then
        kill "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    if [ -n "$run" ]; then
        if [ "${PT_NSPAWN_KEEP:-0}" = 1 ]; then
            say "the run's root is kept in $run"
        else
            rm -rf "$run"
        fi
    fi
    stop_etcd
}
trap cleanup EXIT
trap 'exit 143' INT TERM

# ---- what this host needs -----------------------------------------------

need_tools() {
    command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null && return 0
    apt_install "systemd-nspawn or debootstrap is missing" systemd-container debootstrap
}

# ---- (cluster) the etcd on this host ------------------------------------

# N ports of 127.0.0.1 that nothing listens on now, below the kernel's
# ephemeral range (where connections take theirs). Racy: start_etcd tries
# again when etcd cannot bind them.
free_ports() { # N
    ss -Htan | awk -v n="$1" -v seed="$$$(date +%s)" '
        { k = split($4, a, ":"); used[a[k]] = 1 }
        END {
            srand(seed % 2147483647)
            while (n > 0) {
                p = 20000 + int(rand() * 12000)
                if (!(p in used)) { used[p] = 1; print p; n-- }
            }
        }'
}

etcd_healthy() { # URL
    if command -v etcdctl >/dev/null; then
        ETCDCTL_API=3 etcdctl --endpoints="$1" --dial-timeout=1s --command-timeout=1s \
            endpoint health >/dev/null 2>&1
    else
        curl -fsS --max-time 1 "$1/health" 2>/dev/null | grep -q '"health":"true"'
    fi
}

# Starts a one-member etcd on free 127.0.0.1 ports, its data in a directory
# of its own, and sets etcd_url once it answers; skips when there is no etcd
# or it never answers.
start_etcd() {
    etcd_bin=${PT_NSPAWN_ETCD:-$(command -v etcd || echo /usr/bin/etcd)}
    if [ ! -x "$etcd_bin" ]; then
        apt_install "no etcd here (\$PT_NSPAWN_ETCD, etcd on \$PATH)" etcd-server
        etcd_bin=$(command -v etcd) || skip "etcd-server is installed but there is no etcd"
    fi
    command -v etcdctl >/dev/null || command -v curl >/dev/null ||
        skip "neither etcdctl nor curl here to see when etcd answers"
    etcd_dir=$(mktemp -d "${TMPDIR:-/tmp}/pythread-nspawn-etcd-XXXXXX")
    for attempt in 1 2 3 4 5; do
        # shellcheck disable=SC2046 # two ports, two words
        set -- $(free_ports 2)
        etcd_url=http://127.0.0.1:$1
        peer=http://127.0.0.1:$2
        rm -rf "$etcd_dir/data"
        "$etcd_bin" --name m0 --data-dir "$etcd_dir/data" \
            --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
            --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
            --initial-cluster "m0=$peer" >"$etcd_dir/etcd.log" 2>&1 &
        etcd_pid=$!
        n=200 # 20 s
        while ! etcd_healthy "$etcd_url"; do
            if ! kill -0 "$etcd_pid" 2>/dev/null || [ $n -eq 0 ]; then
                break
            fi
            n=$((n - 1))
            sleep 0.1
        done
        if kill -0 "$etcd_pid" 2>/dev/null && etcd_healthy "$etcd_url"; then
            say "etcd $("$etcd_bin" --version | head -n 1 | sed 's/.*: *//') answers on $etcd_url (pid $etcd_pid, attempt $attempt)"
            return 0
        fi
        if kill -0 "$etcd_pid" 2>/dev/null; then
            reason="no answer within 20 s"
        else
            st=0
            wait "$etcd_pid" || st=$?
            reason="it exited with status $st"
        fi
        reason="$reason: $(tail -n 3 "$etcd_dir/etcd.log")"
        stop_etcd_process
    done
    skip "etcd ($etcd_bin) did not start on 127.0.0.1: $reason"
}

stop_etcd_process() {
    if [ -n "$etcd_pid" ]; then
        kill "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
        etcd_pid=""
    fi
}

# shellcheck disable=SC2317 # called by cleanup, the trap's
stop_etcd() {
    stop_etcd_process
    if [ -n "$etcd_dir" ]; then
        rm -rf "$etcd_dir"
        etcd_dir=""
    fi
}

# apt-get install PACKAGE..., or skip saying WHY and what apt-get said.
apt_install() { # WHY PACKAGE...
    why=$1
    shift
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp)
    # apt-get update only when the package lists are too old to install from.
    if ! apt-get install -y -q --no-install-recommends "$@" >"$apt_log" 2>&1 &&
        ! { apt-get update -q && apt-get install -y -q --no-install-recommends "$@"; } \
            >>"$apt_log" 2>&1; then
        reason=$(tail -n 3 "$apt_log")
        rm -f "$apt_log"
        skip "$why and apt-get could not install it: $reason"
    fi
    rm -f "$apt_log"
}

# The shared libraries the three binaries load, as ldd resolves them here
# (not the "FILE:" lines ldd heads each binary's list with).
libraries() {
    ldd "$daemon" "$ctl" "$libdir"/libpythread.so.0 |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(0x/ { print $1 }' |
        grep -v '/libpythread\.so' | sort -u
}

# "PACKAGE LIBRARY" for each library, PACKAGE "-" when no Debian package
# holds it. Debian 12 has /lib -> usr/lib and dpkg knows a file under one
# spelling only: every spelling goes to one dpkg -S (one call: each takes a
# while).
library_owners() {
    spellings=$(for lib in $(libraries); do
        real=$(readlink -f "$lib")
        printf '%s %s\n' "$lib" "$lib" "$lib" "$real" "$lib" "${lib#/usr}" "$lib" "${real#/usr}"
    done)
    # shellcheck disable=SC2046 # one argument per spelling
    owners=$(dpkg -S $(echo "$spellings" | awk '{ print $2 }' | sort -u) 2>/dev/null) || true
    # dpkg -S says "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6", or
    # "pkg1, pkg2: FILE" for a file two packages share.
    printf '%s\n--\n%s\n' "$owners" "$spellings" | awk '
        $0 == "--" { map = 1; next }
        !map && i = index($0, ": /") {
            pkg = substr($0, 1, i - 1); sub(/[:,].*/, "", pkg)
            owner[substr($0, i + 2)] = pkg; next
        }
        map && !($1 in found) && ($2 in owner) { found[$1] = owner[$2] }
        map { libs[$1] = 1 }
        END { for (l in libs) print (l in found ? found[l] : "-"), l }'
}

# The root's packages: systemd to boot, jq for the check to read the JSON,
# and whatever holds the libraries (libevent-core, libprotobuf-c1,
# libsystemd0, and a sanitizer's runtime in such a build). The host is
# Debian 12 too, so its package names hold for the root.
packages() {
    { echo systemd; echo jq; echo "$owners_of_libs" | awk '$1 != "-" { print $1 }'; } |
        sort -u | tr '\n' ',' | sed 's/,$//'
}

# ---- the cached base root -----------------------------------------------

# Sets base to the base root for PACKAGES, debootstrapping it the first time. A
# lock keeps two runs from building the same one; a build lands under its
# name only once debootstrap has succeeded.
base_root() {
    key=$(printf '%s\n' "$suite" "$mirror" "$1" | sha256sum | cut -c1-16)
    base=$cache/$suite-$key
    mkdir -p "$cache"
    exec 9>"$cache/lock"
    flock -w 1200 9 || fail "another run holds $cache/lock"
    if [ ! -d "$base/root" ]; then
        say "debootstrap $suite ($1) into $base (once: later runs reuse it)"
        rm -rf "$base.new"
        mkdir -p "$base.new"
        if ! timeout "$debootstrap_timeout" debootstrap --variant=minbase --include="$1" \
            "$suite" "$base.new/root" "$mirror" \
            >"$base.new/debootstrap.log" 2>&1; then
            reason=$(tail -n 5 "$base.new/debootstrap.log"
                tail -n 5 "$base.new/root/debootstrap/debootstrap.log" 2>/dev/null)
            rm -rf "$base.new"
            skip "debootstrap of $suite from $mirror failed (no network?): $reason"
        fi
        echo "$1" >"$base.new/packages"
        mv "$base.new" "$base"
    fi
    exec 9>&-
    base=$base/root
}

# ---- the run's root -----------------------------------------------------

# The unit that runs the check. SuccessAction= and FailureAction= power the
# container off however the check ends, a timeout included.
check_unit() {
    cat <<'EOF'
[Unit]
Description=pythread: locks kept across a restart and a crash of pythreadd
Requires=pythreadd.socket
After=pythreadd.socket systemd-sysusers.service
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/usr/local/libexec/pythread-nspawn-check
TimeoutStartSec=240
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
}

# (cluster) A pythreadd under the unit's IPAddressDeny=any and no
# IPAddressAllow=: the check starts it to see that systemd enforces the
# firewall in the container. It stops after 3 s, having said whether it
# reached etcd.
probe_unit() {
    cat <<'EOF'
[Unit]
Description=pythread: pythreadd under IPAddressDeny=any, trying etcd

[Service]
Type=oneshot
EnvironmentFile=/etc/default/pythreadd-cluster
ExecStart=-/usr/bin/timeout 3 /usr/sbin/pythreadd --socket /run/pythread-probe.sock --etcd ${PYTHREAD_ETCD} --host-name probe --etcd-prefix /pythread-probe/
IPAddressDeny=any
EOF
}

# AddressSanitizer's leak check stops the threads with ptrace, which
# SystemCallFilter= denies: it would fail every clean exit. The other tests
# check for leaks. (Nothing else is added to the units as shipped, but for
# the cluster's drop-ins.)
sanitizer_dropin() {
    printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n'
}

install_project() {
    root=$1
    install -m 0755 "$daemon" "$root/usr/sbin/pythreadd"
    install -m 0755 "$ctl" "$root/usr/bin/pythreadctl"
    cp -P "$libdir"/libpythread.so.0* "$root/usr/local/lib/"
    # A library no Debian package holds is copied from here.
    for lib in $(echo "$owners_of_libs" | awk '$1 == "-" { print $2 }'); do
        cp -L "$lib" "$root/usr/local/lib/"
    done
    chroot "$root" ldconfig

    etc=$root/etc/systemd/system
    install -m 0644 "$units/pythreadd.service" "$units/pythreadd.socket" "$etc/"
    mkdir -p "$root/usr/lib/sysusers.d" "$etc/pythreadd.service.d"
    install -m 0644 "$units/pythread-sysusers.conf" "$root/usr/lib/sysusers.d/pythread.conf"
    if echo "$owners_of_libs" | grep -q '/libasan\.so'; then
        sanitizer_dropin >"$etc/pythreadd.service.d/sanitizer.conf"
    fi
    if [ "$mode" = cluster ]; then
        # The drop-in as shipped, with the settings its comments ask for; the
        # check looks for the settings to know it is to look at the cluster.
        install -m 0644 "$units/cluster.conf" "$etc/pythreadd.service.d/cluster.conf"
        printf 'PYTHREAD_ETCD=%s\nPYTHREAD_CLUSTER_OPTS=--host-name nspawn --etcd-ttl 10\n' \
            "$etcd_url" >"$root/etc/default/pythreadd-cluster"
        # Narrowed to etcd's address, as its comments say: what the daemon
        # reaches, it reaches through the unit's firewall, not around it.
        printf '[Service]\nIPAddressAllow=\nIPAddressAllow=127.0.0.1\n' \
            >"$etc/pythreadd.service.d/etcd-address.conf"
        probe_unit >"$etc/pythread-nspawn-probe.service"
    fi

    mkdir -p "$root/usr/local/libexec"
    install -m 0755 "$here/nspawn_check.sh" "$root/usr/local/libexec/pythread-nspawn-check"
    check_unit >"$etc/pythread-nspawn-check.service"
    systemctl --root="$root" --quiet enable pythreadd.socket pythread-nspawn-check.service
    # Nobody answers a login prompt on the console.
    systemctl --root="$root" --quiet mask console-getty.service

    # The binaries find their libraries in the root. (ldd, not a run: the
    # chroot has no /proc, which a sanitizer's runtime wants at exit.)
    for prog in /usr/sbin/pythreadd /usr/bin/pythreadctl; do
        if ! chroot "$root" ldd "$prog" >"$run/ldd.log" 2>&1 || grep -q 'not found' "$run/ldd.log"; then
            fail "$prog cannot load its libraries in the root: $(cat "$run/ldd.log")"
        fi
    done
}

# ---- boot ---------------------------------------------------------------

# Boots the root until the check powers it off. --register=no and
# --keep-unit: this host's PID 1 is not systemd, there is no machined or
# system bus to register with or to get a scope from. --private-network: the
# container needs no network; with a cluster it shares this host's, to reach
# the etcd on 127.0.0.1, and is allowed bpf(): nspawn's own seccomp filter
# denies it by default (EPERM), and systemd in the container then runs
# units without the IPAddressDeny=/IPAddressAllow= firewall, saying so only
# at debug level ("BPF firewalling is not supported"), so cluster.conf's
# address settings would go untested. The console is only read, and logged.
boot() {
    root=$1 console=$2
    options=--private-network
    [ "$mode" = host ] || options=--system-call-filter=bpf
    timeout "$boot_timeout" systemd-nspawn --boot --directory="$root" \
        --machine="pythread-nspawn-$$" --register=no --keep-unit "$options" \
        --console=read-only --setenv=SYSTEMD_COLORS=0 >"$console" 2>&1 </dev/null &
    nspawn_pid=$!
    status=0
    wait "$nspawn_pid" || status=$?
    nspawn_pid=""
    return $status
}

show() { # TITLE FILE
    echo "---- $1"
    cat "$2"
}

# ---- main ---------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
for f in "$daemon" "$ctl" "$libdir/libpythread.so.0" "$units/pythreadd.service" \
    "$units/pythreadd.socket" "$units/pythread-sysusers.conf"; do
    [ -e "$f" ] || fail "$f is missing"
done
[ "$mode" = host ] || [ -e "$units/cluster.conf" ] || fail "$units/cluster.conf is missing"
need_tools

started=$(date +%s)
owners_of_libs=$(library_owners)
pkgs=$(packages)
base_root "$pkgs"
run=$(mktemp -d "$cache/run-XXXXXX")
cp -a --reflink=auto "$base" "$run/root"
[ "$mode" = host ] || start_etcd
install_project "$run/root"
prepared=$(date +%s)

say "booting $suite with systemd-nspawn"
status=0
boot "$run/root" "$run/console.log" || status=$?
finished=$(date +%s)
say "root ready in $((prepared - started)) s, boot and check in $((finished - prepared)) s (nspawn exit status $status)"

out=$run/root/var/lib/pythread-nspawn
if [ -f "$out/result" ]; then
    verdict=$(head -n 1 "$out/result")
    show "result (in the container: /var/lib/pythread-nspawn/result)" "$out/result"
    if [ "$verdict" = PASS ]; then
        say "passed"
        exit 0
    fi
    show "console" "$run/console.log"
    fail "the check in the container: ${verdict#FAIL: }"
elif [ -f "$out/started" ]; then
    [ -f "$out/log" ] && show "steps so far" "$out/log"
    show "console" "$run/console.log"
    fail "the check started in the container but wrote no result (nspawn exit status $status)"
else
    show "console" "$run/console.log"
    skip "systemd in the container never started the check (nspawn exit status $status): $(tail -n 3 "$run/console.log")"
fi
