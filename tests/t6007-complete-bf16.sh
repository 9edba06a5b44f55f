#!/bin/sh
# t6007: cp-complete --bf16 (the weights in bf16 for generation on the CPU) against fp32 on a
# small random GPT-2 with GPT-2's tokenizer: every token's log-probability within 0.05 nats
# (0.01 on average), the same 20 greedy tokens, the same bytes on 1 and 2 threads; and
# cp-humaneval generate --bf16 likewise.
. "$(dirname "$0")/lib.sh"

TOK=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
ok "make a small random model" "$BUILD/tests/test-infer" hf-random M 50257 64 2 2 32 "$TOK" 3
printf 'def add(a, b):\n    return a + b\n\nclass Stack:\n    def __init__(self):\n        self.items = []\n' >p.py

ok "--score in fp32" sh -c 'cp-complete -m M --score p.py --json >f.json'
ok "--score in bf16" sh -c 'cp-complete -m M --bf16 --score p.py --json >b.json'
ok "log-probabilities within 0.05 nats, 0.01 on average" "$PYTHON" -c '
import json
a = json.load(open("f.json"))["tokens"]
b = json.load(open("b.json"))["tokens"]
assert [x["id"] for x in a] == [y["id"] for y in b]
d = [abs(x["logprob"] - y["logprob"]) for x, y in zip(a, b) if x.get("logprob") is not None]
assert len(d) > 20 and max(d) <= 0.05 and sum(d) / len(d) <= 0.01, (max(d), sum(d) / len(d))
print("max %.2g mean %.2g" % (max(d), sum(d) / len(d)))
'
ok "greedy in fp32" cp-complete -m M -N 20 --json -f p.py
gf=$(cat "$TMP/.out")
ok "greedy in bf16, 2 threads" cp-complete -m M -N 20 --json --bf16 -j 2 -f p.py
gb=$(cat "$TMP/.out")
ok "greedy in bf16, 1 thread" cp-complete -m M -N 20 --json --bf16 -j 1 -f p.py
is "$(cat "$TMP/.out")" "$gb" "bf16: the same bytes on 1 and 2 threads"
ids() { "$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["ids"])' "$1"; }
is "$(ids "$gb")" "$(ids "$gf")" "the same 20 greedy tokens as fp32"

# cp-humaneval generate --bf16: greedy samples, the same on 1 and 2 threads, and fp32's here
if P=$(humaneval_problems); then
	"$BUILD/tests/test-infer" hf-random M2 50257 512 2 2 32 "$TOK" 3 >/dev/null
	G="generate -m M2 --problems $P -n 2 --limit 3 --temperature 0 --max-tokens 12"
	ok "cp-humaneval generate --bf16, 2 threads" cp-humaneval $G --bf16 -j 2 -o b2.jsonl
	ok "... 1 thread" cp-humaneval $G --bf16 -j 1 -o b1.jsonl
	ok "... the same samples" cmp b1.jsonl b2.jsonl
	ok "fp32" cp-humaneval $G -o f.jsonl
	ok "... greedy, the same completions as fp32 on this model" cmp b1.jsonl f.jsonl
else
	for i in 1 2 3 4 5; do skip "$HUMANEVAL_MISSING"; done
fi
done_testing
