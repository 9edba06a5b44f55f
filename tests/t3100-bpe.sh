#!/bin/sh
# t3100: cp-bpe gives the merges and vocabulary HF tokenizers' BpeTrainer gives on the same
# documents, with and without --min-frequency; its tokenizer.json loads in HF and encodes
# held-out text exactly as cp-tokenize does; output is the same for any -j; caps and options
# work.
. "$(dirname "$0")/lib.sh"

REF="$PYTHON $TESTS_DIR/ref/tok_ref.py"
STDLIB=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
$REF validlist "$STDLIB" 2000000 7 >all.txt
head -n 40 all.txt >train.txt
tail -n +41 all.txt | head -n 30 >held.txt
$REF unitext 2 20000 >"$TMP/uni.txt"
printf "%s\n" "$TMP/uni.txt" >>train.txt
$REF unitext 3 20000 >"$TMP/uni2.txt"
printf "%s\n" "$TMP/uni2.txt" >>held.txt
like "$(wc -l <train.txt)" '^ *41$' "training files picked"

ok "cp-bpe trains (vocab 3000, -j 2)" cp-bpe -j 2 --vocab-size 3000 --text -o tok2 $(cat train.txt)
ok "writes tokenizer.json, vocab.json and merges.txt" test -s tok2/tokenizer.json -a -s tok2/vocab.json -a -s tok2/merges.txt
is "$(head -n 1 tok2/merges.txt)" "#version: 0.2" "merges.txt has GPT-2's header"
is "$(wc -l <tok2/merges.txt)" "$((3000 - 257 + 1))" "3000 tokens: 256 bytes, <|endoftext|>, 2743 merges"
ok "again with -j 1" cp-bpe -j 1 --vocab-size 3000 --text -o tok1 $(cat train.txt)
ok "tokenizer.json is the same for any -j" cmp tok1/tokenizer.json tok2/tokenizer.json

if have_python_module tokenizers; then
	$REF hftrain hf 3000 train.txt
	ok "merges equal HF BpeTrainer's, line for line" cmp tok2/merges.txt hf/merges.txt
	$PYTHON -c "import json,sys; print(json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])))" \
		tok2/vocab.json hf/vocab.json >same.txt
	is "$(cat same.txt)" "True" "vocab.json equals HF's"
	cp-tokenize -t tok2 --ids $(cat held.txt) >ours.txt
	$REF hf tok2/tokenizer.json held.txt >theirs.txt
	ok "our tokenizer.json in HF encodes held-out files as cp-tokenize does" cmp ours.txt theirs.txt
	$REF hf tok2 held.txt >theirs2.txt 2>/dev/null
	ok "so do our vocab.json + merges.txt" cmp ours.txt theirs2.txt
else
	for i in 1 2 3 4; do skip "Python module tokenizers missing"; done
fi
# transformers lives in the venv scripts/deps makes (TORCH_PYTHON), beside Debian's torch; its
# pinned tokenizers and regex carry older Unicode tables than the references above, so it is
# held to the real source files alone, not the random Unicode text
TPY=${TORCH_PYTHON:-$PYTHON}
if "$TPY" -c 'import transformers, tokenizers' 2>/dev/null; then
	grep -v "/uni2.txt$" held.txt >held-src.txt
	cp-tokenize -t tok2 --ids $(cat held-src.txt) >ours-src.txt
	"$TPY" - tok2 held-src.txt >gpt2cls.txt <<'PY'
import sys
from transformers import GPT2TokenizerFast, GPT2Tokenizer
d = sys.argv[1]
for cls in (GPT2TokenizerFast, GPT2Tokenizer):
    t = cls(vocab_file=d + "/vocab.json", merges_file=d + "/merges.txt")
    for p in open(sys.argv[2]).read().split("\n")[:-1]:
        print(" ".join(map(str, t.encode(open(p, encoding="utf-8").read(), add_special_tokens=False))))
PY
	cat ours-src.txt ours-src.txt >ours2.txt
	ok "HF's GPT-2 tokenizer classes load vocab.json + merges.txt and agree" cmp ours2.txt gpt2cls.txt
else
	skip "Python module transformers missing"
fi

# caps
first=$(head -n 1 train.txt)
cp-bpe --vocab-size 600 --text -o one "$first"
cp-bpe --vocab-size 600 --max-docs 1 --text -o cap $(cat train.txt)
ok "--max-docs 1 trains on the first document only" cmp one/merges.txt cap/merges.txt
size=$(wc -c <"$first")
cp-bpe --vocab-size 600 --max-bytes $((size + 1)) --text -o capb $(cat train.txt)
ok "--max-bytes stops before the document that would pass it" cmp one/merges.txt capb/merges.txt
cp-bpe --vocab-size 100000 --min-frequency 50 --text -o minf $(cat train.txt)
n=$(wc -l <minf/merges.txt)
[ "$n" -gt 100 ] && [ "$n" -lt 3000 ]
_tap $? "--min-frequency 50 stops early ($n lines)"
# the same stopping rule as HF's min_frequency, on the same text (a pair counted exactly the
# limit is merged; the first below it ends training)
if have_python_module tokenizers; then
	for mf in 50 13; do
		[ $mf = 50 ] || cp-bpe --vocab-size 100000 --min-frequency $mf --text -o minf $(cat train.txt)
		$REF hftrain hfminf 100000 train.txt $mf
		ok "--min-frequency $mf: merges equal HF BpeTrainer's with min_frequency=$mf" \
			cmp minf/merges.txt hfminf/merges.txt
		$PYTHON -c "import json,sys; print(json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])))" \
			minf/vocab.json hfminf/vocab.json >same.txt
		is "$(cat same.txt)" "True" "--min-frequency $mf: vocab.json equals HF's"
	done
else
	for i in 1 2 3 4; do skip "Python module tokenizers missing"; done
fi

# documents from shards train the same as the same texts as plain files
if command -v cp-hash >/dev/null; then
	mkdir src
	i=0
	for f in $(head -n 10 train.txt); do i=$((i + 10)); cp "$f" src/$i.py; done
	cp-hash -q -o docs.shard src
	cp-bpe --vocab-size 800 -o fromshard docs.shard
	cp-bpe --vocab-size 800 --text -o fromtext src
	ok "document shards and plain files give the same tokenizer" cmp fromshard/merges.txt fromtext/merges.txt
else
	skip "cp-hash not built"
fi

exit_is 2 "--vocab-size needs a number" cp-bpe --vocab-size 12x "$first"
exit_is 2 "an input is required" cp-bpe -o x
exit_is 1 "an unreadable input is an error" cp-bpe --text -o x /nonexistent/file
done_testing
