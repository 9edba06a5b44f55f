#!/bin/sh
# t6000: cp-complete on a tiny random GPT-2 with GPT-2's tokenizer: greedy decoding matches an
# independent PyTorch KV-cache loop; scores match the training forward's loss and PyTorch's
# per-token log-probabilities; windowed scores of long texts equal scores of each window's
# context; determinism over runs and threads; seeds; stop strings across
# token boundaries; JSON lines; models from run directories and checkpoints; --device; errors.
. "$(dirname "$0")/lib.sh"

TOK=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
TPY=${TORCH_PYTHON:-/usr/bin/python3}

ok "make a tiny random model" "$BUILD/tests/test-infer" hf-random M 50257 64 2 2 32 "$TOK" 3
printf 'def add(a, b):\n    return a + b' >prompt.py

# ---- greedy ----
ok "greedy, 20 tokens" cp-complete -m M -N 20 --json -f prompt.py
g1=$(cat "$TMP/.out")
like "$g1" '"finish_reason":"length","tokens":20,"ids":\[[0-9,]+\]' "JSON sample: finish_reason, tokens, ids"
ok "again with 1 thread, prompt as an argument" cp-complete -m M -N 20 --json -j 1 "$(cat prompt.py)"
is "$(cat "$TMP/.out")" "$g1" "same bytes for another run and thread count"
ok "prompt from stdin, text output" sh -c 'cp-complete -m M -N 20 <prompt.py >text.out'
"$PYTHON" -c 'import json,sys; sys.stdout.write(json.loads(sys.argv[1])["text"] + "\n")' "$g1" >text.want
ok "text output is the sample and a newline" cmp text.out text.want

if "$TPY" -c 'import torch' 2>/dev/null; then
	cp-complete -m M --score prompt.py --json >p.score
	"$PYTHON" -c 'import json; print(" ".join(str(t["id"]) for t in json.load(open("p.score"))["tokens"]))' >p.ids
	ok "PyTorch KV-cache loop, 20 greedy tokens" "$TPY" "$SRC_DIR/tests/ref/complete_torch.py" M p.ids 20 1
	ref=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["ids"])' "$(cat "$TMP/.out")")
	ours=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["ids"])' "$g1")
	is "$ours" "$ref" "greedy tokens equal PyTorch's"
else
	skip "no torch in $TPY"
	skip "no torch in $TPY"
fi

# ---- sampling ----
ok "3 samples, seed 5" cp-complete -m M -N 16 -n 3 -T 1 -p 0.95 -k 1000 -s 5 --json -f prompt.py
s5=$(cat "$TMP/.out")
is "$(printf '%s\n' "$s5" | wc -l | tr -d ' ')" 3 "three JSON lines"
ok "again" cp-complete -m M -N 16 -n 3 -T 1 -p 0.95 -k 1000 -s 5 --json -f prompt.py -j 1
is "$(cat "$TMP/.out")" "$s5" "the same seed gives the same samples"
ok "seed 6" cp-complete -m M -N 16 -n 3 -T 1 -p 0.95 -k 1000 -s 6 --json -f prompt.py
[ "$(cat "$TMP/.out")" != "$s5" ]
_tap $? "another seed gives other samples"
ok "samples differ from each other" "$PYTHON" -c '
import json, sys
t = [json.loads(l)["ids"] for l in sys.argv[1].splitlines()]
assert len({tuple(x) for x in t}) == 3, t' "$s5"

# ---- stop strings: cut at the first match, also across token boundaries ----
cp-complete -m M -N 40 -T 1 -s 9 --json -f prompt.py >free.json
"$PYTHON" - <<'PYEOF' >stops.txt
import json
s = json.load(open("free.json"))
t = s["text"]
# a 4-byte window in the middle, and one later: both stop strings given, the earlier wins
a, b = t[12:16], t[25:29]
print(a)
print(b)
print(t[:t.find(a)] if t.find(a) >= 0 else t)
PYEOF
sa=$(sed -n 1p stops.txt)
sb=$(sed -n 2p stops.txt)
ok "generate with two stop strings" cp-complete -m M -N 40 -T 1 -s 9 --json -f prompt.py --stop "$sb" --stop "$sa"
ok "text cut where the first stop string begins, finish_reason stop" "$PYTHON" -c '
import json, sys
free, got, a, b = json.load(open("free.json"))["text"], json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
cut = min(i for i in (free.find(a), free.find(b)) if i >= 0)
assert got["text"] == free[:cut], (got["text"], free[:cut])
assert got["finish_reason"] == "stop", got' "$(cat "$TMP/.out")" "$sa" "$sb"
ok "a stop string spanning two tokens" "$PYTHON" -c '
import json, subprocess, sys
# find a stop string made of the end of one token and the start of the next
s = json.load(open("free.json"))
out = subprocess.run(["cp-complete", "-m", "M", "--score", "-", "--json"], input=s["text"].encode(),
                     capture_output=True, check=True).stdout
