#!/bin/sh
# t0005: every libFuzzer target (tests/fuzz/fuzz-*.c), built with the normal compiler as
# $BUILD/tests/replay-fuzz-NAME (tests/fuzz/replay.c), takes its seed corpus tests/fuzz/seed-NAME
# and a set of inputs made here (real shards of each kind from cp-hash and the test generator,
# cut and flipped copies, JSON lines plain, gzip and zstd, malformed ones) without a crash, an
# abort or, in the ASan build, a sanitizer report. Short: each input is fed once.
. "$(dirname "$0")/lib.sh"

# ---- inputs any target may be fed
mkinputs() {
	mkdir -p made src
	i=0
	while [ $i -lt 30 ]; do
		printf 'def f%d(x):\n    return x * %d  # é %d\n' $i $i $i >src/m$i.py
		i=$((i + 1))
	done
	printf 'bad \377\376 bytes\n' >src/bad.py
	cp-hash -q -o made/docs.shard src
	cp-hash -q --no-content -o made/bare.shard src
	cp-hash -q --minhash none -o made/nominhash.shard src
	cp-hash -q -L 0 -o made/stored.shard src
	"$BUILD/tests/test-gpt2-data" tokens made/tokens.shard 300 20 1 50 >/dev/null
	size=$(wc -c <made/docs.shard)
	for cut in 0 8 63 64 100 $((size / 2)) $((size - 1)); do
		head -c $cut made/docs.shard >made/cut-$cut.shard
	done
	cp made/docs.shard made/flip.shard
	printf '\001' | dd of=made/flip.shard bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
	cat >made/lines.jsonl <<'JSON'
{"repo_name":"a/b","path":"x.py","content":"def f():\n    return 1\n","license":"mit","size":24}
{"repo_name":"a/c","path":"y.py","content":"broken
{"content":"x = \u00e9 \ud83d\ude00 \udc80\n","stars":[1,2,{"k":null}],"n":-1.5e3}

{"path":"w.py","text":"only text"}
{"content":123}
[1,2,3]
{"content":"a\u0000b","content":"twice"}
JSON
	gzip -c made/lines.jsonl >made/lines.jsonl.gz
	if command -v zstd >/dev/null; then zstd -q -c made/lines.jsonl >made/lines.jsonl.zst; fi
	head -c 30 made/lines.jsonl.gz >made/cut.jsonl.gz
	: >made/empty
}
setup "real shards, damaged copies and JSON lines to replay" mkinputs
n_made=$(ls made | wc -l | tr -d ' ')

for src in "$SRC_DIR"/tests/fuzz/fuzz-*.c; do
	name=$(basename "$src" .c)
	bin="$BUILD/tests/replay-$name"
	if ! need_file "$bin" 4; then
		continue
	fi
	seeds="$SRC_DIR/tests/fuzz/seed-${name#fuzz-}"
	if [ -d "$seeds" ]; then
		n=$(find "$seeds" -maxdepth 1 -type f ! -name '.*' | wc -l | tr -d ' ')
		ok "$name: its seed corpus replays (seed-${name#fuzz-}, $n inputs)" "$bin" -v "$seeds"
		is "$(cat "$TMP/.out")" "replayed $n inputs" "$name: ... every seed was fed"
	else
		skip "$name has no seed corpus (tests/fuzz/seed-${name#fuzz-})"
		skip "$name has no seed corpus"
	fi
	ok "$name: the $n_made made inputs replay" "$bin" -v made
	is "$(cat "$TMP/.out")" "replayed $n_made inputs" "$name: ... every one was fed"
done
ok "a replay names an unreadable input and fails" sh -c "! '$bin' nothere"
done_testing
