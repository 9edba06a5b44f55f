#!/bin/sh
# t3101: fill-in-the-middle data. cp-bpe --fim adds StarCoder's four FIM tokens as special
# tokens after the merges (every other id as without them), in files HF tokenizers and
# transformers load with the same ids and the same encoding of text holding them; cp-pack
# --fim-rate rearranges documents into PSM and SPM (checked against the documents themselves,
# split, and HF's encoding of each part), the same bytes for any -j, nothing changed at rate
# 0, and refuses a tokenizer without the FIM tokens, naming the one missing.
. "$(dirname "$0")/lib.sh"

STDLIB=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
find "$STDLIB" -maxdepth 1 -name '*.py' | sort | head -n 60 >docs.txt
# characters of two, three and four bytes, so that a split inside one would show
$PYTHON -c 'print("".join("é∑😀x\n"[i % 5] for i in range(400)))' >"$TMP/multi.txt"
printf '%s\n' "$TMP/multi.txt" >>docs.txt
is "$(wc -l <docs.txt | tr -d ' ')" 61 "documents picked"

ok "cp-bpe --fim" cp-bpe --fim -j 2 --vocab-size 700 --text -o tok $(cat docs.txt)
ok "cp-bpe without, 4 tokens fewer" cp-bpe -j 2 --vocab-size 696 --text -o tok0 $(cat docs.txt)
$PYTHON - tok tok0 >ids.txt <<'PY'
import json, sys
a = json.load(open(sys.argv[1] + "/vocab.json")); b = json.load(open(sys.argv[2] + "/vocab.json"))
print(" ".join("%s=%d" % (k, v) for k, v in sorted(a.items(), key=lambda kv: kv[1]) if k not in b))
print(all(a.get(k) == v for k, v in b.items()), len(a))
t = json.load(open(sys.argv[1] + "/tokenizer.json"))
print(" ".join("%s=%d:%s" % (x["content"], x["id"], x["special"]) for x in t["added_tokens"]))
PY
is "$(sed -n 1p ids.txt)" "<fim_prefix>=696 <fim_middle>=697 <fim_suffix>=698 <fim_pad>=699" \
	"the FIM tokens take the ids after the merges, in StarCoder's order"
is "$(sed -n 2p ids.txt)" "True 700" "every other token keeps its id; 700 in all"
is "$(sed -n 3p ids.txt)" \
	"<|endoftext|>=0:True <fim_prefix>=696:True <fim_middle>=697:True <fim_suffix>=698:True <fim_pad>=699:True" \
	"all five are added special tokens"
exit_is 2 "--fim with a vocabulary too small for them" cp-bpe --fim --vocab-size 260 --text "$TMP/multi.txt"
err_like "at least 261" "the message says the least"

printf 'def f(x):<fim_suffix>    return x<|endoftext|>\n<fim_middle>é<fim_pad>∑<fim_prefix>\n' >special.txt
ok "cp-tokenize --special encodes the FIM tokens" cp-tokenize -t tok --ids --special special.txt
cp "$TMP/.out" ours.txt
like "$(cat ours.txt)" "(^| )698 .* 697 .* 699 .* 696 199$" "as their ids"
if have_python_module tokenizers; then
	$PYTHON - tok special.txt >hf.txt <<'PY'
import sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
print(" ".join(map(str, t.encode(open(sys.argv[2], encoding="utf-8").read()).ids)))
print(" ".join(str(t.token_to_id(n)) for n in ("<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>")))
PY
	is "$(sed -n 1p hf.txt)" "$(cat ours.txt)" "HF tokenizers encodes text with FIM tokens in it as cp does"
	is "$(sed -n 2p hf.txt)" "696 697 698 699" "and gives them the same ids"
else
	skip "Python module tokenizers missing"; skip "Python module tokenizers missing"
fi
TPY=${TORCH_PYTHON:-$PYTHON}
if "$TPY" -c 'import transformers' 2>/dev/null; then
	"$TPY" - tok special.txt >tf.txt 2>/dev/null <<'PY'
import sys
from transformers import PreTrainedTokenizerFast
t = PreTrainedTokenizerFast(tokenizer_file=sys.argv[1] + "/tokenizer.json")
print(" ".join(map(str, t.encode(open(sys.argv[2], encoding="utf-8").read(), add_special_tokens=False))))
print(t.convert_tokens_to_ids(["<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"]))
PY
	is "$(sed -n 1p tf.txt)" "$(cat ours.txt)" "transformers' fast tokenizer encodes it the same"
	is "$(sed -n 2p tf.txt)" "[696, 697, 698, 699]" "with the same ids"
else
	skip "Python module transformers missing"; skip "Python module transformers missing"
fi

