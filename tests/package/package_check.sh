#!/bin/sh
# The check package_test.sh runs inside its container, as root, from a
# oneshot unit, with systemd as PID 1. The packages were installed with
# apt-get in the root before the boot, as in a chroot with no systemd
# running. Here:
#   a. the socket is enabled and listening, the user pythread exists;
#      `pythreadctl status` answers root and nobody (who finds the system
#      daemon with no setting), the daemon runs as pythread; a C program
#      built with pkg-config against libpythread-dev, and python3's
#      `import pythread`, work as root and as nobody;
#   b. apt-get purge removes them all: no file of theirs left, no unit, no
#      state, nothing named pythread anywhere on the root's file system;
#   c. apt-get install again, now under systemd: the socket starts at once
#      and answers; an upgrade (a reinstall) restarts the daemon with its
#      state; a second purge stops the running daemon and leaves nothing
#      again.
#
# Writes OUT/started first, then OUT/log step by step, and at the end
# OUT/result: PASS or FAIL with the reason on its first line, then the
# steps and the journal. The unit powers the container off however this
# ends.
set -u

out=/var/lib/pkgcheck
debs=/root/debs
packages="pythreadd libpythread0 libpythread-dev pythread-tools python3-pythread"
mkdir -p "$out"
: >"$out/log"
echo started >"$out/started"
why=""
export DEBIAN_FRONTEND=noninteractive

log() {
    echo "$*" >>"$out/log"
    echo "check: $*"
}

