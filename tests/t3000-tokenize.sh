#!/bin/sh
# t3000: cp-tokenize with GPT-2's published files: pieces equal the GPT-2 regex (Python's regex
# module and HF's ByteLevel), ids equal tiktoken's and HF tokenizers' on part of the default
# corpus and on a Unicode-heavy text; byte-exact round trips; the ratio filter and its report;
# the same output for any -j; broken tokenizer files refused.
. "$(dirname "$0")/lib.sh"

GPT2=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
REF="$PYTHON $TESTS_DIR/ref/tok_ref.py"
STDLIB=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")

# ~1.5 MB of the default corpus, every 9th file, plus a Unicode-heavy text
$REF validlist "$STDLIB" 1000000 13 >list.txt
$REF unitext 1 150000 >"$TMP/uni.txt"
printf "%s\n" "$TMP/uni.txt" >>list.txt
like "$(wc -l <list.txt)" '^ *[0-9]{2,}' "a corpus of files to compare on"

# --- pre-tokenizer
cp-tokenize --pieces $(cat list.txt) >pieces.txt
if have_python_module regex && have_python_module tokenizers; then
	$REF pretokcheck list.txt pieces.txt >check.txt 2>check.err
	read -r bad_re bad_hf <check.txt
	is "$bad_hf" 0 "pieces equal HF's ByteLevel pre-tokenizer on every file"
	# the regex module may know a newer Unicode than the references: only the corpus counts
	head -n -1 list.txt >corpus.txt
	head -n -1 pieces.txt >cpieces.txt
	$REF pretokcheck corpus.txt cpieces.txt >check2.txt 2>/dev/null
	read -r bad_re2 bad_hf2 <check2.txt
	is "$bad_re2" 0 "pieces equal Python regex's findall on the default corpus"
else
	skip "Python modules regex and tokenizers missing"
	skip "Python module regex missing"
fi
if have_python_module tokenizers && [ -x "$BUILD/tests/test-pretok" ]; then
	"$BUILD/tests/test-pretok" --dump-table >classes.txt
	PYTHONPATH="$TESTS_DIR/ref" $REF classcheck classes.txt 23 >cls.txt
	like "$(cat cls.txt)" '^0 ' "letter/number/space classes equal HF's on every 23rd code point"
else
	skip "Python module tokenizers missing"
fi

# --- ids against tiktoken and HF tokenizers
ok "cp-tokenize --ids" cp-tokenize -t "$GPT2" -j 2 --ids $(cat list.txt)
cp "$TMP/.out" ids.txt
if have_python_module tiktoken; then
	$REF tiktoken "$GPT2/encoder.json" "$GPT2/vocab.bpe" list.txt >tt.txt
	ok "ids equal tiktoken's, token for token ($(wc -w <ids.txt) tokens)" cmp ids.txt tt.txt
else
	skip "Python module tiktoken missing"
fi
if have_python_module tokenizers; then
	$REF hf "$GPT2" list.txt >hf.txt
	ok "ids equal HF tokenizers' (GPT-2 files), token for token" cmp ids.txt hf.txt
else
	skip "Python module tokenizers missing"
fi
cp-tokenize -t "$GPT2" -j 1 --ids $(cat list.txt) >ids1.txt
ok "--ids gives the same with -j 1" cmp ids.txt ids1.txt
printf 'Hello world' | cp-tokenize -t "$GPT2" --ids >hw.txt
is "$(cat hw.txt)" "15496 995" "'Hello world' is 15496 995 (stdin)"
printf '<|endoftext|>' | cp-tokenize -t "$GPT2" --ids --special >sp.txt
is "$(cat sp.txt)" "50256" "--special encodes the special token written in the text"
printf '<|endoftext|>' | cp-tokenize -t "$GPT2" --ids >sp.txt
is "$(cat sp.txt)" "27 91 437 1659 5239 91 29" "by default it is ordinary text"

# --- decoding
cat $(cat list.txt) >all.txt
cp-tokenize -t "$GPT2" --decode-ids ids.txt >back.txt
ok "--decode-ids gives the files back, byte for byte" cmp back.txt all.txt
printf '1 2 99999\n' >badid.txt
exit_is 1 "an id past the vocabulary is an error" cp-tokenize -t "$GPT2" --decode-ids badid.txt
err_like "badid.txt':1: 99999 is not a token id" "the error names file, line and id"
printf '1 x 2\n' >badnum.txt
exit_is 1 "a malformed id line is an error" cp-tokenize -t "$GPT2" --decode-ids badnum.txt

# random bytes, invalid UTF-8 included, through token shards and back
$PYTHON -c "import random,sys; r=random.Random(5); sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range(200000)))" >rand.bin
ok "encode random bytes into a token shard" cp-tokenize -t "$GPT2" --min-ratio 0 --text -o rand.shard rand.bin
ok "decode the shard" cp-tokenize -t "$GPT2" --decode -o rand.back rand.shard
ok "decode(encode(random bytes)) is byte-exact" cmp rand.bin rand.back

