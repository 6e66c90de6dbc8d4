#!/bin/sh
# The Python binding installed the two ways a user installs it, offline:
#   pip   pip install --no-build-isolation ./bindings/python into a venv
#         made with --system-site-packages (setuptools and wheel come from
#         the system: Debian's python3-setuptools and python3-wheel)
#   cmake cmake -DPT_INSTALL_PYTHON=ON, then cmake --install into a DESTDIR
#         for the interpreter's own prefix (on Debian /usr, so
#         /usr/lib/python3/dist-packages) and for /usr/local
# Either way the installed package must import from where it was installed,
# outside the source tree, and load the library by its SONAME
# (libpythread.so.0, here from LIBDIR through LD_LIBRARY_PATH, as an
# installed libpythread0 would be found), and never from a build directory.
#
# Usage: python_install.sh pip|cmake SOURCE_DIR LIBDIR [CMAKE]
# The interpreter: $PYTHON, else /usr/bin/python3, else python3.
set -eu

mode=$1 src=$2 libdir=$3 cmake=${4:-cmake}
name="package.python_$mode"

fail() {
    echo "$name: FAILED: $*" >&2
    exit 1
}

PY=
for candidate in ${PYTHON:-} /usr/bin/python3 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then
        PY=$(command -v "$candidate")
        break
    fi
done
[ -n "$PY" ] || fail "no python3 (set PYTHON)"
[ -e "$libdir/libpythread.so.0" ] || fail "$libdir/libpythread.so.0 is missing"
libdir=$(cd "$libdir" && pwd)
src=$(cd "$src" && pwd)

tmp=$(mktemp -d /tmp/pt-pyinst-XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

# imports pythread with PYTHON (and PYTHONPATH as given) from an empty
# directory and checks that it comes from under WHERE and loads
# libpythread.so.0 by that name.
check_import() { # PYTHON WHERE
    out=$(cd "$tmp/empty" && env -u PYTHREAD_LIBRARY -u BUILD_DIR LD_LIBRARY_PATH="$libdir" \
        "$1" -c 'import pythread, pythread._lib as l; print(pythread.__file__); print(l.library_path); print(pythread.__version__)') ||
        fail "import pythread with $1 failed"
    file=$(echo "$out" | sed -n 1p)
    lib=$(echo "$out" | sed -n 2p)
    version=$(echo "$out" | sed -n 3p)
    case $file in
    "$2"/*) ;;
    *) fail "pythread was imported from $file, not from under $2" ;;
    esac
    [ "$lib" = libpythread.so.0 ] || fail "the installed binding loaded $lib, not libpythread.so.0 by its SONAME"
    echo "$name: pythread $version imported from $file, library $lib"
}
mkdir "$tmp/empty"

# pyproject.toml and the package agree on the version.
want=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$src/bindings/python/pyproject.toml")
got=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$src/bindings/python/pythread/__init__.py")
if [ -z "$want" ] || [ "$want" != "$got" ]; then
    fail "pyproject.toml says version $want, pythread/__init__.py $got"
fi

case $mode in
pip)
    for m in venv setuptools wheel; do
        "$PY" -c "import $m" 2>/dev/null ||
            fail "$PY has no $m module (Debian: apt-get install python3-venv python3-setuptools python3-wheel; sh scripts/deps test)"
    done
    "$PY" -m venv --system-site-packages "$tmp/venv" >"$tmp/venv.log" 2>&1 ||
        { cat "$tmp/venv.log" >&2; fail "$PY -m venv"; }
    # pip builds in the directory it is given (build/, *.egg-info): a copy
    # keeps the source tree clean.
    cp -R "$src/bindings/python" "$tmp/src"
    rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
    # No index and no build isolation: nothing may be downloaded.
    PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
        "$tmp/venv/bin/python" -m pip install --no-build-isolation "$tmp/src" >"$tmp/pip.log" 2>&1 ||
        { cat "$tmp/pip.log" >&2; fail "pip install --no-build-isolation ./bindings/python"; }
    tail -n 1 "$tmp/pip.log"
    shown=$("$tmp/venv/bin/python" -m pip show pythread 2>/dev/null | sed -n 's/^Version: //p')
    [ "$shown" = "$want" ] || fail "pip show pythread says version '$shown', not $want"
    site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    check_import "$tmp/venv/bin/python" "$site"
    "$tmp/venv/bin/python" -m pip uninstall -y pythread >"$tmp/uninstall.log" 2>&1 ||
        { cat "$tmp/uninstall.log" >&2; fail "pip uninstall pythread"; }
    [ ! -e "$site/pythread" ] || fail "pip uninstall left $site/pythread"
    ;;
cmake)
    # The interpreter's own prefix: where its packages go (/usr for
    # Debian's), then /usr/local.
    sys_prefix=$("$PY" -c 'import sys; print(sys.prefix)')
    "$cmake" -S "$src" -B "$tmp/build" -DPT_INSTALL_PYTHON=ON -DPT_BUILD_TESTS=OFF \
        -DPT_BUILD_BENCH=OFF -DPython3_EXECUTABLE="$PY" -DCMAKE_INSTALL_PREFIX="$sys_prefix" \
        >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log" >&2; fail "cmake -DPT_INSTALL_PYTHON=ON"; }
    grep 'The Python binding installs into' "$tmp/configure.log" || true
    for prefix in "$sys_prefix" /usr/local; do
        dest=$tmp/dest$(echo "$prefix" | tr / _)
        # Only the binding's component: nothing needs building for it.
        DESTDIR=$dest "$cmake" --install "$tmp/build" --component python --prefix "$prefix" \
            >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "cmake --install --component python --prefix $prefix"; }
        init=$(cd "$dest" && find . -path '*/pythread/__init__.py' | sed 's|^\.||')
        [ -n "$init" ] || fail "cmake --install put no pythread/__init__.py under DESTDIR for $prefix"
        dir=${init%/pythread/__init__.py}
        # That directory is one this interpreter reads modules from for the
        # prefix (site.getsitepackages, which takes a list of prefixes).
        "$PY" -c 'import site, sys; sys.exit(sys.argv[2] not in site.getsitepackages([sys.argv[1]]))' \
            "$prefix" "$dir" ||
            fail "for --prefix $prefix the binding went to $dir, not one of $("$PY" -c 'import site, sys; print(site.getsitepackages([sys.argv[1]]))' "$prefix")"
        echo "$name: --prefix $prefix: $dir"
        PYTHONPATH=$dest$dir check_import "$PY" "$dest$dir"
    done
    ;;
*) fail "unknown mode $mode" ;;
esac
echo "$name: passed"
