#!/bin/sh
# The Debian packages as a user gets them: builds them from the source tree
# (scripts/package: dpkg-buildpackage, debhelper), checks them with lintian
# (no error allowed) and checks what their control files must hold, then
# installs them with `apt-get install ./*.deb` into a fresh Debian 12 root
# with no systemd running (as in a chroot), boots that root with
# systemd-nspawn and runs package_check.sh there from a oneshot unit: the
# socket-activated daemon answers root and nobody, a C program built with
# pkg-config and python3's `import pythread` work, `apt-get purge` leaves
# nothing, and an install and purge under the running systemd do the same.
#
# Usage: package_test.sh SOURCE_DIR WORK_DIR
#
# Exit status 77 (skipped, with the reason printed) only when it cannot run
# here: not root, no systemd-nspawn or debootstrap and they cannot be
# installed, debootstrap fails (no network the first time), or systemd in
# the container never reaches the check. The container has no network: the
# packages' dependencies (read from the built packages) and what the check
# uses (gcc, pkg-config, python3) go into the base root at debootstrap time.
# As tests/systemd/nspawn_test.sh, the base root is kept between runs keyed
# by its package list in $PT_NSPAWN_CACHE (default
# /var/tmp/pythread-nspawn-bookworm) and each run boots a copy;
# PT_NSPAWN_MIRROR chooses the mirror, PT_NSPAWN_KEEP=1 keeps the copy.
set -eu

