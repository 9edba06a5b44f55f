#!/bin/sh
# t3002: a large file's cuts at every scale. CP_TOKENIZE_PART_BYTES makes the parts a few bytes
# to a few kilobytes, so files of tens of kilobytes are cut hundreds to tens of thousands of
# times, where the pre-tokenizer is most easily fooled: long runs of newlines and of spaces,
# CRLF, tabs and spaces before newlines, Unicode white space after a space, multibyte
# characters right after a cut, a file without a newline, files of one byte more than a part.
# For every part size and -j 1, 2 and 4: --ids equal tiktoken's one pass over each file (and
# with --special, tiktoken's with the special token allowed), and the token shard (--text) is
# the same bytes as the file encoded without a cut, so the parts are encoded, formatted and
# written in order whatever the threads.
. "$(dirname "$0")/lib.sh"

GPT2=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
REF="$PYTHON $TESTS_DIR/ref/tok_ref.py"

$PYTHON - <<'PY'
import random
r = random.Random(3002)
bits = ["def", " foo", "x", "_y", "(", "):", "\n", "\n\n\n", "\n" * 40, " " * 33, "\t", " \n",
        "  \n", "\t\n", "\r\n", "  \r\n", "\r", "'s", "'ll", " '", "123", " 4", " caf\u00e9",
        " \u00e9t\u00e9", "\u3000", " \u3000x", "\u00a0", " \u0085", " \u4e2d\u6587", " \U0001f600",
        "//", ".", " ", "  ", "<|endoftext|>", " <|endoftext|>\n", "\n<|endoftext|>"]
def text(n, nl=True):
    out, size = [], 0
    while size < n:
        b = r.choice(bits)
        if not nl and ("\n" in b or "\r" in b):
            continue
        out.append(b)
        size += len(b.encode())
    return "".join(out)
files = {
    "mixed": text(60000),
    "nonl": text(30000, nl=False),
    "blank": "".join(r.choice(["x", "y = 1", "  pass"]) + " " * r.randrange(4) +
                     "\n" * r.randrange(1, 30) for _ in range(3000)),
    "crlf": text(20000).replace("\n", "\r\n"),
    "spaces": "a" + " " * 20000 + "b" + "\t " * 5000 + "\n",
    # a multibyte character right after every space, where the cuts are
    "multi": " ".join(r.choice(["\u00e9", "\u4e2d", "\U0001f600", "\u0391\u03b2"]) * 3
                      for _ in range(8000)),
}
for name, t in files.items():
    open(name + ".txt", "w", encoding="utf-8", newline="").write(t)
# one byte over a part of 64 and of 4099 bytes, and a part's size exactly
for n in (65, 4100, 4099):
    open("over%d.txt" % n, "w", encoding="utf-8", newline="").write(("ab " * n)[:n - 1] + "\n")
PY
ls mixed.txt nonl.txt blank.txt crlf.txt spaces.txt multi.txt over*.txt |
	sed "s|^|$PWD/|" >list.txt
is "$(tr -d -c '\n\r' <nonl.txt | wc -c)" 0 "one file has no newline at all"
is "$(wc -c <over65.txt) $(wc -c <over4100.txt)" "65 4100" "files one byte over a part"

tiktoken_ids() { # OUT [special]
	PYTHONPATH="$TESTS_DIR/ref" $PYTHON - "$GPT2" list.txt "${2:-}" >"$1" <<'PY'
import sys, tok_ref
enc = tok_ref.tiktoken_encoding(sys.argv[1] + "/encoder.json", sys.argv[1] + "/vocab.bpe")
for t in tok_ref.texts(sys.argv[2]):
    tok_ref.out_ids(enc.encode(t, allowed_special="all") if sys.argv[3] else enc.encode_ordinary(t))
PY
}
have_tt=0
if need_python_module tiktoken 1; then
	tiktoken_ids tt.txt
	tiktoken_ids tts.txt special
	have_tt=1
fi

# the reference for the shards: each file encoded whole (parts of 256 KiB: no cut)
cp-tokenize -t "$GPT2" -j 1 --text --min-ratio 0 -o whole.shard $(cat list.txt)
cp-tokenize -t "$GPT2" -j 1 --ids $(cat list.txt) >whole.txt
if [ $have_tt = 1 ]; then
	ok "without a cut, --ids equal tiktoken's" cmp whole.txt tt.txt
else
	cp whole.txt tt.txt	# then one pass of ours is the reference
fi

for part in 1 7 64 4099; do
	ids_ok=1 sp_ok=1 shard_ok=1
	for j in 1 2 4; do
		CP_TOKENIZE_PART_BYTES=$part cp-tokenize -t "$GPT2" -j $j --ids $(cat list.txt) \
			>ids.txt || ids_ok=0
		cmp -s ids.txt tt.txt || { ids_ok=0; echo "# parts of $part, -j $j: --ids differ"; }
		if [ $have_tt = 1 ]; then
			CP_TOKENIZE_PART_BYTES=$part cp-tokenize -t "$GPT2" -j $j --special --ids \
				$(cat list.txt) >sp.txt || sp_ok=0
			cmp -s sp.txt tts.txt || { sp_ok=0; echo "# parts of $part, -j $j: --special differ"; }
		fi
		CP_TOKENIZE_PART_BYTES=$part cp-tokenize -t "$GPT2" -j $j --text --min-ratio 0 \
			-o cut.shard $(cat list.txt) || shard_ok=0
		cmp -s cut.shard whole.shard || { shard_ok=0; echo "# parts of $part, -j $j: shard differs"; }
	done
	is $ids_ok 1 "parts of $part bytes, -j 1, 2 and 4: --ids equal one pass over each file"
	if [ $have_tt = 1 ]; then
		is $sp_ok 1 "  and with --special, tiktoken's with the special token allowed"
	else
		skip "Python module tiktoken missing"
	fi
	is $shard_ok 1 "  and the token shard is the one of the files encoded without a cut"
done

# a part of 1 byte: a cut at every safe place, thousands, and still one line for the file
is "$(CP_TOKENIZE_PART_BYTES=1 cp-tokenize -t "$GPT2" -j 2 --ids "$PWD/multi.txt" | wc -l)" 1 \
	"a file cut into thousands of parts is one line of ids"
exit_is 2 "CP_TOKENIZE_PART_BYTES must be a number" \
	env CP_TOKENIZE_PART_BYTES=x cp-tokenize -t "$GPT2" --ids "$PWD/over65.txt"
err_like "CP_TOKENIZE_PART_BYTES" "  and the error names it"
cat $(cat list.txt) >all.txt
CP_TOKENIZE_PART_BYTES=7 cp-tokenize -t "$GPT2" -j 4 --text --min-ratio 0 -o cut.shard \
	$(cat list.txt)
cp-tokenize -t "$GPT2" --decode -o back.txt cut.shard
ok "the shard of the cut files decodes back byte for byte" cmp back.txt all.txt
done_testing
