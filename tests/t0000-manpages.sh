#!/bin/sh
# t0000: every tool's -h matches the SYNOPSIS of its man page, exits 0, and a bad option
# exits 2; every man page documents EXIT STATUS.
. "$(dirname "$0")/lib.sh"

synopsis() { # man page -> SYNOPSIS lines, roff escapes stripped
	sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$1" | grep -v '^\.' |
		sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\\\/\\/g' -e 's/^ *//; s/ *$//'
}
usage_lines() { # tool -h -> the usage block up to its first blank line
	"$1" -h | sed '/^$/q' | sed -e '/^$/d' -e 's/^usage: //' -e 's/^ *//; s/ *$//'
}

for src in "$SRC_DIR"/cmd/cp-*.c; do
	t=$(basename "$src" .c)
	if [ ! -x "$BUILD/bin/$t" ]; then
		_tap 1 "$t is built"
		continue
	fi
	page="$SRC_DIR/man/$t.1"
	if [ ! -f "$page" ]; then
		_tap 1 "$t has a man page"
		continue
	fi
	exit_is 0 "$t -h exits 0" "$t" -h
	is "$(usage_lines "$t")" "$(synopsis "$page")" "$t -h equals the SYNOPSIS of man/$t.1"
	exit_is 2 "$t rejects an unknown option with exit 2" "$t" --no-such-option
	grep -q '^\.SH EXIT STATUS' "$page"
	_tap $? "man/$t.1 documents EXIT STATUS"
	# the page renders without groff warnings
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>&1 >/dev/null | grep -v 'table wider')
	is "$out" "" "man/$t.1 renders cleanly"
done
done_testing
