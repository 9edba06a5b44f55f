#!/bin/sh
# t1001: cp-hash's statistics agree with an independent Python rendering of CodeParrot's
# definitions (tests/ref/stats_ref.py) on hand-made awkward files, on every Unicode code point
# and on a sample of real Python files; the exact hash ignores exactly Python's whitespace.
. "$(dirname "$0")/lib.sh"
REF="$SRC_DIR/tests/ref/stats_ref.py"
need_python 3.8

ok "make the hand-made files" "$PYTHON" "$REF" make-tricky tricky
ok "make the Unicode files" "$PYTHON" "$REF" make-unicode ucd
# a sample of real files: every 40th .py of the standard library, in byte order
sample() { "$PYTHON" - >sample.txt <<'EOF'
import os, sysconfig
root = sysconfig.get_paths()["stdlib"]
files = []
for d, dirs, names in os.walk(root):
    dirs[:] = [x for x in dirs if x != "site-packages"]
    files += [os.path.join(d, n) for n in names if n.endswith(".py")]
files = [f for f in sorted(files, key=os.fsencode) if os.path.getsize(f) <= 1000000]
print("\n".join(files[::40]))
EOF
test -s sample.txt; }
setup "a sample of the standard library's files" sample
ok "hash the hand-made and Unicode files" cp-hash -q --max-size 0 -p '*.py' -p '*.txt' \
	-o docs.shard tricky ucd
ok "hash the sample (paths on stdin)" sh -c 'cp-hash -q -o sample.shard - <sample.txt'
ok "print them" sh -c 'cp-cat docs.shard sample.shard >docs.jsonl'
is "$(wc -l <docs.jsonl | tr -d ' ')" "$(( $(ls tricky ucd | grep -c '\.') + $(wc -l <sample.txt) ))" \
	"one document per file"
"$PYTHON" "$REF" compare docs.jsonl >compare.out 2>&1
_tap $? "every statistic equals Python's (stats_ref.py compare)"
sed 's/^/# /' compare.out | tail -15

# The hash: stripping whitespace as Python's re \s does leaves the hash unchanged, and the
# stripped file hashes to itself; files that differ in anything else hash apart.
ok "strip with Python" sh -c "'$PYTHON' '$REF' make-stripped tricky stripped &&
	'$PYTHON' '$REF' make-stripped ucd stripped"
ok "hash the stripped files" cp-hash -q --max-size 0 -p '*.py' -p '*.txt' -o stripped.shard stripped
hashes() { cp-cat "$1" | "$PYTHON" -c '
import json, os, sys
for l in sys.stdin:
    d = json.loads(l)
    print(os.path.basename(d["origin"]), d["hash"])'; }
both() { hashes docs.shard | sort >h-orig; hashes stripped.shard | sort >h-stripped; test -s h-orig; }
setup "the hashes of the files and of the stripped files" both
is "$(diff h-orig h-stripped | head -5)" "" "hash(file) = hash(file with Python's \\s+ removed), all files"
h() { grep "^$1 " h-orig | cut -d' ' -f2; }
is "$(h ws-2.py)" "$(h ws-1.py)" "whitespace variants (CRLF, tabs) share a hash"
is "$(h ws-3.py)" "$(h ws-1.py)" "whitespace variants (NBSP, U+3000, U+2028, FS, VT, NEL) too"
[ "$(h ws-4.py)" != "$(h ws-1.py)" ]
_tap $? "a zero-width space (not whitespace) changes the hash"
[ "$(h ws-5.py)" != "$(h ws-1.py)" ]
_tap $? "a changed name changes the hash"
is "$(h newline-only.py)" "$(h empty.py)" "a lone newline hashes as the empty file"
is "$(cut -d' ' -f2 h-orig | sort | uniq -d | wc -l | tr -d ' ')" "2" \
	"no other two hand-made or Unicode files share a hash"
done_testing