toks = [t["text"] for t in json.loads(out)["tokens"]]
for i in range(3, len(toks) - 1):
    if len(toks[i]) >= 2 and len(toks[i + 1]) >= 2:
        stop = toks[i][-2:] + toks[i + 1][:2]
        break
r = subprocess.run(["cp-complete", "-m", "M", "-N", "40", "-T", "1", "-s", "9", "--json", "-f", "prompt.py",
                    "--stop", stop], capture_output=True, check=True).stdout
got = json.loads(r)
assert stop in s["text"] and got["text"] == s["text"][:s["text"].find(stop)], (stop, got)
assert got["finish_reason"] == "stop"'
ok "a backslash-n in --stop is a newline" cp-complete -m M -N 40 -T 1 -s 9 --json -f prompt.py --stop '\n'
ok "no newline in the text" "$PYTHON" -c 'import json,sys; assert "\n" not in json.loads(sys.argv[1])["text"]' "$(cat "$TMP/.out")"

# ---- scoring ----
ok "score" cp-complete -m M --score prompt.py --json
sc=$(cat "$TMP/.out")
like "$sc" '^\{"tokens":\[\{"id":[0-9]+,"text":"def","logprob":null\},\{"id":[0-9]+,"text":" add","logprob":-[0-9.]+\}' "per-token JSON; the first token has no score"
ok "training forward's loss on the same text" "$BUILD/tests/test-infer" forward-loss M prompt.py
fl=$(cut -d' ' -f1 "$TMP/.out")
ok "mean -logprob equals the trainer's loss ($fl)" "$PYTHON" -c '
import json, sys
s = json.loads(sys.argv[1]); loss = float(sys.argv[2])
assert abs(-s["mean_logprob"] - loss) < 1e-4, (s["mean_logprob"], loss)
assert s["scored"] == s["n_tokens"] - 1' "$sc" "$fl"
if "$TPY" -c 'import torch' 2>/dev/null; then
	ok "PyTorch per-token log-probabilities" "$TPY" "$SRC_DIR/tests/ref/complete_torch.py" --score M p.ids
	ok "agree token by token" "$PYTHON" -c '
import json, sys
ours = [t["logprob"] for t in json.loads(sys.argv[1])["tokens"][1:]]
ref = json.loads(sys.argv[2])["logprob"]
assert len(ours) == len(ref) and max(abs(a - b) for a, b in zip(ours, ref)) < 1e-4' "$sc" "$(cat "$TMP/.out")"
else
	skip "no torch"
	skip "no torch"
fi
cat "$SRC_DIR"/man/cp-complete.1 | head -c 3000 >long.txt
ok "a text longer than the context is scored in windows" cp-complete -m M --score long.txt --json
cp "$TMP/.out" long.score
ok "every token but the first has a finite score" "$PYTHON" -c '
import json, math, sys
s = json.loads(sys.argv[1])
assert s["n_tokens"] > 200, s["n_tokens"]
assert all(math.isfinite(t["logprob"]) for t in s["tokens"][1:])' "$(cat "$TMP/.out")"
# The window rule, computed directly: windows of n_ctx = 64 tokens overlapping by half start at
# 0, 32, 64, ...; window 0 scores tokens 1..63, window k >= 1 tokens 32k+32..32k+63, each with
# the tokens from its window's start as context. So token i >= 64 has the context
# [32 (i div 32) - 32, i): 32 tokens at i = 64, 96, 128 (where windows meet), 63 at i = 95,
# 127. Each is checked against a score of just that context and token (one window, no cut).
ok "windowed scores equal scores of the exact context each window gives" "$PYTHON" - <<'PYEOF'
import json, math, subprocess
s = json.load(open("long.score"))
toks = s["tokens"]
ids = [t["id"] for t in toks]
raw = [t["text"].encode("utf-8", "surrogateescape") for t in toks]
n_ctx, half = 64, 32