# --- document shards, -j, ratio filter, report
mkdir src
i=0
for f in $(head -n 20 corpus.txt); do i=$((i + 1)); cp "$f" src/$i.py; done
# valid UTF-8 but under 1.5 characters a token (mostly rare scripts), and raw bytes
$PYTHON -c "import sys; sys.stdout.write(open(sys.argv[1], encoding='utf-8').read()[:10000])" "$TMP/uni.txt" >src/zz-uni.py
cp rand.bin src/zz-random.py
if command -v cp-hash >/dev/null; then
	ok "cp-hash makes document shards" cp-hash -q -o docs.shard src
	ok "encode document shards" cp-tokenize -t "$GPT2" -j 2 -o tok2.shard --report rep.json docs.shard
	ok "again with -j 1" cp-tokenize -t "$GPT2" -j 1 -o tok1.shard docs.shard
	ok "token shards are identical for any -j" cmp tok1.shard tok2.shard
	like "$(cat rep.json)" '"docs_in":21,"docs_out":20,"removed":\{"char_token_ratio":1\}' \
		"the report counts the Unicode soup as below 1.5 characters a token"
	cp-tokenize -t "$GPT2" --min-ratio 0 -o tok0.shard docs.shard
	cp-tokenize -t "$GPT2" --decode --jsonl tok0.shard >dec.jsonl
	cp-cat docs.shard >docs.jsonl
	$PYTHON - docs.jsonl dec.jsonl >cmp.txt <<'PY'
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
dec = [json.loads(l) for l in open(sys.argv[2])]
print(len(docs) == len(dec) and all(a["id"] == b["id"] and a["content"] == b["text"] for a, b in zip(docs, dec)))
PY
	is "$(cat cmp.txt)" "True" "decoded documents equal the shard's contents, ids included"
	if command -v cp-cat >/dev/null; then
		n=$(cp-cat -n 1 tok0.shard | sed 's/.*"n_tokens":\([0-9]*\).*/\1/')
		first=$(cp-cat docs.shard -n 1 | $PYTHON -c "import json,sys; print(json.loads(sys.stdin.readline())['origin'])")
		want=$(($(cp-tokenize -t "$GPT2" --ids "$first" | wc -w) + 1))
		is "$n" "$want" "a record holds the document's ids and <|endoftext|>"
	fi
	mkdir -p outdir
	ok "directory output" cp-tokenize -t "$GPT2" -o outdir/ docs.shard
	ok "gives one token shard per input shard" test -f outdir/docs.shard
else
	for i in 1 2 3 4 5 6 7 8 9 10; do skip "cp-hash not built"; done
fi
cp-tokenize -t "$GPT2" --text -o t.shard --report rep2.json src
like "$(cat rep2.json)" '"docs_in":22,"docs_out":20,"removed":\{"char_token_ratio":2\}' \
	"plain files work as input too (random bytes kept as a document, then filtered)"
exit_is 2 "--min-ratio needs a number" cp-tokenize -t "$GPT2" --min-ratio abc src
exit_is 2 "no tokenizer is a usage error" cp-tokenize --ids src

# --- outputs appear whole or not at all, no temporaries left
mkdir atom
ok "--decode -o and --report write their files" cp-tokenize -t "$GPT2" --decode -o atom/back rand.shard
ok "  the report too" cp-tokenize -t "$GPT2" --text -o atom/t.shard --report atom/rep.json src
ok "  the decoded bytes are right" cmp rand.bin atom/back
is "$(ls -A atom | tr '\n' ' ')" "back rep.json t.shard " "  and no temporaries are left"
printf 'not a shard' >atom/bad.shard
exit_is 1 "--decode -o with a broken shard fails" cp-tokenize -t "$GPT2" --decode -o atom/back2 rand.shard atom/bad.shard
is "$(ls -A atom | tr '\n' ' ')" "back bad.shard rep.json t.shard " "  leaving no output and no temporary"
exit_is 1 "a report that cannot be written fails" cp-tokenize -t "$GPT2" --text -o atom/t2.shard --report nodir/rep.json src
err_like "nodir" "  naming it"
is "$(ls -A atom | tr '\n' ' ')" "back bad.shard rep.json t.shard t2.shard " "  the shard stays, no temporary"

# --- broken tokenizers
mkdir trunc
head -c 100000 "$GPT2/encoder.json" >trunc/encoder.json
cp "$GPT2/vocab.bpe" trunc/
exit_is 1 "a truncated encoder.json is refused" cp-tokenize -t trunc --ids /dev/null
err_like "encoder.json':1:[0-9]+: " "with the file and place"
mkdir incons
cp "$GPT2/encoder.json" incons/
{ cat "$GPT2/vocab.bpe"; printf 'Ġzzqx qqzz\n'; } >incons/vocab.bpe
exit_is 1 "a merge of tokens not in the vocabulary is refused" cp-tokenize -t incons --ids /dev/null
err_like "vocab.bpe':50002: merge" "with the file and line"
mkdir cut
cp "$GPT2/encoder.json" cut/
head -c 200000 "$GPT2/vocab.bpe" >cut/vocab.bpe
exit_is 1 "a merges file cut mid-line is refused" cp-tokenize -t cut --ids /dev/null
exit_is 1 "a missing tokenizer is an error" cp-tokenize -t nowhere --ids /dev/null
done_testing