src=$(cd "$1" && pwd)
work=$2
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=${PT_NSPAWN_MIRROR:-http://deb.debian.org/debian}
cache=${PT_NSPAWN_CACHE:-/var/tmp/pythread-nspawn-$suite}
debootstrap_timeout=600
boot_timeout=400
packages="pythreadd libpythread0 libpythread-dev pythread-tools python3-pythread"
PATH=$PATH:/usr/sbin:/sbin
export PATH

run=""
nspawn_pid=""

say() {
    echo "package.debian: $*"
}

skip() {
    say "skipped: $*"
    exit 77
}

fail() {
    echo "package.debian: FAILED: $*" >&2
    exit 1
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
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
}
trap cleanup EXIT
trap 'exit 143' INT TERM

show() { # TITLE FILE
    echo "---- $1"
    cat "$2"
}

# ---- the tools ------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg-buildpackage is fine, but debootstrap and systemd-nspawn are not)"
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null ||
    ! command -v lintian >/dev/null || ! command -v dh >/dev/null; then
    say "installing what it needs: sh scripts/deps package-test"
    sh "$src/scripts/deps" package-test >"$work.deps.log" 2>&1 || true
fi
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
    skip "systemd-nspawn or debootstrap is missing and scripts/deps could not install them: $(tail -n 3 "$work.deps.log" 2>/dev/null)"
fi
command -v lintian >/dev/null || fail "lintian is missing (sh scripts/deps package-test)"

started=$(date +%s)
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

# ---- build ----------------------------------------------------------------

say "building the packages: sh scripts/package"
sh "$src/scripts/package" "$work/debs" >"$work/package.log" 2>&1 ||
    { tail -n 60 "$work/package.log" >&2; fail "sh scripts/package"; }
for p in $packages; do
    set -- "$work/debs/${p}"_*.deb
    [ -f "$1" ] || fail "no $p package was built: $(ls "$work/debs")"
    eval "deb_$(echo "$p" | tr -c 'a-z0-9\n' _)=\$1"
done
ls -1 "$work/debs"/*.deb
built=$(date +%s)

# ---- lintian ----------------------------------------------------------------

# Errors fail; warnings and the rest are printed and counted. Overrides, if
# any, live in debian/*.lintian-overrides with their reasons.
lintian_rc=0
lintian --fail-on error --display-info "$work/debs"/*.deb >"$work/lintian.log" 2>&1 || lintian_rc=$?
cat "$work/lintian.log"
counts=$(awk -F: '/^[EWIXP]: / { n[$1]++ } END { printf "%d errors, %d warnings, %d info", n["E"], n["W"], n["I"] }' "$work/lintian.log")
say "lintian: $counts (exit status $lintian_rc)"
if [ "$lintian_rc" -ne 0 ] || grep -q '^E: ' "$work/lintian.log"; then
    fail "lintian found errors"
fi

# ---- what the control files must hold ---------------------------------------

# ctrl DEB FILE: a control file of DEB.
ctrl() {
    dpkg-deb --ctrl-tarfile "$1" | tar -xOf - "./$2" 2>/dev/null
}
# shellcheck disable=SC2154 # deb_* are set by eval above
{
    ctrl "$deb_libpythread0" shlibs | grep -q '^libpythread 0 libpythread0 ' ||
        fail "libpythread0 has no shlibs line for libpythread.so.0"
    ctrl "$deb_libpythread0" symbols | grep -q '^libpythread.so.0 libpythread0 ' ||
        fail "libpythread0 has no symbols file"
    ctrl "$deb_libpythread0" triggers | grep -q '^activate-noawait ldconfig$' ||
        fail "libpythread0 does not trigger ldconfig"
    dpkg-deb -c "$deb_libpythread0" | grep -q ' \./usr/lib/[^/]*/libpythread\.so\.0 -> ' ||
        fail "libpythread0 has no libpythread.so.0 link"
    ctrl "$deb_pythreadd" postinst | grep -q 'systemd-sysusers .*pythread\.conf' ||
        fail "pythreadd's postinst does not run systemd-sysusers"
    ctrl "$deb_pythreadd" postinst | grep -q "deb-systemd-helper enable 'pythreadd.socket'" ||
        fail "pythreadd's postinst does not enable pythreadd.socket"
    ctrl "$deb_pythreadd" postinst | grep -q "deb-systemd-invoke .*'pythreadd.socket'" ||
        fail "pythreadd's postinst does not start pythreadd.socket"
    # Computed dependencies (dpkg-shlibdeps), not written by hand.
    for d in "$deb_pythreadd" "$deb_pythread_tools" "$deb_libpythread0"; do
        dpkg-deb -f "$d" Depends | grep -q 'libc6 (>= ' ||
            fail "$(basename "$d"): Depends has no computed libc6 version: $(dpkg-deb -f "$d" Depends)"
    done
    dpkg-deb -f "$deb_pythreadd" Depends | grep -q 'libevent-core' ||
        fail "pythreadd does not depend on libevent: $(dpkg-deb -f "$deb_pythreadd" Depends)"
    dpkg-deb -f "$deb_python3_pythread" Depends | grep -q 'libpythread0' ||
        fail "python3-pythread does not depend on libpythread0"
}
say "control files: shlibs, symbols, ldconfig trigger, sysusers and systemd snippets, computed Depends"

# ---- the base root ----------------------------------------------------------

