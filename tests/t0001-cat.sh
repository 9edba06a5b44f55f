#!/bin/sh
# t0001: cp-cat shows what is inside shards, through files and pipes, and refuses damaged ones
# with the file and offset named.
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
done_testing
