#!/bin/sh
# t0001: cp-cat shows what is inside shards, through files and pipes, and refuses damaged ones
# with the file and offset named; the metas it prints are valid JSON.
. "$(dirname "$0")/lib.sh"

mksrc() {
	mkdir src
	i=0
	while [ $i -lt 300 ]; do
		printf 'def f%d(x):\n    return x + %d  # file %d\n' $i $i $i >src/m$i.py
		i=$((i + 1))
	done
	printf 'bad \377\376 bytes = 1\n' >src/zz_invalid.py
}
setup '300 small Python files and one of invalid UTF-8' mksrc
ok 'cp-hash makes a shard' cp-hash -q -o docs.shard src

ok 'cp-cat prints it' cp-cat docs.shard
cp "$TMP/.out" all.jsonl
is "$(wc -l <all.jsonl | tr -d ' ')" 301 'one JSON line per document'
hdr=$(cp-cat --header docs.shard)
like "$hdr" '"kind":"documents","version":1,"records":301' 'header names kind, version and counts'
is "$(cp-cat -r 123 -n 1 docs.shard)" "$(sed -n 124p all.jsonl)" '-r seeks to a record through the index'
is "$(cat docs.shard | cp-cat - | cksum)" "$(cksum <all.jsonl)" 'the same records through a pipe'

# invalid UTF-8 comes back byte for byte through JSON (surrogateescape)
if need_cmd "$PYTHON" 1; then
	got=$("$PYTHON" -c '
import json, sys
for line in open("all.jsonl"):
    d = json.loads(line)
    if d["origin"].endswith("zz_invalid.py"):
        sys.stdout.buffer.write(d["content"].encode("utf-8", "surrogateescape"))
' | od -An -tx1 | tr -d ' \n')
	is "$got" "$(od -An -tx1 <src/zz_invalid.py | tr -d ' \n')" 'invalid UTF-8 content round-trips through the JSON'
fi

size=$(wc -c <docs.shard)
for cut in 10 64 100 $((size / 2)) $((size - 40)) $((size - 1)); do
	head -c $cut docs.shard >cut.shard
	exit_is 1 "a shard cut at byte $cut is refused (file)" cp-cat --verify cut.shard
	err_like "'cut.shard'.*(truncated|offset)" "  ... naming the file and place"
	head -c $cut docs.shard | cp-cat --verify - 2>"$TMP/.err" >/dev/null
	is $? 1 "a shard cut at byte $cut is refused (pipe)"
done

cp docs.shard flip.shard
printf '\001' | dd of=flip.shard bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
exit_is 1 'a flipped byte is refused' cp-cat --verify flip.shard
err_like "flip.shard': .*checksum.*offset [0-9]+" '  ... as a checksum mismatch at an offset'
exit_is 1 'a file that is not a shard is refused' cp-cat src/m1.py
err_like 'not a cp shard' '  ... as not a shard'
exit_is 2 'a bad number is a usage error' cp-cat -n 12x docs.shard
exit_is 1 'a missing file is an error' cp-cat nonexistent.shard

# issue 17: cp-cat checks the metas it prints (crafted records: tests/unit/test-cat.c); the
# metas cp-hash carries from JSON lines, odd but valid ones included, come out as valid JSON
cat >meta.jsonl <<'EOF'
{"content": "x = 1\n", "repo": "a/b", "stars": 123456789012345678901234567890, "odd": "\udc80 \u00e9", "deep": {"l": [1, {"m": null}]}}
{"content": "y = 2\n"}
EOF
ok "cp-hash carries the metas" cp-hash -q -o meta.shard meta.jsonl
ok "cp-cat prints them" cp-cat meta.shard
cp "$TMP/.out" meta.out
if need_cmd "$PYTHON" 1; then
	got=$("$PYTHON" -c '
import json
src = [json.loads(l) for l in open("meta.jsonl")]
out = [json.loads(l) for l in open("meta.out")]
want = [{k: v for k, v in d.items() if k != "content"} for d in src]
print(len(out) == 2 and out[0]["meta"] == want[0] and out[1]["meta"] in ({}, None))')
	is "$got" True "each line is JSON whose meta equals the input's other members"
fi
done_testing
