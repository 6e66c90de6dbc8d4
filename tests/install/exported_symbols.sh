#!/bin/sh
# Only the public API leaves libpythread.so: every exported symbol is a pt_
# name declared in a public header, and the headers' main entry points are
# there.
#
# Usage: exported_symbols.sh LIBRARY INCLUDE_DIR
set -eu

lib=$1 include=$2
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
[ -n "$syms" ] || { echo "exported_symbols: $lib exports nothing" >&2; exit 1; }

bad=0
for s in $syms; do
    case $s in
    pt__*)
        echo "exported_symbols: internal name $s is exported from $lib" >&2
        bad=1
        ;;
    pt_*)
        if ! grep -qw "$s" "$include"/*.h; then
            echo "exported_symbols: $s is exported from $lib but declared in no public header" >&2
            bad=1
        fi
        ;;
    *)
        echo "exported_symbols: non-pt_ symbol $s is exported from $lib" >&2
        bad=1
        ;;
    esac
done
for s in pt_client_open pt_lock_acquire pt_strerror pt_thread_create; do
    echo "$syms" | grep -qx "$s" || { echo "exported_symbols: $s is not exported" >&2; bad=1; }
done
[ $bad = 0 ] && echo "exported_symbols: $(echo "$syms" | wc -l) symbols, all public"
exit $bad
