# tests/lib.sh: the test library for tests/tNNNN-*.sh (TAP output for prove).
# Each test script sources this, calls the helpers, and ends with done_testing.
set -u
: "${BUILD:=$(cd "$(dirname "$0")/.." && pwd)/build}"
PATH="$BUILD/bin:$PATH"
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
SRC_DIR=$(cd "$TESTS_DIR/.." && pwd)
SHARED_DIR=$(cd "$SRC_DIR/../shared" 2>/dev/null && pwd || echo "$SRC_DIR/../shared")
: "${PYTHON:=python3}"
export PATH LC_ALL=C

tap_n=0
tap_failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cp-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

_tap() { # status description
	tap_n=$((tap_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $tap_n - $2"
	else
		echo "not ok $tap_n - $2"
		tap_failed=$((tap_failed + 1))
	fi
}

# ok DESC CMD...: CMD exits 0
ok() { local d=$1; shift; "$@" >"$TMP/.out" 2>"$TMP/.err"; local s=$?
	_tap $s "$d"; [ $s = 0 ] || { echo "#   command: $*"; sed 's/^/#   /' "$TMP/.err" | head -20; }; return $s; }
# exit_is CODE DESC CMD...: CMD exits with CODE; its stderr is kept in $TMP/.err
exit_is() { local c=$1 d=$2; shift 2; "$@" >"$TMP/.out" 2>"$TMP/.err"; local s=$?
	[ "$s" = "$c" ]; _tap $? "$d"; [ "$s" = "$c" ] || { echo "#   exit $s, want $c: $*"; sed 's/^/#   /' "$TMP/.err" | head -20; }; }
# is GOT WANT DESC
is() { [ "$1" = "$2" ]; local s=$?; _tap $s "$3"
	[ $s = 0 ] || { echo "#   got:  $(printf %s "$1" | head -c 400)"; echo "#   want: $(printf %s "$2" | head -c 400)"; }; return $s; }
# like GOT REGEX DESC (grep -E)
like() { printf '%s' "$1" | grep -Eq -- "$2"; local s=$?; _tap $s "$3"
	[ $s = 0 ] || echo "#   '$(printf %s "$1" | head -c 400)' does not match /$2/"; return $s; }
# err_like REGEX DESC: the last command's stderr matches
err_like() { like "$(cat "$TMP/.err")" "$1" "$2"; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # skip $*"; }
done_testing() { echo "1..$tap_n"; [ "$tap_failed" = 0 ]; exit $?; }
# have_python_module MOD: true when $PYTHON can import MOD
# json_field FILE EXPR: print EXPR of the JSON document in FILE, bound to r
json_field() { "$PYTHON" -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
have_python_module() { "$PYTHON" -c "import $1" 2>/dev/null; }