finish() {
    {
        if [ -z "$why" ]; then echo PASS; else echo "FAIL: $why"; fi
        echo "--- steps"
        cat "$out/log"
        echo "--- journalctl -u pythreadd.socket -u pythreadd.service"
        journalctl --no-pager -o short-monotonic -u pythreadd.socket -u pythreadd.service
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

# run WHAT COMMAND...: runs COMMAND (with a deadline), its output into the
# log; fails the check with WHAT if it fails.
run() {
    what=$1
    shift
    if ! timeout 120 "$@" >"$out/cmd.log" 2>&1; then
        cat "$out/cmd.log" >>"$out/log"
        fail "$what"
    fi
    cat "$out/cmd.log" >>"$out/log"
}

wait_until() { # SECONDS COMMAND...
    n=$(($1 * 10))
    shift
    while ! "$@"; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}

# What a user does with the installed packages, as root and as nobody.
use_packages() { # WHEN
    when=$1
    systemctl is-enabled --quiet pythreadd.socket || fail "$when: pythreadd.socket is not enabled"
    wait_until 10 systemctl is-active --quiet pythreadd.socket || fail "$when: pythreadd.socket is not active"
    [ -S /run/pythread/pythreadd.sock ] || fail "$when: no socket /run/pythread/pythreadd.sock"
    getent passwd pythread >/dev/null || fail "$when: no user pythread (systemd-sysusers in postinst)"
    log "$when: pythreadd.socket enabled and listening, user $(getent passwd pythread)"

    run "$when: pythreadctl status as root" timeout 20 pythreadctl status
    # nobody, with no setting: its own daemon's socket first, then the
    # system daemon's.
    run "$when: pythreadctl status as nobody" timeout 20 runuser -u nobody -- env -u XDG_RUNTIME_DIR pythreadctl status
    grep -qE '^socket:[[:space:]]+/run/pythread/pythreadd\.sock$' "$out/cmd.log" ||
        fail "$when: pythreadctl as nobody did not reach the system daemon's socket"
    main=$(systemctl show -p MainPID --value pythreadd.service)
    [ "$main" -gt 0 ] 2>/dev/null || fail "$when: pythreadd.service has no main process after a client connected"
    user=$(stat -c %U "/proc/$main")
    log "$when: the socket started pythreadd.service, pid $main, user $user"
    [ "$user" = pythread ] || fail "$when: pythreadd runs as $user, not pythread"

    # A program built against libpythread-dev the documented way.
    # shellcheck disable=SC2016 # expanded by that sh
    run "$when: cc with pkg-config --cflags --libs pythread" sh -c \
        'cc -Wall -Wextra -Wpedantic -Werror -o /tmp/app /root/app.c $(pkg-config --cflags --libs pythread)'
    run "$when: the C program as root" /tmp/app package.app.root
    run "$when: the C program as nobody" runuser -u nobody -- /tmp/app package.app.nobody
    # Debian 12 has /lib -> usr/lib: either spelling is the installed one.
    ldd /tmp/app | grep -qE '=> (/usr)?/lib/[^ ]*/libpythread\.so\.0 ' ||
        fail "$when: the C program does not load the installed libpythread.so.0: $(ldd /tmp/app)"

    py='import pythread, pythread._lib as l
lock = pythread.Lock(name="package.py", transient=True)
assert lock.acquire(timeout=5)
lock.release()
print("pythread", pythread.__version__, "from", pythread.__file__, "library", l.library_path)
assert l.library_path == "libpythread.so.0", l.library_path
assert pythread.__file__.startswith("/usr/lib/python3/dist-packages/"), pythread.__file__'
    # shellcheck disable=SC2016 # expanded by that sh
    run "$when: python3 import pythread as root" sh -c 'cd / && python3 -c "$1"' sh "$py"
    # shellcheck disable=SC2016 # expanded by that sh
    run "$when: python3 import pythread as nobody" runuser -u nobody -- sh -c 'cd / && python3 -c "$1"' sh "$py"
}

# Every file the packages installed (not the directories they share).
package_files() {
    # shellcheck disable=SC2086 # one argument per package
    dpkg -L $packages | while read -r f; do
        # Not a directory, even through a link (/lib -> usr/lib).
        if [ ! -d "$f" ] && { [ -L "$f" ] || [ -f "$f" ]; }; then echo "$f"; fi
    done
}

purge_packages() { # WHEN
    when=$1
    package_files >"$out/files"
    log "$when: the packages installed $(wc -l <"$out/files") files"
    # shellcheck disable=SC2086 # one argument per package
    run "$when: apt-get purge" apt-get purge -y -q $packages
    left=$(while read -r f; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done <"$out/files")
    [ -z "$left" ] || fail "$when: apt-get purge left: $left"
    rc=$(dpkg -l | awk '$2 ~ /pythread/ { print $1, $2 }')
    [ -z "$rc" ] || fail "$when: dpkg still lists: $rc"
    if systemctl is-active --quiet pythreadd.socket || systemctl is-active --quiet pythreadd.service; then
        fail "$when: pythreadd.socket or .service still active after the purge"
    fi
    units=$(systemctl list-unit-files --no-legend 'pythreadd*')
    [ -z "$units" ] || fail "$when: systemd still knows: $units"
    [ ! -e /run/pythread/pythreadd.sock ] || fail "$when: /run/pythread/pythreadd.sock is still there"
    # Nothing named after the project anywhere on the root's file system
    # (enablement links, state, byte-compiled modules, dpkg's records).
    named=$(find / -xdev \( -path /proc -o -path "$debs" -o -path "$out" -o -path /root/app.c \) -prune \
        -o -name '*pythread*' -print)
    [ -z "$named" ] || fail "$when: left after the purge: $named"
    log "$when: purged: no file, unit, state or name of the packages left"
}

# ---- a. installed in the root before the boot -----------------------------
# shellcheck disable=SC2086 # one argument per package
log "installed: $(dpkg-query -W -f='${Package} ${Version}, ' $packages)"
run "apt-get check" apt-get check
use_packages "installed before the boot"

# ---- b. purge under systemd -------------------------------------------------
purge_packages "first purge"

# ---- c. installed under systemd, then purged again -------------------------
# Offline (the container has no network): every dependency is already
# installed.
run "apt-get install under systemd" sh -c "apt-get install -y -q $debs/*.deb && apt-get check"
use_packages "installed under systemd"

# An upgrade (the same version again: postinst configure with the old
# version) restarts the socket, which restarts the daemon it started, on the
# new program and with its state: an Event set before is still set after.
run "before the upgrade: pythreadctl event set" timeout 20 pythreadctl event set package.upgrade
before=$(systemctl show -p MainPID --value pythreadd.service)
run "apt-get install --reinstall pythreadd" sh -c "apt-get install -y -q --reinstall $debs/pythreadd_*.deb"
wait_until 10 systemctl is-active --quiet pythreadd.socket || fail "after the upgrade: pythreadd.socket is not active"
run "after the upgrade: pythreadctl event is-set" timeout 20 pythreadctl event is-set package.upgrade
after=$(systemctl show -p MainPID --value pythreadd.service)
log "upgrade: daemon pid $before before, $after after; the Event is still set"
[ "$after" != "$before" ] || fail "after the upgrade the daemon (pid $before) was not restarted"

purge_packages "second purge"
log "all checks passed"
