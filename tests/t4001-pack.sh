#!/bin/sh
# t4001: cp-pack against a Python model of packing (split by document-id hash, concatenation,
# fixed-length cut, dropped tail), shuffle determinism, stable split, errors.
. "$(dirname "$0")/lib.sh"

gen="$BUILD/tests/test-gpt2-data"
ok "token shard 1" "$gen" tokens t1.shard 300 400 1 50
ok "token shard 2" "$gen" tokens t2.shard 70000 10 2 50
ok "token shard 3" "$gen" tokens t3.shard 300 200 3 50

ok "pack two shards" cp-pack -T 16 --valid-frac 0.2 --seed 7 --shard-seqs 100 -o out t1.shard t3.shard
cp "$TMP/.out" report.json
like "$(cat report.json)" '"seq_len":16' "report names the sequence length"
ok "train shards readable" cp-cat --verify out/train
is "$(ls out/train | wc -l)" "$(( ( $(sed 's/.*"train_sequences":\([0-9]*\).*/\1/' report.json) + 99) / 100 ))" \
	"train shards hold 100 sequences each"
dump() { cp-cat t1.shard t3.shard >docs.jsonl; cp-cat out/train >train.jsonl; cp-cat out/valid >valid.jsonl; }
setup "the documents and sequences as JSON lines" dump
cat >check.py <<'PY'
import json, sys
M = (1 << 64) - 1
def mix64(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
T, frac = 16, 0.2
tr, va, nd = [], [], 0
for line in open("docs.jsonl"):
    d = json.loads(line)
    nd += 1
    side = va if (mix64(int(d["id"], 16) ^ 0x5eed5a17c0de0001) >> 11) * 2.0 ** -53 < frac else tr
    side.extend(d["tokens"])
cut = lambda s: [s[i:i + T] for i in range(0, len(s) - T + 1, T)]
want_tr, want_va = cut(tr), cut(va)
got_tr = [json.loads(l)["tokens"] for l in open("train.jsonl")]
got_va = [json.loads(l)["tokens"] for l in open("valid.jsonl")]
rep = json.load(open("report.json"))
errs = []
if sorted(got_tr) != sorted(want_tr): errs.append("train sequences are not the cut of the train documents")
if got_tr == want_tr and len(want_tr) > 2: errs.append("train sequences are not shuffled")
if got_va != want_va: errs.append("valid sequences differ from the cut of the valid documents, in order")
tot = len(tr) + len(va)
used = (len(want_tr) + len(want_va)) * T
exp = {"docs": nd, "tokens": tot, "train_sequences": len(want_tr), "valid_sequences": len(want_va),
       "tokens_used": used, "tokens_discarded": tot - used}
for k, v in exp.items():
    if rep[k] != v: errs.append("report %s = %s, want %s" % (k, rep[k], v))
if abs(rep["discarded_frac"] - (tot - used) / tot) > 1e-12: errs.append("discarded_frac")
print("\n".join(errs))
sys.exit(1 if errs else 0)
PY
ok "sequences, split and report match the Python model" "$PYTHON" check.py

ok "same seed again" cp-pack -T 16 --valid-frac 0.2 --seed 7 --shard-seqs 100 -o again t1.shard t3.shard
ok "same seed gives the same bytes" cmp out/train/seqs-00000.shard again/train/seqs-00000.shard
ok "another seed" cp-pack -T 16 --valid-frac 0.2 --seed 8 -o other t1.shard t3.shard
setup "its sequences as JSON lines" sh -c 'cp-cat other/train >other.jsonl'
if cmp -s other/train/seqs-00000.shard out/train/seqs-00000.shard; then _tap 1 "another seed shuffles differently"; else _tap 0 "another seed shuffles differently"; fi
is "$(sed 's/"index":[0-9]*,//' other.jsonl | sort | md5sum)" "$(sed 's/"index":[0-9]*,//' train.jsonl | sort | md5sum)" \
	"another seed keeps the same sequences"

# a refresh that adds documents leaves every old document on its side
ok "pack one shard" cp-pack -T 16 --valid-frac 0.2 -o one t1.shard
setup "its validation sequences as JSON lines" sh -c 'cp-cat one/valid >one_valid.jsonl'
stable=$("$PYTHON" -c '
import json
v1 = [t for l in open("one_valid.jsonl") for t in json.loads(l)["tokens"]]
v2 = [t for l in open("valid.jsonl") for t in json.loads(l)["tokens"]]
# the first shard comes first in both runs: its validation stream is a prefix
print("ok" if v2[:len(v1)] == v1 else "moved")')
is "$stable" ok "documents keep their side when inputs are added"

# shards of an earlier, larger run are removed
ok "repack with bigger shards" cp-pack -T 16 --valid-frac 0.2 --seed 7 -o out t1.shard t3.shard
is "$(ls out/train)" "seqs-00000.shard" "stale shards removed"

ok "4-byte ids" cp-pack -T 8 --valid-frac 0 -o wide t2.shard
like "$(cp-cat --header wide/train)" '"vocab_size":70000,"seq_len":8' "wide vocabulary header"
like "$(cp-cat -n 1 wide/train)" '"n_tokens":8' "wide record decodes"

exit_is 1 "mixed vocabularies refused" cp-pack -T 8 -o mix t1.shard t2.shard
err_like "vocabulary size" "message names the vocabulary"
exit_is 1 "a sequence shard is not a token shard" cp-pack -T 8 -o bad out/train/seqs-00000.shard
setup "a truncated token shard" sh -c 'head -c 200 t1.shard >trunc.shard'
exit_is 1 "truncated input refused" cp-pack -T 8 -o bad trunc.shard
err_like "trunc.shard" "message names the file"
exit_is 2 "bad -T" cp-pack -T x -o bad t1.shard
exit_is 2 "-T 1 refused" cp-pack -T 1 -o bad t1.shard
exit_is 2 "no -o" cp-pack t1.shard
exit_is 2 "--valid-frac above 1" cp-pack --valid-frac 1.5 -o bad t1.shard
done_testing
