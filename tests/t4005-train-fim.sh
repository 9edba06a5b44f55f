#!/bin/sh
# t4005: fill-in-the-middle end to end on the CPU. Documents "k:v" with v a fixed function of
# the key k (8 keys); a tokenizer with the FIM tokens (cp-bpe --fim); the same documents
# packed with --fim-rate and without; the same tiny model trained 300 steps on each (the two
# at once, a thread each: some 15 seconds on 2 idle cores). The
# infill task asks for the key given only what follows it,
#   <fim_prefix><fim_suffix>:v<fim_middle>k<|endoftext|>
# which no left-to-right reading can know: the infill loss (the key's negative
# log-probability, in nats, over the 8 keys) of the FIM-trained model must fall well below
# the no-FIM baseline's and below chance (ln 8), and cp-complete --suffix fills the keys in.
. "$(dirname "$0")/lib.sh"

mkdir docs
"$PYTHON" - <<'PY' >table.txt || exit 1
import random
r = random.Random(1)
m = dict(zip("abcdefgh", "qmtkrwnx"))
for i in range(2000):
    k = r.choice("abcdefgh")
    open("docs/%04d.txt" % i, "w").write("%s:%s" % (k, m[k]))
for k in "abcdefgh":
    print(k, m[k])
PY
setup "the tokenizer, the documents, FIM and plain sequences" sh -c '
	cp-bpe --fim --vocab-size 261 --text -o tok docs
	cp-tokenize -t tok --min-ratio 0 --text -o toks docs
	cp-pack -T 16 --valid-frac 0.05 --fim-rate 1 --fim-spm-rate 0 -t tok -o fim toks
	cp-pack -T 16 --valid-frac 0.05 -o plain toks' || done_testing
X="--model tiny --vocab 261 --ctx 16 --width 64 --heads 4 --batch 64 --steps 300 --lr 2e-2
   --warmup 50 --eval-every 0 --eval-batches 0 --threads 1 --tokenizer tok"
ok "the FIM model and the no-FIM baseline train on the same documents" sh -c '
	cp-train -o FIM --train fim/train --valid fim/valid $1 >fim.out 2>&1 & a=$!
	cp-train -o BASE --train plain/train --valid plain/valid $1 >base.out 2>&1; b=$?
	wait $a && test $b = 0 || { cat fim.out base.out >&2; exit 1; }' sh "$X"

# infill_loss RUN: the mean over the keys of -log p(key | the FIM prompt of its value)
infill_loss() {
	"$PYTHON" - "$1" <<'PY'
import json, subprocess, sys
tot = n = 0
for line in open("table.txt"):
    k, v = line.split()
    open("e.txt", "w").write("<fim_prefix><fim_suffix>:%s<fim_middle>%s<|endoftext|>" % (v, k))
    out = subprocess.run(["cp-complete", "-m", sys.argv[1], "--score", "e.txt", "--json", "-j", "1"],
                         capture_output=True, text=True, check=True).stdout
    t = json.loads(out)["tokens"]
    m = [i for i, x in enumerate(t) if x["text"] == "<fim_middle>"][0]
    assert t[m + 1]["text"] == k
    tot -= t[m + 1]["logprob"]; n += 1
print("%.3f" % (tot / n))
PY
}
fim=$(infill_loss FIM)
base=$(infill_loss BASE)
echo "# infill loss (nats per key, chance ln 8 = 2.079): FIM-trained $fim, no-FIM baseline $base"
ok "the FIM model's infill loss $fim is below half the baseline's $base" awk "BEGIN { exit !($fim < $base / 2) }"
ok "and below chance: it reads the suffix" awk "BEGIN { exit !($fim < 2.079 - 0.5) }"

# greedy infill of each key from its value
right=0
while read -r k v; do
	got=$(cp-complete -m FIM -j 1 -N 4 --suffix ":$v" "") || break
	[ "$got" = "$k" ] && right=$((right + 1))
done <table.txt
echo "# cp-complete --suffix filled in $right of 8 keys"
ok "cp-complete --suffix fills in most keys ($right of 8)" test "$right" -ge 6
ok "--json: the infill stops at <|endoftext|>" cp-complete -m FIM -j 1 -N 4 --json --suffix ":q" ""
like "$(cat "$TMP/.out")" '"finish_reason":"stop"' "finish_reason stop"
done_testing