def start_of(i):  # the first token of the window that scores token i
    return 0 if i < n_ctx else half * (i // half) - half

def score(a, b):  # cp-complete --score on the bytes of tokens a..b alone
    out = subprocess.run(["cp-complete", "-m", "M", "--score", "-", "--json"], input=b"".join(raw[a:b + 1]),
                         capture_output=True, check=True).stdout
    r = json.loads(out)
    got = [t["id"] for t in r["tokens"]]
    assert got == ids[a:b + 1], ("the cut text tokenizes otherwise", a, b)
    return r["tokens"][-1]["logprob"]

targets = [1, 10, 63, 64, 65, 95, 96, 127, 128, 159, 160, len(ids) - 1]
assert len(ids) > 161, len(ids)
for i in targets:
    a = start_of(i)
    assert i - a == (i if i < n_ctx else half + i % half), (i, a)
    want = score(a, i)
    got = toks[i]["logprob"]
    assert abs(got - want) < 1e-4, (i, a, got, want)
    print("# token %d: context [%d, %d), %.6f = %.6f" % (i, a, i, got, want))
# the rule is what the check sees: a longer context gives token 64 another score
other = score(64 - 63, 64)
assert abs(other - toks[64]["logprob"]) > 1e-4, (other, toks[64]["logprob"])
PYEOF
ok "--view colours" cp-complete -m M --score prompt.py --view
like "$(cat "$TMP/.out")" "$(printf '\033')\\[" "ANSI colours in the view"
like "$(tail -1 "$TMP/.out")" "tokens, mean log-probability" "summary line"

# ---- JSON lines ----
cat >req.jsonl <<'JEOF'
{"id": 1, "prompt": "def add(a, b):\n    return a + b", "max_tokens": 20, "temperature": 0}
{"id": "x", "prompt": 5}
not json

{"id": 3, "prompt": "import os\n", "n": 2, "max_tokens": 5, "temperature": 1.0, "seed": 4, "stop": ["zzzz"]}
JEOF
exit_is 1 "JSON lines with two bad requests exit 1" cp-complete -m M --jsonl -f req.jsonl
cp-complete -m M --jsonl -f req.jsonl >res.jsonl 2>res.err
ok "one result per request, in order" "$PYTHON" -c '
import json, sys
r = [json.loads(l) for l in open("res.jsonl")]
assert len(r) == 4, r
assert r[0]["id"] == 1 and r[0]["choices"][0]["text"] == json.loads(sys.argv[1])["text"], r[0]
assert r[1]["id"] == "x" and "prompt" in r[1]["error"], r[1]
assert "id" not in r[2] and "line 3" in r[2]["error"], r[2]
assert r[3]["id"] == 3 and len(r[3]["choices"]) == 2 and r[3]["usage"]["completion_tokens"] == 10, r[3]' "$g1"
like "$(cat res.err)" 'req.jsonl:3: not JSON' "errors on stderr name the file and line"

# ---- models from a run directory and a checkpoint ----
"$BUILD/tests/test-gpt2-data" tokens tok.shard 50257 40 1 80 >/dev/null
cp-pack -T 32 --valid-frac 0.2 -o seqs tok.shard >/dev/null
ok "cp-train from the model, lr 0" cp-train -o RUN --init-hf M --train seqs/train --steps 1 --lr 0 --warmup 0 --eval-every 0 --batch 2 --threads 1
exit_is 1 "a run directory without a tokenizer" cp-complete -m RUN -N 20 --json -f prompt.py
err_like "no tokenizer.*--tokenizer" "message says to name one"
ok "run directory with --tokenizer" cp-complete -m RUN -t M -N 20 --json -f prompt.py
is "$(cat "$TMP/.out")" "$g1" "same completion as the exported model"
ok "checkpoint file" cp-complete -m RUN/ckpt-00000001.ckpt --tokenizer M/tokenizer.json -N 20 --json -f prompt.py
is "$(cat "$TMP/.out")" "$g1" "same completion from the checkpoint"

# ---- --device ----
ok "--device cpu" cp-complete -m M --device cpu -N 20 --json -f prompt.py
is "$(cat "$TMP/.out")" "$g1" "same completion as the default device"
ok "--device cpu:0" cp-complete -m M --device cpu:0 -N 20 --json -f prompt.py
is "$(cat "$TMP/.out")" "$g1" "same completion on cpu:0"
cp-complete -m M --device cuda -N 20 --json -f prompt.py >cuda.out 2>cuda.err
s=$?
if [ $s = 0 ]; then
	skip "this build runs cuda (its numbers are checked by the GPU tests)"
else
	is "$s" 1 "--device cuda without a CUDA backend (or device) exits 1"
	like "$(cat cuda.err)" "device 'cuda'" "the message names the device"
fi
exit_is 1 "--device cpu:1 is refused" cp-complete -m M --device cpu:1 x
err_like "device 'cpu:1': the cpu backend has only device 0" "message names it"
exit_is 1 "a malformed device index is refused" cp-complete -m M --device cuda:x x
err_like "device 'cuda:x': the index after ':' must be a number" "message names it"
exit_is 1 "an empty index is refused" cp-complete -m M --device cpu: x
err_like "device 'cpu:'" "message names it"
exit_is 1 "an unknown device is refused" cp-complete -m M --device tpu x
err_like "unknown device 'tpu' \\(this build has: cpu" "message names it and the built ones"
exit_is 2 "--device needs a value" cp-complete -m M --device

# ---- errors ----
exit_is 1 "missing model" cp-complete -m nosuch "x"
exit_is 2 "bad number" cp-complete -m M -N 12x "x"
exit_is 2 "no model" cp-complete "x"
exit_is 2 "top-p out of range" cp-complete -m M -p 1.5 "x"
head -c 2000 "$SRC_DIR/man/cp-complete.1" >big.txt
exit_is 1 "a prompt longer than the context" cp-complete -m M -f big.txt
err_like "context holds 64" "message gives the context"
exit_is 1 "a prompt over --max-prompt" cp-complete -m M --max-prompt 3 -f prompt.py
err_like "more than the limit of 3" "message gives the limit"
ok "max-tokens 0" cp-complete -m M -N 0 --json "x"
like "$(cat "$TMP/.out")" '"text":"","finish_reason":"length","tokens":0' "empty sample"

done_testing
