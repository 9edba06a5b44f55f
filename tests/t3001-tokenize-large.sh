#!/bin/sh
# t3001: cp-tokenize on a few large files, which it cuts into parts at safe places and encodes
# in parallel (common/tok/split.c): with -j 1, 2 and 3, --ids equal tiktoken's one pass over
# each whole file (and HF tokenizers' on two), with --special too, and token shards (--text) are the
# same for any -j and decode back byte for byte. The files are made of the awkward cases: CRLF
# lines, runs of blank lines, trailing spaces and tabs before newlines, no newline at all,
# Unicode white space and contractions.
. "$(dirname "$0")/lib.sh"

GPT2=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
REF="$PYTHON $TESTS_DIR/ref/tok_ref.py"
STDLIB=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")

# 700 kB of code, three files made from it and a Unicode-heavy one, each several parts long
# (parts are 256 KiB)
$REF validlist "$STDLIB" 700000 7 >corpus.txt
cat $(cat corpus.txt) >code.txt
$PYTHON - <<'PY'
import random
r = random.Random(16)
code = open("code.txt", encoding="utf-8").read()
lines = code.split("\n")
open("crlf.txt", "w", encoding="utf-8", newline="").write(code.replace("\n", "\r\n"))
out = []
for l in lines:
    out.append(l + r.choice(["", " ", "  ", "\t", " \t ", "   "]) + "\n" * r.choice([1, 1, 2, 3, 5]))
open("blank.txt", "w", encoding="utf-8", newline="").write("".join(out))
open("nonl.txt", "w", encoding="utf-8", newline="").write(
    "".join(l + r.choice([" ", "  ", "\t", " \t"]) for l in lines))
PY
$REF unitext 7 250000 >uni.txt
for f in code crlf blank nonl uni; do echo "$PWD/$f.txt"; done >list.txt
like "$(wc -c <code.txt) $(wc -c <uni.txt)" '^ *([6-9][0-9]{5}|[0-9]{7,}) +([6-9][0-9]{5}|[0-9]{7,})$' \
	"large inputs, 600 kB or more each"
is "$(tr -d -c '\n' <nonl.txt | wc -c)" 0 "one of them without a newline"

if need_python_module tiktoken 3; then
	$REF tiktoken "$GPT2/encoder.json" "$GPT2/vocab.bpe" list.txt >tt.txt
	for j in 1 2 3; do
		cp-tokenize -t "$GPT2" -j $j --ids $(cat list.txt) >ids$j.txt
		ok "-j $j: --ids equal tiktoken's one pass over each file ($(wc -w <ids$j.txt) ids)" cmp ids$j.txt tt.txt
	done
fi
if need_python_module tokenizers 1; then
	grep -e crlf -e uni list.txt >list2.txt
	$REF hf "$GPT2" list2.txt >hf.txt
	cp-tokenize -t "$GPT2" -j 3 --ids $(cat list2.txt) >ids.txt
	ok "-j 3: --ids equal HF tokenizers' (the CRLF and Unicode files)" cmp ids.txt hf.txt
fi
if need_python_module tiktoken 3; then
	# special tokens written in the text: tiktoken's encode with them allowed
	PYTHONPATH="$TESTS_DIR/ref" $PYTHON - "$GPT2" list.txt >tts.txt <<'PY'
import sys, tok_ref
enc = tok_ref.tiktoken_encoding(sys.argv[1] + "/encoder.json", sys.argv[1] + "/vocab.bpe")
for t in tok_ref.texts(sys.argv[2]):
    tok_ref.out_ids(enc.encode(t, allowed_special="all"))
PY
	like "$(grep -c -w 50256 tts.txt)" '^[1-9]' "the inputs write <|endoftext|>"
	for j in 1 3; do
		cp-tokenize -t "$GPT2" -j $j --special --ids $(cat list.txt) >sp$j.txt
		ok "-j $j --special: ids equal tiktoken's with the special token allowed" cmp sp$j.txt tts.txt
	done
fi

# token shards of the large files, one document each
for j in 1 2 3; do
	cp-tokenize -t "$GPT2" -j $j --text --min-ratio 0 -o tok$j.shard $(cat list.txt)
done
ok "token shards are the same with -j 1 and -j 2" cmp tok1.shard tok2.shard
ok "  and with -j 3" cmp tok1.shard tok3.shard
cat $(cat list.txt) >all.txt
cp-tokenize -t "$GPT2" --decode -o back.txt tok3.shard
ok "they decode back to the files, byte for byte" cmp back.txt all.txt

# a file of 16 MiB or more is a batch of its own, encoded where it was read (not copied into
# the batch): between two small files, --ids equal tiktoken's, and its shard decodes back
for i in $(seq 25); do cat blank.txt; done >huge.txt
printf '%s\n' "$PWD/uni.txt" "$PWD/huge.txt" "$PWD/crlf.txt" >list3.txt
like "$(wc -c <huge.txt)" '^ *(1[7-9]|[2-9][0-9])[0-9]{6}$' "a file over 16 MiB"
if need_python_module tiktoken 1; then
	$REF tiktoken "$GPT2/encoder.json" "$GPT2/vocab.bpe" list3.txt >tt3.txt
	cp-tokenize -t "$GPT2" -j 2 --ids $(cat list3.txt) >ids3.txt
	ok "-j 2: --ids of it and its neighbours equal tiktoken's ($(wc -w <ids3.txt) ids)" cmp ids3.txt tt3.txt
fi
cp-tokenize -t "$GPT2" -j 2 --text --min-ratio 0 -o huge.shard $(cat list3.txt)
cp-tokenize -t "$GPT2" --decode -o huge-back.txt huge.shard
cat $(cat list3.txt) >huge-all.txt
ok "its token shard decodes back byte for byte" cmp huge-back.txt huge-all.txt
done_testing
