#!/bin/sh
# t1004: cp-hash --no-content writes the records without the documents' bytes: every other
# field is what the full records hold (size included), cp-dedup -n decides and reports the
# same from them, through a file or a pipe; and every stage that needs the bytes (cp-dedup
# writing a corpus, cp-bpe, cp-tokenize) refuses them, naming the file and the record, and
# writes nothing a later stage would take.
. "$(dirname "$0")/lib.sh"

# a tree with exact and near copies, config-like and keyword-less files
stdlib=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
mktree() {
	mkdir -p t/a t/b t/c
	cp "$stdlib"/json/*.py t/a/
	cp "$stdlib"/json/*.py t/b/				# exact copies
	for f in "$stdlib"/json/*.py; do			# near copies: one line more
		{ cat "$f"; echo "# a copy"; } >"t/c/$(basename "$f")"
	done
	cp "$stdlib"/email/*.py t/
	printf 'x = 1\n' >t/settings.py
	printf 'import os\n' >t/test_nothing.py
	printf '{"content": "def f():\\n    return 1\\n", "repo_name": "r"}\n' >docs.jsonl
	printf '{"content": "x = 1\\ny = 2\\n", "path": "p.py"}\n' >>docs.jsonl
}
setup "a tree with exact and near copies, and JSON lines" mktree

ok "cp-hash" cp-hash -q -j2 -o full.shard t docs.jsonl
ok "cp-hash --no-content" cp-hash -q -j2 --no-content -o bare.shard t docs.jsonl
records() { # SHARD: the records as sorted JSON, content and its flag left out
	cp-cat --minhash "$1" | "$PYTHON" -c '
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    print(d.pop("content") is None, json.dumps(d, sort_keys=True))'; }
both() { records full.shard >full.txt && records bare.shard >bare.txt && test -s full.txt; }
setup "the records of both, as JSON" both
is "$(wc -l <bare.txt)" "$(wc -l <full.txt)" "as many records ($(wc -l <full.txt))"
is "$(cut -d' ' -f1 bare.txt | sort -u)" "True" "... none with content (cp-cat: null)"
is "$(cut -d' ' -f1 full.txt | sort -u)" "False" "... where the full ones all have it"
cut -d' ' -f2- full.txt >full.rest
is "$(cut -d' ' -f2- bare.txt | cmp - full.rest && echo same)" "same" \
	"id, origin, metadata, hash, statistics, size and signature as in the full records"
full_bytes=$(stat -c %s full.shard)
bare_bytes=$(stat -c %s bare.shard)
like "$((bare_bytes * 4 < full_bytes))" "^1$" "the shard is a quarter of the size or less ($bare_bytes of $full_bytes bytes)"

# --- cp-dedup -n: the same decisions and report
keys="r['docs_in'], r['bytes_in'], r['docs_out'], r['bytes_out'], r['exact_duplicates'], r['near_duplicates'], sorted(r['removed'].items()), sorted(r['top_unique_share'].items())"
ok "cp-dedup -n on the full records" cp-dedup -n --drop-prob 1 --report full.json --pairs full.pairs full.shard
ok "... on the bare ones" cp-dedup -n --drop-prob 1 --report bare.json --pairs bare.pairs bare.shard
is "$(json_field bare.json "$keys")" "$(json_field full.json "$keys")" "... report the same counts and bytes"
like "$(json_field full.json "r['exact_duplicates'], r['near_duplicates']")" "^[1-9][0-9]* [1-9]" \
	"... (which found exact and near duplicates)"
is "$(cmp bare.pairs full.pairs && echo same)" "same" "... and the same near-duplicate pairs"
cp-hash -q --no-content t docs.jsonl | cp-dedup -n --drop-prob 1 --report pipe.json - 2>/dev/null
is "$?" "0" "through a pipe"
is "$(json_field pipe.json "$keys")" "$(json_field full.json "$keys")" "... the same report"

# --- what needs the bytes refuses them, and writes nothing
exit_is 1 "cp-dedup writing a corpus refuses bare records" cp-dedup -o out/ bare.shard
err_like "'bare.shard': record 0 carries no content \(cp-hash --no-content\)" \
	"... naming the file and the record"
is "$(ls out 2>/dev/null)" "" "... and writes no shard"
cp-hash -q --no-content t | cp-dedup -o - - >piped.shard 2>.err
is "$?" "1" "... from a pipe too"
like "$(cat .err)" "record 0 carries no content" "... with the same message"
exit_is 1 "cp-cat reads nothing cp-dedup left there" cp-cat piped.shard
exit_is 1 "cp-bpe refuses bare records" cp-bpe --vocab-size 300 -o tok/ bare.shard
err_like "'bare.shard': record 0 carries no content" "... naming the file and the record"
is "$(ls tok 2>/dev/null)" "" "... and writes no tokenizer"
ok "a tokenizer to try cp-tokenize with" cp-bpe --vocab-size 300 -o tok/ full.shard
exit_is 1 "cp-tokenize refuses bare records" cp-tokenize -t tok -o ids.shard bare.shard
err_like "'bare.shard': record 0 carries no content" "... naming the file and the record"
is "$(ls ids.shard 2>/dev/null)" "" "... and writes no token shard"

done_testing