ok "the documents tokenized" cp-tokenize -t tok --min-ratio 0 --text -o toks $(cat docs.txt)
ok "cp-tokenize without the FIM tokens" cp-tokenize -t tok0 --min-ratio 0 --text -o toks0 $(cat docs.txt)
P="cp-pack -T 2 --valid-frac 1 --seed 7"
ok "--fim-rate 1 --fim-spm-rate 0.5 -j 1" $P --fim-rate 1 --fim-spm-rate 0.5 -t tok -j 1 -o f1 toks
cp "$TMP/.out" f1.json
ok "and -j 3" $P --fim-rate 1 --fim-spm-rate 0.5 -t tok -j 3 -o f3 toks
ok "the same bytes for any thread count" cmp f1/valid/seqs-00000.shard f3/valid/seqs-00000.shard
is "$(json_field f1.json 'r["fim_docs"]')" 61 "every document rearranged at rate 1"
spm=$(json_field f1.json 'r["fim_spm_docs"]')
like "$spm" '^([1-9]|[1-5][0-9])$' "some of them in SPM order, not all ($spm)"
ok "another seed" $P --fim-rate 1 -t tok -o f9 --seed 8 toks
if cmp -s f1/valid/seqs-00000.shard f9/valid/seqs-00000.shard; then _tap 1 "another seed splits elsewhere"; else _tap 0 "another seed splits elsewhere"; fi

# every document, from the tokens cp-pack wrote, against its own text and HF's encoding
if have_python_module tokenizers; then
	cp-cat f1/valid >f1.jsonl
	$PYTHON - tok f1.jsonl docs.txt <<'PY' >check.txt
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
PRE, MID, SUF, EOT = (t.token_to_id(n) for n in ("<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<|endoftext|>"))
ids = [i for line in open(sys.argv[2]) for i in json.loads(line)["tokens"]]
docs, cur = [], []
for i in ids:
    if i == EOT:
        docs.append(cur); cur = []
    else:
        cur.append(i)
if cur:  # the last document, its <|endoftext|> the tail -T 2 dropped
    docs.append(cur)
texts = sorted(open(p, "rb").read().decode("utf-8") for p in open(sys.argv[3]).read().split())
enc = lambda s: t.encode(s).ids
dec = lambda x: t.decode(x, skip_special_tokens=False)
got, bad, psm, spm = [], 0, 0, 0
for d in docs:
    if d[:2] == [PRE, SUF] and d.count(MID) == 1:
        m = d.index(MID); s, pm = d[2:m], d[m + 1:]
        ok = enc(dec(s)) == s and enc(dec(pm)) == pm
        got.append(dec(pm) + dec(s)); spm += 1
    elif d[0] == PRE and d.count(SUF) == 1 and d.count(MID) == 1 and d.index(SUF) < d.index(MID):
        a, b = d.index(SUF), d.index(MID); p, s, m = d[1:a], d[a + 1:b], d[b + 1:]
        ok = all(enc(dec(x)) == x for x in (p, s, m))
        got.append(dec(p) + dec(m) + dec(s)); psm += 1
    else:
        ok = False
    bad += not ok or "\ufffd" in got[-1] if got else 1
print(len(docs), psm, spm, bad, sorted(got) == texts)
PY
	is "$(cat check.txt)" "61 $((61 - spm)) $spm 0 True" \
		"each document is PSM or SPM, its parts HF's encoding of whole characters, prefix+middle+suffix its text"
else
	skip "Python module tokenizers missing"
fi

ok "--fim-rate 0" $P --fim-rate 0 -t tok -o r0 toks
ok "without --fim-rate" $P -o plain toks
ok "rate 0 leaves the sequences as they were" cmp r0/valid/seqs-00000.shard plain/valid/seqs-00000.shard
cp-pack -T 64 --fim-rate 0.5 -t tok -o half toks >half.json
n=$(json_field half.json 'r["fim_docs"]')
like "$n" '^(1[5-9]|[2-3][0-9]|4[0-5])$' "about half the documents rearranged ($n of 61)"

exit_is 1 "a tokenizer without FIM tokens" $P --fim-rate 0.5 -t tok0 -o bad toks0
err_like "'tok0'.*no <fim_prefix> token" "the message names the tokenizer and the token missing"
exit_is 1 "shards made with another tokenizer" $P --fim-rate 0.5 -t tok -o bad toks0
err_like "696 ids.*'tok' has 700" "the message gives both sizes"
exit_is 2 "--fim-rate without -t" $P --fim-rate 0.5 -o bad toks
err_like "needs the tokenizer" "says what it needs"
exit_is 2 "--fim-spm-rate without --fim-rate" $P --fim-spm-rate 0.5 -o bad toks
test ! -e bad/valid/.set
_tap $? "nothing written by the refused runs"
done_testing
