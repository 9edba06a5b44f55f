#!/bin/sh
# t1002: cp-hash's command line: walk order, JSON lines (plain, gzip, zstd) with metadata,
# malformed lines, skips (binary, size), symlink loops, output kinds, determinism over -j,
# exit codes.
. "$(dirname "$0")/lib.sh"

origins() { cp-cat "$@" | "$PYTHON" -c '
import json, sys
for l in sys.stdin:
    print(json.loads(l)["origin"])'; }
field() { # SHARD KEY: the KEY of every record, one a line
	cp-cat "$1" | "$PYTHON" -c '
import json, sys
for l in sys.stdin:
    v = json.loads(l)[sys.argv[1]]
    print(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)' "$2"; }

# --- directory walk order: byte order of the full paths ("a.py" < "a/b.py" < "a0.py")
mktree() {
	mkdir -p d/a d/z d/sub
	for f in d/a.py d/a/b.py d/a-x.py d/a0.py d/B.py d/z/y.py d/a/c.py; do
		printf 'x = "%s"\n' "$f" >"$f"
	done
	echo 'not python' >d/sub/skip.txt
}
setup "a tree of files" mktree
ok "hash a tree" cp-hash -o tree.shard d
is "$(origins tree.shard | tr '\n' ' ')" "$(find d -name '*.py' | LC_ALL=C sort | tr '\n' ' ')" \
	"files in byte order of their full paths"
is "$(origins tree.shard | sed -n 1p)" "d/B.py" "upper case sorts first"
ok "a trailing slash on the directory" cp-hash -o tree2.shard d/
is "$(origins tree2.shard | sed -n 1p)" "d/B.py" "... gives the same paths"
ok "-p selects other files" cp-hash -p '*.txt' -o txt.shard d
is "$(origins txt.shard)" "d/sub/skip.txt" "... and only them"

# --- symlink loops are safe; every file comes once
setup "two symlinks that loop" sh -c 'ln -s .. d/z/up && ln -s ../a d/z/a-link'
cp-hash -o loop.shard d 2>err.txt
is "$?" "0" "a tree with a symlink loop hashes"
is "$(origins loop.shard | sort | uniq -d)" "" "no file twice"
like "$(cat err.txt)" "already visited" "the loop is reported"
like "$(tail -1 err.txt)" " 2 symlink loops" "and counted in the summary"
rm d/z/up d/z/a-link

# --- a tree deeper than the descriptors the process may open: the walk keeps a directory
# open while it visits it, but only so deep
mkdeep() {
	deep=deep; for i in $(seq 120); do deep=$deep/d$i; done
	mkdir -p "$deep" && echo 'x = 1' >"$deep/a.py" && echo 'y = 2' >deep/d1/b.py
}
setup "a tree 120 directories deep" mkdeep
(ulimit -n 40 && cp-hash -q -j2 -o deep.shard deep) 2>err.txt
is "$?:$(cat err.txt)" "0:" "a tree 120 directories deep, 40 descriptors: no error"
is "$(origins deep.shard | wc -l)" "2" "... and both files, the deepest too"

# --- links the walk follows, and entries it passes over
mklinks() {
	mkdir -p outside/pkg
	printf 'x = "outside"\n' >outside/o.py
	printf 'x = "pkg"\n' >outside/pkg/p.py
	ln -s ../../outside/o.py d/z/link.py
	ln -s ../../outside/pkg d/z/pkg-link
	ln -s nowhere.py d/z/dangling.py
	mkfifo d/z/fifo.py
}
setup "links to a file and a directory outside, a dangling link, a FIFO" mklinks
cp-hash -o links.shard d 2>err.txt
is "$?" "1" "a tree with links, a dangling link and a FIFO: exit 1 (an entry was unreadable)"
is "$(origins links.shard | grep -c 'd/z/link.py\|d/z/pkg-link/p.py')" "2" \
	"a link to a file and one to a directory are followed"
like "$(cat err.txt)" "cannot stat 'd/z/dangling.py'" "the dangling link is reported by its path"
is "$(origins links.shard | grep -c 'fifo')" "0" "the FIFO is passed over (and does not block)"
like "$(tail -1 err.txt)" " 1 unreadable" "... and the summary counts the dangling link alone"
rm d/z/link.py d/z/pkg-link d/z/dangling.py d/z/fifo.py

# --- skips: binary, too large, unreadable
setup "a binary and a big file" sh -c "printf 'a\\0b' >d/bin.py && head -c 2000 /dev/zero | tr '\\0' x >d/big.py"
cp-hash --max-size 1000 -o skip.shard d 2>err.txt
is "$?" "0" "skips are not errors"
like "$(cat err.txt)" "^cp-hash: 7 docs, [0-9]+ bytes; skipped: 1 binary, 1 too large, 0 malformed" \
	"the summary counts them"
ok "--max-size 0 takes the big file" cp-hash -q --max-size 0 -o skip2.shard d
is "$(origins skip2.shard | grep -c big.py)" "1" "... it is there"
rm d/bin.py d/big.py
if need 3 "unreadable files (running as root)" test "$(id -u)" != 0; then
	printf 'x = 1\n' >d/locked.py
	chmod 000 d/locked.py
	exit_is 1 "an unreadable file: exit 1" cp-hash -o lock.shard d
	err_like "cannot open 'd/locked.py'" "... named"
	is "$(origins lock.shard | wc -l | tr -d ' ')" "7" "... the others are written"
	rm -f d/locked.py
fi

# --- JSON lines: plain, gzip, zstd; metadata; malformed lines reported as FILE:LINE
cat >data.jsonl <<'EOF'
{"repo_name":"a/b","path":"x.py","content":"def f():\n    return 1\n","license":"mit","size":24}
{"repo_name":"a/c","path":"y.py","content":"broken
{"repo_name":"a/d","path":"z.py","content":"x = \u00e9\n","license":"apache-2.0","stars":[1,2]}

{"repo_name":"a/e","path":"w.py","text":"only text"}
EOF
setup "data.jsonl.gz" sh -c 'gzip -c data.jsonl >data.jsonl.gz'
cp-hash -o plain.shard data.jsonl 2>err.txt
is "$?" "0" "malformed lines are skipped, not fatal"
like "$(cat err.txt)" "data.jsonl:2: malformed JSON line: unterminated string" "reported as FILE:LINE"
like "$(cat err.txt)" "data.jsonl:5: malformed JSON line: no string member" "a line without the field too"
like "$(tail -1 err.txt)" " 2 malformed" "and counted"
is "$(origins plain.shard | tr '\n' ' ')" "data.jsonl:1 data.jsonl:3 " "origins are FILE:LINE"
is "$(field plain.shard meta | sed -n 1p)" '{"repo_name": "a/b", "path": "x.py", "license": "mit", "size": 24}' \
	"the other fields are the metadata"
is "$(field plain.shard content | grep -c '^x = é$')" "1" "content unescaped"
ok "gzip input" cp-hash -q -o gz.shard data.jsonl.gz
is "$(field gz.shard hash)" "$(field plain.shard hash)" "... gives the same documents"
if need_cmd zstd 5; then
	ok "make data.jsonl.zst" sh -c 'zstd -q -c data.jsonl >data.jsonl.zst'
	ok "zstd input" cp-hash -q -o zst.shard data.jsonl.zst
	is "$(field zst.shard hash)" "$(field plain.shard hash)" "... gives the same documents"
	head -c 60 data.jsonl.zst >cut.jsonl.zst
	exit_is 1 "truncated zstd: exit 1" cp-hash -q -o cut.shard cut.jsonl.zst
	err_like "cut.jsonl.zst': truncated zstd" "... with the file named"
fi
ok "--field names the text field" cp-hash -q --field text -o text.shard data.jsonl
is "$(origins text.shard)" "data.jsonl:5" "... and takes it"
exit_is 1 "--strict: a malformed line is fatal" cp-hash --strict -o strict.shard data.jsonl
err_like "data.jsonl:2: malformed" "... and named"
[ ! -e strict.shard ]
_tap $? "... and no output is left"

# a 10 MB line
setup "a 10 MB JSON line" sh -c "'$PYTHON' -c 'import json; print(json.dumps({\"content\": \"y\" * 10000000, \"path\": \"big\"}))' >big.jsonl"
ok "a 10 MB JSON line" cp-hash -q --max-size 0 -o big.shard big.jsonl
is "$(field big.shard line_max)" "10000000" "... is one 10 MB document"
exit_is 0 "over --max-line it is skipped" cp-hash --max-line 1M -o big2.shard big.jsonl
err_like "big.jsonl:1: malformed JSON line: longer than 1000000 bytes" "... as a malformed line"

# --- other inputs: plain files, '-' lists, a missing path
printf 'print(1)\n' >README.md
ok "a plain file is one document" cp-hash -q -o one.shard README.md
is "$(origins one.shard)" "README.md" "... named by its path"
printf 'x = 1\n' | cp-hash -q -o pipe.shard /dev/stdin
is "$(field pipe.shard n_chars)" "6" "a pipe is one document"
printf 'README.md\nd\n\ndata.jsonl\n' | cp-hash -q -o list.shard - 2>/dev/null
is "$(origins list.shard | wc -l | tr -d ' ')" "10" "'-' reads a list of paths"
exit_is 1 "a missing path: exit 1" cp-hash -q -o miss.shard nothere d
err_like "cannot stat 'nothere'" "... named"
is "$(origins miss.shard | wc -l | tr -d ' ')" "7" "... the rest is written"

# --- outputs: stdout pipe, directories of shards, determinism across -j
is "$(cp-hash -q d | cp-cat - | wc -l | tr -d ' ')" "7" "standard output by default in a pipe"
ok "a directory of shards" cp-hash -q --shard-docs 3 -o out/ d data.jsonl
is "$(ls out | tr '\n' ' ')" "docs-00000.shard docs-00001.shard docs-00002.shard " "split every 3 documents"
is "$(origins out | tr '\n' ' ')" "$(origins tree.shard plain.shard | tr '\n' ' ')" "... in input order"
ok "a smaller rerun" cp-hash -q --shard-docs 5 -o out d data.jsonl
is "$(ls out | tr '\n' ' ')" "docs-00000.shard docs-00001.shard " "stale shards of the earlier run removed"
mkdir empty
ok "no input documents" cp-hash -q -o eout/ empty
is "$(cp-cat --header eout/docs-00000.shard | grep -c '"records":0')" "1" "... one empty shard"

setup "C sources into the tree" cp -r "$SRC_DIR/tests/unit" d/unit
for j in 1 2 3; do
	cp-hash -q -j $j -p '*.py' -p '*.c' -p '*.h' -o j$j.shard d data.jsonl.gz README.md 2>/dev/null
done
cmp -s j1.shard j2.shard && cmp -s j1.shard j3.shard
_tap $? "-j 1, 2, 3 write the same bytes"

# more documents than one batch holds (4096): the order and bytes still do not depend on -j
setup "4500 files" "$PYTHON" -c '
import os
os.makedirs("many", exist_ok=True)
for i in range(4500):
    with open("many/f%04d.py" % i, "w") as f:
        f.write("def f%d(x):\n    return x * %d\n" % (i % 3000, i % 7) * (1 + i % 5))'
cp-hash -q -j 1 -o m1.shard many && cp-hash -q -j 2 -o m2.shard many
cmp -s m1.shard m2.shard
_tap $? "4500 files over two batches: -j 1 and -j 2 write the same bytes"
# a directory's shards, their blocks compressed on the -j threads: the same bytes
cp-hash -q -j 1 -L 3 --shard-bytes 400000 -o md1/ many && cp-hash -q -j 3 -L 3 --shard-bytes 400000 -o md3/ many
same=0
for f in md1/*.shard; do cmp -s "$f" "md3/${f#md1/}" || same=1; done
[ "$(ls md1 | wc -l)" -gt 1 ] && [ "$(ls md1)" = "$(ls md3)" ] || same=1
_tap $same "... and so do -j 1 and -j 3 into a directory of shards"
is "$(origins m2.shard | sed -n '1p;4500p' | tr '\n' ' ')" "many/f0000.py many/f4499.py " "... in order"

# --- --jsonl: JSON lines from a pipe, whatever the name
gzip -c data.jsonl | gzip -dc | cp-hash -q --jsonl -o pj.shard /dev/stdin 2>/dev/null
is "$(field pj.shard hash)" "$(field plain.shard hash)" "--jsonl reads JSON lines from a pipe"
is "$(origins pj.shard | tr '\n' ' ')" "/dev/stdin:1 /dev/stdin:3 " "... origins are PIPE:LINE"
cp data.jsonl.gz dump.bin
ok "--jsonl on a file of another name (gzip)" cp-hash -q --jsonl -o pb.shard dump.bin
is "$(field pb.shard hash)" "$(field plain.shard hash)" "... gives the same documents"

# --- compression levels: the records do not depend on them; 0 stores
for l in 0 1 -3 19; do
	cp-hash -q -L $l -o lvl$l.shard many data.jsonl 2>/dev/null
done
is "$(cp-cat lvl0.shard | md5sum)" "$(cp-cat lvl1.shard | md5sum)" "-L 0 and -L 1 hold the same records"
is "$(cp-cat lvl-3.shard | md5sum)$(cp-cat lvl19.shard | md5sum)" \
	"$(cp-cat lvl1.shard | md5sum)$(cp-cat lvl1.shard | md5sum)" "... as do -L -3 and -L 19"
raw=$(cp-cat --header lvl0.shard | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["raw_bytes"])')
sz=$(wc -c <lvl0.shard | tr -d ' ')
[ "$sz" -gt "$raw" ] && [ "$(wc -c <lvl19.shard)" -lt "$raw" ]
_tap $? "-L 0 stores ($sz bytes for $raw of records), -L 19 compresses"
if need_cmd zstd 1; then
	# the stored blocks are standard zstd frames: the zstd tool decodes the first one
	"$PYTHON" - lvl0.shard >frame.zst <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
clen = struct.unpack_from("<I", b, 64 + 20)[0]
sys.stdout.buffer.write(b[64 + 32:64 + 32 + clen])
PY
	raw1=$("$PYTHON" -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), 64 + 16)[0])' lvl0.shard)
	is "$(zstd -dc frame.zst | wc -c | tr -d ' ')" "$raw1" "a stored block is a zstd frame the zstd tool decodes"
fi
cp-hash -q many data.jsonl 2>/dev/null >piped.shard
[ "$(wc -c <piped.shard)" -lt "$raw" ]
_tap $? "standard output to a file: compressed"
cp-hash -q many data.jsonl 2>/dev/null | cat >piped0.shard
[ "$(wc -c <piped0.shard)" -gt "$raw" ]
_tap $? "standard output to a pipe: stored"
is "$(cp-cat piped0.shard | md5sum)" "$(cp-cat lvl1.shard | md5sum)" "... the same records"
cp-hash -q -L 1 many data.jsonl 2>/dev/null | cat >piped1.shard
[ "$(wc -c <piped1.shard)" -lt "$raw" ]
_tap $? "... unless -L is given"
exit_is 2 "-L 20 exits 2" cp-hash -L 20 -o x.shard d
exit_is 2 "-L x exits 2" cp-hash -L x -o x.shard d

# --- usage
exit_is 2 "a bad option exits 2" cp-hash --bogus d
exit_is 2 "a bad number exits 2" cp-hash -j x -o x.shard d
exit_is 2 "a bad size exits 2" cp-hash --max-size 12q -o x.shard d
exit_is 2 "no PATH exits 2" cp-hash -o x.shard
ok "-h" cp-hash -h
like "$(head -1 .out)" "^usage: cp-hash " "-h prints the usage"
# --- OMP_WAIT_POLICY: passive (set before libgomp loads, so by a restart) unless the user
# chose; read from /proc while cp-hash waits for paths on a FIFO
wait_policy() { # [ENV...] -> the OMP_WAIT_POLICY in a running cp-hash's environment
	rm -f paths.fifo
	mkfifo paths.fifo
	env "$@" cp-hash -q -o wp.shard - <paths.fifo &
	pid=$!
	exec 9>paths.fifo
	i=0
	while [ $i -lt 50 ]; do
		p=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^OMP_WAIT_POLICY=//p')
		[ -n "$p" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	exec 9>&-
	wait $pid
	echo "$p"
}
if need 2 "no /proc" test -r /proc/self/environ; then
	is "$(wait_policy)" "passive" "cp-hash restarts itself with OMP_WAIT_POLICY=passive"
	is "$(wait_policy OMP_WAIT_POLICY=active)" "active" "... but keeps the user's choice"
fi

done_testing
