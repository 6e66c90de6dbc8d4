#!/bin/sh
# shellcheck disable=SC2154 # the *dir variables come from dirs.sh
# Installs the built tree into a temporary prefix, checks every file lands in
# its usual place, builds tests/install/app.c against the installation with
# pkg-config (shared and static) and with find_package(pythread) (shared and
# static), and runs all four against the installed daemon on a temporary
# socket.
#
# Usage: install_test.sh BUILD_DIR SOURCE_DIR CC SANITIZE
# The installation directories come from BUILD_DIR/install-gen/dirs.sh,
# written when the build was configured.
set -eu

build=$1 src=$2 cc=$3 sanitize=$4
# shellcheck disable=SC1091
. "$build/install-gen/dirs.sh"

for d in "$libdir" "$bindir" "$sbindir" "$includedir" "$mandir" "$datadir" "$unitdir" \
    "$sysusersdir"; do
    case $d in
    /*)
        # An absolute destination (the /usr configuration takes systemd's
        # own directories) would be written outside the temporary prefix.
        echo "install test: skipped: $d is absolute; configure with another prefix to run it"
        exit 77
        ;;
    esac
done

tmp=$(mktemp -d /tmp/pt-install-XXXXXX)
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fail() {
    echo "install test: FAILED: $*" >&2
    [ -f "$tmp/daemon.log" ] && sed 's/^/  daemon: /' "$tmp/daemon.log" >&2
    exit 1
}

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install"; }

# --- Files in their places ---------------------------------------------
expect() {
    [ -e "$prefix/$1" ] || fail "$1 was not installed"
}
expect_link() {
    [ -L "$prefix/$1" ] || fail "$1 is not a symbolic link"
    [ "$(readlink "$prefix/$1")" = "$2" ] || fail "$1 points to $(readlink "$prefix/$1"), not $2"
}
expect "$sbindir/pythreadd"
[ -x "$prefix/$sbindir/pythreadd" ] || fail "pythreadd is not executable"
if [ "$have_ctl" = 1 ]; then
    expect "$bindir/pythreadctl"
fi
expect_link "$libdir/libpythread.so" libpythread.so.0
soname_target=$(readlink "$prefix/$libdir/libpythread.so.0")
case $soname_target in
libpythread.so.0.*) ;;
*) fail "libpythread.so.0 points to $soname_target, not libpythread.so.0.MINOR.PATCH" ;;
esac
expect "$libdir/$soname_target"
objdump -p "$prefix/$libdir/$soname_target" | grep -q 'SONAME *libpythread.so.0$' ||
    fail "libpythread's SONAME is not libpythread.so.0"
expect "$libdir/libpythread.a"
for h in "$src"/include/*.h; do
    expect "$includedir/$(basename "$h")"
done
expect "$libdir/pkgconfig/pythread.pc"
expect "$libdir/cmake/pythread/pythreadConfig.cmake"
expect "$libdir/cmake/pythread/pythreadConfigVersion.cmake"
expect "$libdir/cmake/pythread/pythreadTargets.cmake"
expect "$unitdir/pythreadd.socket"
expect "$unitdir/pythreadd.service"
grep -qx "ExecStart=$prefix/$sbindir/pythreadd --socket /run/pythread/pythreadd.sock --state-dir /var/lib/pythread" \
    "$prefix/$unitdir/pythreadd.service" ||
    fail "pythreadd.service does not start $prefix/$sbindir/pythreadd"
expect "$sysusersdir/pythread.conf"
expect "$mandir/man8/pythreadd.8"
expect "$mandir/man3/libpythread.3"
# man pt_lock_acquire works: every function the installed library exports
# has a page, a .so link to libpythread(3), and no other page is there.
exported=$(nm -D --defined-only "$prefix/$libdir/libpythread.so.0" | awk '$3 ~ /^pt_/ {print $3}')
[ -n "$exported" ] || fail "the installed libpythread.so exports no pt_ function"
for f in $exported; do
    expect "$mandir/man3/$f.3"
    [ "$(cat "$prefix/$mandir/man3/$f.3")" = ".so man3/libpythread.3" ] ||
        fail "$mandir/man3/$f.3 is not a .so link to libpythread(3)"
done
for page in "$prefix/$mandir"/man3/pt_*.3; do
    echo "$exported" | grep -qx "$(basename "$page" .3)" ||
        fail "$mandir/man3/$(basename "$page") names no exported function"
done
if command -v man >/dev/null; then
    MANPAGER=cat man -M "$prefix/$mandir" 3 pt_lock_acquire 2>/dev/null | grep -q "libpythread" ||
        fail "man pt_lock_acquire does not show libpythread(3)"
fi
expect "$mandir/man1/pythreadctl.1"
if ls "$src"/cli/*.bash "$src"/cli/*completion* >/dev/null 2>&1; then
    completion=$datadir/bash-completion/completions/pythreadctl
    expect "$completion"
    # bash-completion sources it on first use of the command: it must
    # register a completion for pythreadctl.
    if command -v bash >/dev/null; then
        bash -c '. "$1" && complete -p pythreadctl' sh "$prefix/$completion" >/dev/null ||
            fail "$completion does not register a completion for pythreadctl"
    fi
fi

# Only the public API leaves the shared library: pt_ names declared in the
# installed headers.
sh "$src/tests/install/exported_symbols.sh" "$prefix/$libdir/libpythread.so.0" \
    "$prefix/$includedir" || fail "libpythread.so exports more than its public API"

# --- A live installed daemon -------------------------------------------
sock=$tmp/pythreadd.sock
"$prefix/$sbindir/pythreadd" --socket "$sock" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
i=0
until [ -S "$sock" ]; do
    i=$((i + 1))
    [ $i -le 500 ] || fail "the installed pythreadd did not create $sock within 10 s"
    kill -0 "$daemon_pid" 2>/dev/null || fail "the installed pythreadd exited"
    sleep 0.02
done
export PYTHREAD_SOCKET="$sock"

cflags=
[ -n "$sanitize" ] && cflags="-fsanitize=$sanitize"

# --- pkg-config --------------------------------------------------------
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
pkg-config --exists --print-errors pythread || fail "pkg-config cannot find pythread"
pc_libdir=$(pkg-config --variable=libdir pythread)
[ "$pc_libdir" = "$prefix/$libdir" ] || fail "pythread.pc says libdir=$pc_libdir"
# shellcheck disable=SC2046,SC2086 # word splitting of flags is meant
"$cc" $cflags -Wall -Werror -o "$tmp/app_pc" "$src/tests/install/app.c" \
    $(pkg-config --cflags --libs pythread) -Wl,-rpath,"$pc_libdir" ||
    fail "building against pkg-config's flags"
# The static archive with Requires.private/Libs.private.
static_libs=$(pkg-config --static --libs-only-l --libs-only-other pythread | sed 's/-lpythread//')
# shellcheck disable=SC2046,SC2086 # word splitting of flags is meant
"$cc" $cflags -Wall -Werror -o "$tmp/app_pc_static" "$src/tests/install/app.c" \
    $(pkg-config --cflags pythread) "$pc_libdir/libpythread.a" $static_libs ||
    fail "building against libpythread.a with pkg-config --static"
if ldd "$tmp/app_pc_static" | grep -q libpythread; then
    fail "app_pc_static is linked to the shared libpythread"
fi

# --- find_package(pythread) ----------------------------------------------
cmake -S "$src/tests/install/consumer" -B "$tmp/cmake-build" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$cflags" \
    >"$tmp/consumer.log" 2>&1 || { cat "$tmp/consumer.log" >&2; fail "configuring the find_package consumer"; }
cmake --build "$tmp/cmake-build" >>"$tmp/consumer.log" 2>&1 ||
    { cat "$tmp/consumer.log" >&2; fail "building the find_package consumer"; }

# --- Run them all against the live daemon ------------------------------
for app in "$tmp/app_pc" "$tmp/app_pc_static" "$tmp/cmake-build/app_cmake" \
    "$tmp/cmake-build/app_cmake_static"; do
    out=$("$app" "install.$(basename "$app")") || fail "$(basename "$app") failed against the daemon"
    echo "$(basename "$app"): $out"
done
ldd "$tmp/cmake-build/app_cmake" | grep -q "$prefix/$libdir/libpythread.so.0" ||
    fail "app_cmake does not run against the installed libpythread.so.0"

if [ "$have_ctl" = 1 ]; then
    "$prefix/$bindir/pythreadctl" status >"$tmp/ctl.out" 2>&1 ||
        { cat "$tmp/ctl.out" >&2; fail "the installed pythreadctl status"; }
    out=$("$prefix/$bindir/pythreadctl" lock install.ctl -- echo held) ||
        fail "the installed pythreadctl lock -- COMMAND"
    [ "$out" = held ] || fail "pythreadctl lock ran something else: $out"
    echo "pythreadctl: status and lock served"
fi

kill "$daemon_pid"
wait "$daemon_pid" || fail "the installed pythreadd did not exit 0 on SIGTERM"
daemon_pid=
[ ! -e "$sock" ] || fail "the installed pythreadd left its socket behind"
echo "install test: passed"
