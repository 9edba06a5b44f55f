#!/bin/sh
# t2009: cp-hash under mpirun cuts a JSON-lines file into parts at line boundaries, each read
# by one rank, and writes what one process writes. Lines of every length (some longer than a
# part, some blank, malformed, over --max-line, the last without its newline) straddle the
# parts' boundaries; for N = 1 to 4 ranks and parts of several sizes the shard is the same
# bytes (origins with their line numbers), with a gzip dump (one part, read whole) and a
# second plain file in the same run. Skips without mpirun.
. "$(dirname "$0")/lib.sh"
need_mpirun
run() { local n=$1; shift; ranks "$n" "$BUILD/bin/cp-hash" "$@"; }	# N ARGS...
export CP_DOCPIPE_BATCH_ITEMS=5

setup "JSON-lines files" "$PYTHON" - <<'PY'
import gzip, json, random
rng = random.Random(2009)
def doc(i):
    k = rng.choice((0, 1, 5, 40, 300, 3000, 9000))
    return "def f%d():\n%s" % (i, "".join(rng.choice("abc xyz\n") for _ in range(k)))
lines = []
for i in range(600):
    r = rng.random()
    if r < 0.03:
        lines.append("")		# blank: nothing
    elif r < 0.05:
        lines.append('{"content": 3}')	# malformed: no text field
    elif r < 0.06:
        lines.append(json.dumps({"content": "x" * 30000}))	# over --max-line
    else:
        lines.append(json.dumps({"content": doc(i), "repo_name": "r%d" % (i % 7)}))
text = "\n".join(lines)	# the last line without its newline
open("big.jsonl", "w").write(text)
open("small.jsonl", "w").write(text[:20000] + "\n")
with gzip.open("dump.json.gz", "wt") as f:
    f.write("\n".join(lines[:150]) + "\n")
PY
size=$(wc -c <big.jsonl)
[ "$size" -gt 200000 ] || skip_all "the JSON-lines file came out small ($size bytes)"
set -- big.jsonl dump.json.gz small.jsonl
ok "one process" cp-hash -q -j2 --max-line 20000 -o one.shard "$@"
# a build without MPI runs N processes of one rank each, every one writing the output
r=$(run 2 cp-hash -j1 --max-line 20000 -o probe.shard "$@" 2>&1 | grep -c 'docs,')
[ "$r" = 1 ] || skip_all "cp-hash does not join mpirun's job (built without MPI?)"
for part in 997 4096 65536; do
	for n in 1 2 3 4; do
		CP_DOCPIPE_PART_BYTES=$part ok "parts of $part bytes, $n ranks" \
			run $n -q -j1 --max-line 20000 -o p$part-$n.shard "$@"
		ok "parts of $part bytes, $n ranks: one process's shard" cmp one.shard p$part-$n.shard
	done
done
ok "two threads a rank, default parts" run 3 -q -j2 --max-line 20000 -o j2.shard "$@"
ok "... one process's shard" cmp one.shard j2.shard
ok "--jsonl, a name without the extension" cp big.jsonl big.txt
ok "one process, --jsonl" cp-hash -q --jsonl -o txt1.shard big.txt
CP_DOCPIPE_PART_BYTES=3000 ok "3 ranks, --jsonl" run 3 -q -j1 --jsonl -o txt3.shard big.txt
ok "... one process's shard" cmp txt1.shard txt3.shard
got=$(cp-cat txt3.shard | "$PYTHON" -c '
import json, sys
print(" ".join(json.loads(l)["origin"].split(":")[-1] for l in sys.stdin))')
want=$("$PYTHON" -c '
import json
n = [i + 1 for i, l in enumerate(open("big.txt").read().split("\n"))
     if l and isinstance(json.loads(l).get("content"), str)]
print(" ".join(map(str, n)))')
is "$got" "$want" "3 ranks: the origins carry the file's line numbers"

# the counts of what was skipped, said once, as one process says them
cp-hash -j1 --max-line 20000 -o c1.shard "$@" 2>c1.err
CP_DOCPIPE_PART_BYTES=5000 run 4 -j1 --max-line 20000 -o c4.shard "$@" 2>c4.err
is "$(grep 'docs,' c4.err | sed 's/^[^:]*: //')" "$(grep 'docs,' c1.err | sed 's/^[^:]*: //')" \
	"4 ranks: the summary line is one process's"
is "$(grep -c 'malformed JSON line' c4.err)" "$(grep -c 'malformed JSON line' c1.err)" \
	"4 ranks: a warning for each malformed line"
done_testing