# The packages' Depends and Recommends other than each other (the first of
# alternatives; ":any" and versions dropped), systemd to boot, and what the
# check uses: a C compiler, libc's headers, pkg-config, python3.
root_packages() {
    for d in "$work/debs"/*.deb; do
        dpkg-deb -f "$d" Depends
        echo
        dpkg-deb -f "$d" Recommends
        echo
    done | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' | grep -v '^$' |
        grep -vxE "$(echo "$packages" | tr ' ' '|')"
    printf '%s\n' systemd gcc libc6-dev pkg-config python3
}
pkgs=$(root_packages | sort -u | tr '\n' ',' | sed 's/,$//')

key=$(printf '%s\n' "$suite" "$mirror" "$pkgs" | sha256sum | cut -c1-16)
base=$cache/$suite-$key
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -w 1200 9 || fail "another run holds $cache/lock"
if [ ! -d "$base/root" ]; then
    say "debootstrap $suite ($pkgs) into $base (once: later runs reuse it)"
    rm -rf "$base.new"
    mkdir -p "$base.new"
    if ! timeout "$debootstrap_timeout" debootstrap --variant=minbase --include="$pkgs" \
        "$suite" "$base.new/root" "$mirror" >"$base.new/debootstrap.log" 2>&1; then
        reason=$(tail -n 5 "$base.new/debootstrap.log"
            tail -n 5 "$base.new/root/debootstrap/debootstrap.log" 2>/dev/null)
        rm -rf "$base.new"
        skip "debootstrap of $suite from $mirror failed (no network?): $reason"
    fi
    echo "$pkgs" >"$base.new/packages"
    mv "$base.new" "$base"
fi
exec 9>&-
run=$(mktemp -d "$cache/run-XXXXXX")
rootfs=$run/root
cp -a --reflink=auto "$base/root" "$rootfs"
prepared=$(date +%s)

# ---- install in the root, with no systemd running ----------------------------

mkdir -p "$rootfs/root/debs"
cp "$work/debs"/*.deb "$rootfs/root/debs/"
cp "$src/tests/install/app.c" "$rootfs/root/app.c"
# systemd-nspawn without --boot: a chroot with /proc and /dev, no systemd
# running (so the maintainer scripts only enable the socket, for the next
# boot) and no network (--private-network), so apt-get must resolve every
# dependency from what the root holds. The plan must be exactly our five.
nspawn_run() {
    systemd-nspawn --quiet --directory="$rootfs" --machine="pythread-pkg-$$" --register=no \
        --keep-unit --private-network --setenv=DEBIAN_FRONTEND=noninteractive "$@" </dev/null
}
if ! nspawn_run sh -c 'apt-get install -y -q /root/debs/*.deb && apt-get check' \
    >"$work/chroot-install.log" 2>&1; then
    cat "$work/chroot-install.log" >&2
    fail "apt-get install ./*.deb in the root (no systemd running, no network)"
fi
grep -E '^(Setting up|[0-9]+ upgraded)' "$work/chroot-install.log" || true
grep -q '^0 upgraded, 5 newly installed, 0 to remove' "$work/chroot-install.log" ||
    fail "apt-get install did more than install the five packages: $(grep -A3 'NEW packages' "$work/chroot-install.log")"
[ -L "$rootfs/etc/systemd/system/sockets.target.wants/pythreadd.socket" ] ||
    fail "installed in a chroot, pythreadd.socket was not enabled for the next boot"
grep -q '^pythread:' "$rootfs/etc/passwd" || fail "installed in a chroot, the user pythread was not created"
say "installed in the root without systemd running or network: apt-get check clean, socket enabled, user pythread created"

# The check and its unit. SuccessAction= and FailureAction= power the
# container off however the check ends, a timeout included.
mkdir -p "$rootfs/usr/local/libexec"
install -m 0755 "$here/package_check.sh" "$rootfs/usr/local/libexec/pkgcheck"
cat >"$rootfs/etc/systemd/system/pkgcheck.service" <<'UNIT'
[Unit]
Description=Check the installed packages, then purge them
After=sockets.target systemd-sysusers.service
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/usr/local/libexec/pkgcheck
TimeoutStartSec=300
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
systemctl --root="$rootfs" --quiet enable pkgcheck.service
systemctl --root="$rootfs" --quiet mask console-getty.service

# ---- boot -------------------------------------------------------------------

# --register=no and --keep-unit: no machined or system bus is needed on this
# side; --private-network: the container has no network.
say "booting $suite with systemd-nspawn"
timeout "$boot_timeout" systemd-nspawn --boot --directory="$rootfs" \
    --machine="pythread-pkg-$$" --register=no --keep-unit --private-network \
    --console=read-only --setenv=SYSTEMD_COLORS=0 >"$run/console.log" 2>&1 </dev/null &
nspawn_pid=$!
status=0
wait "$nspawn_pid" || status=$?
nspawn_pid=""
finished=$(date +%s)
say "packages built in $((built - started)) s, root ready in $((prepared - built)) s, boot and check in $((finished - prepared)) s (nspawn exit status $status)"

out=$rootfs/var/lib/pkgcheck
if [ -f "$out/result" ]; then
    verdict=$(head -n 1 "$out/result")
    show "result (in the container: /var/lib/pkgcheck/result)" "$out/result"
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
