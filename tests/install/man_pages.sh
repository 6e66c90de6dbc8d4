#!/bin/sh
# The man pages render without a groff warning and keep up with the
# programs: every long option of `pythreadd --help` is in pythreadd(8), and
# every command and long option of `pythreadctl --help` (and of each
# command's --help) is in pythreadctl(1).
#
# Usage: man_pages.sh SOURCE_DIR PYTHREADD [PYTHREADCTL]
set -eu

src=$1 daemon=$2 ctl=${3:-}
bad=0

for page in "$src"/man/*.[0-9]; do
    warnings=$(groff -man -ww -z "$page" 2>&1) || true
    if [ -n "$warnings" ]; then
        echo "man_pages: $(basename "$page"): $warnings" >&2
        bad=1
    fi
done

# Long options as roff writes them: \-\-name.
documented() {
    grep -q -- "$(echo "$2" | sed 's/-/\\\\-/g')" "$1"
}

options_of() {
    "$@" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u
}

for opt in $(options_of "$daemon"); do
    documented "$src/man/pythreadd.8" "$opt" ||
        { echo "man_pages: pythreadd.8 does not document $opt" >&2; bad=1; }
done

if [ -n "$ctl" ]; then
    commands=$("$ctl" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/^Commands:/ {print $1}')
    [ -n "$commands" ] || { echo "man_pages: no commands in pythreadctl --help" >&2; bad=1; }
    for cmd in $commands; do
        # Each command has its line in the SYNOPSIS.
        grep -q "^\.B pythreadctl $cmd\b" "$src/man/pythreadctl.1" ||
            { echo "man_pages: pythreadctl.1 has no synopsis for the command $cmd" >&2; bad=1; }
        for opt in $(options_of "$ctl" "$cmd"); do
            documented "$src/man/pythreadctl.1" "$opt" ||
                { echo "man_pages: pythreadctl.1 does not document $cmd $opt" >&2; bad=1; }
        done
    done
fi
[ $bad = 0 ] && echo "man_pages: all pages clean and up to date"
exit $bad
