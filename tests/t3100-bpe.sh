#!/bin/sh
# t3100: cp-bpe gives the merges and vocabulary HF tokenizers' BpeTrainer gives on the same
# documents, with and without --min-frequency; its tokenizer.json loads in HF and encodes
# held-out text exactly as cp-tokenize does; output is the same for any -j; caps and options
# work; empty inputs and tiny vocabularies are refused; a directory mixing two runs' files and
# a huge id are refused, naming them.
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

# issue 17: empty inputs and vocabularies too small to hold the bytes are refused
: >empty.txt
exit_is 1 "an empty input is refused" cp-bpe --text -o e empty.txt
err_like "no text in the inputs' documents" "  ... saying it holds no text"
exit_is 1 "inputs with no documents are refused" cp-bpe --max-docs 0 --text -o e "$first"
err_like "no documents in the inputs" "  ... saying so"
ok "  ... and write nothing" test ! -e e/tokenizer.json -a ! -e e/cp-bpe.sums
mkdir empty
exit_is 1 "an empty directory of text is refused" cp-bpe --text -o ed empty
err_like "no documents in the inputs" "  ... saying so"
ok "  ... and writes nothing" test ! -e ed/tokenizer.json -a ! -e ed/cp-bpe.sums
for v in 1 256; do
	exit_is 2 "--vocab-size $v is refused" cp-bpe --vocab-size $v --text -o e "$first"
	err_like "between 257 and" "  ... naming the smallest size, 257"
done
ok "--vocab-size 257 gives the bytes and <|endoftext|>" cp-bpe --vocab-size 257 --text -o v257 "$first"
is "$(wc -l <v257/merges.txt | tr -d ' ')" 1 "  ... with no merge"

# the three files of one run are committed as one: a directory mixing two runs is refused
ok "cp-bpe.sums lists the three files" test "$(grep -c '^[a-z.]* [0-9]* [0-9a-f]\{16\}$' tok1/cp-bpe.sums)" = 3
cp -r tok1 mixed
cp one/vocab.json one/merges.txt mixed/
exit_is 1 "new vocab.json + merges.txt beside an old tokenizer.json are refused" cp-tokenize -t mixed --ids "$first"
err_like "'mixed': the tokenizer files are not all from one cp-bpe run: 'vocab.json'" "  ... naming the directory and the file"
exit_is 1 "  ... also through mixed/tokenizer.json" cp-tokenize -t mixed/tokenizer.json --ids "$first"
exit_is 1 "  ... and mixed/vocab.json" cp-tokenize -t mixed/vocab.json --ids "$first"
cp -r one mixed2
cp tok1/tokenizer.json mixed2/
exit_is 1 "an old tokenizer.json beside a new run's files (a run stopped by ENOSPC) is refused" cp-tokenize -t mixed2 --ids "$first"
err_like "'mixed2': .*'tokenizer.json'" "  ... naming it"
rm mixed2/tokenizer.json
exit_is 1 "a run that never wrote tokenizer.json is refused" cp-tokenize -t mixed2 --ids "$first"
err_like "'tokenizer.json' is missing" "  ... naming the missing file"
ok "rerunning cp-bpe makes the directory whole" cp-bpe --vocab-size 600 --text -o mixed "$first"
ok "  ... and it loads" cp-tokenize -t mixed --ids "$first"
ok "  ... with the other run's files" cmp mixed/tokenizer.json one/tokenizer.json

# one huge id cannot take the machine: ids are bounded by the entries, in bounded memory
mkdir huge
$PYTHON - huge one/vocab.json <<'PY'
import json, sys
v = json.load(open(sys.argv[2]))
v["<|endoftext|>"] = 2147483647
json.dump(v, open(sys.argv[1] + "/vocab.json", "w"))
open(sys.argv[1] + "/merges.txt", "w").write("#version: 0.2\n")
PY
# within 1 GB of address space, where the build allows it (ASan's shadow memory does not)
lim="ulimit -v 1000000;"
printf x | sh -c "$lim cp-tokenize --pieces" >/dev/null 2>&1 || lim=
exit_is 1 "a vocab.json id of 2^31-1 is refused in ${lim:+1 GB and }20 s" sh -c "$lim"' timeout 20 cp-tokenize -t huge --ids "$1"' sh "$first"
err_like "'huge/vocab.json': token '<\|endoftext\|>' has id 2147483647, past the 600 entries" "  ... naming the entry"
done_testing
