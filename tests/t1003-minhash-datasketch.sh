#!/bin/sh
# t1003: cp-hash's default MinHash (--minhash datasketch) gives, value for value, datasketch's
# MinHash(num_perm=256).hashvalues over the same token set (the reference is datasketch itself,
# run here); the table of permutations in common/dedup/minhash-datasketch.h is what datasketch draws;
# --minhash xxh3 differs; --minhash none changes nothing but the signatures; cp-dedup refuses
# inputs that mix the schemes and warns of documents without signatures.
. "$(dirname "$0")/lib.sh"

need_python_module datasketch

# what datasketch computes for each record's document (files, or FILE:LINE of JSON lines),
# tokens split as CodeParrot does; prints "DOCS MISMATCHES SIGNED" for cp-cat --minhash output
compare() { "$PYTHON" -c '
import json, re, sys
from datasketch import MinHash
NON_ALPHA = re.compile("[^A-Za-z_0-9]")
n = bad = signed = 0
for line in sys.stdin:
    r = json.loads(line)
    origin = r["origin"]
    if re.search(r"\.jsonl:[0-9]+$", origin):
        path, no = origin.rsplit(":", 1)
        with open(path, encoding="utf-8") as f:
            text = json.loads(f.readlines()[int(no) - 1])["content"]
    else:
        with open(origin, "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    tokens = {t for t in NON_ALPHA.split(text) if t}
    want = []
    if len(tokens) >= 10:
        m = MinHash(num_perm=256)
        m.update_batch([t.encode() for t in tokens])
        want = [int(v) for v in m.hashvalues]
    got = r.get("minhash", [])
    n += 1
    signed += bool(got)
    if got != want:
        bad += 1
        print("differs: %s" % origin, file=sys.stderr)
print(n, bad, signed)'; }

ok "the permutation table is datasketch's" \
	"$PYTHON" "$TESTS_DIR/ref/minhash_perm_table.py" --check "$SRC_DIR/common/dedup/minhash-datasketch.h"

# --- real files: 30 modules of the running Python's standard library
stdlib=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
setup "30 modules of the standard library" sh -c "ls '$stdlib'/*.py | LC_ALL=C sort | head -30 >list.txt && test \$(wc -l <list.txt) = 30"

# --- hand-made: non-ASCII text and names, invalid UTF-8, tokens across SHA-1's 64-byte
# blocks, repeated tokens, too few tokens, CRLF, a JSON line with escapes
mkhand() {
	mkdir h
	printf 'def größe(x):\n    return "héllo wörld", ñame_1, αβγ_δ, 日本語 + x\n# zero one two three four five six\n' >h/unicode.py
	printf 'a\377\376b c d\300\200e f g h i j k l m n \355\240\200 o\n' >h/invalid.py
	"$PYTHON" -c '
import sys
toks = ["t" * n for n in (1, 19, 54, 55, 56, 63, 64, 65, 119, 120, 200, 1000)]
open("h/long.py", "w").write(" ".join(toks) + "\n")
open("h/repeat.py", "w").write(("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 50) + "\n")'
	printf 'only five tokens here x\n' >h/few.py
	printf 'one\r\ntwo\r\nthree four;five(six)seven[eight]nine{ten}\r\n' >h/crlf.py
	printf '%s\n' '{"content": "caf\u00e9 na\u00efve r\u00e9sum\u00e9 x1 x2 x3 x4 x5 x6 x7 x8 \ud83d\ude00 end", "repo_name": "r"}' >h/docs.jsonl
	find h -type f | LC_ALL=C sort >>list.txt
}
setup "the hand-made files" mkhand

ok "cp-hash --minhash datasketch" cp-hash -q -j2 --minhash datasketch -o ds.shard - <list.txt
ok "cp-hash (default scheme)" cp-hash -q -j2 -o ds2.shard - <list.txt
is "$(cmp ds.shard ds2.shard && echo same)" "same" "datasketch is the default: the same bytes"
ok "cp-hash --minhash xxh3" cp-hash -q -j2 --minhash xxh3 -o xx.shard - <list.txt
ok "-j1" cp-hash -q -j1 --minhash datasketch -o ds1.shard - <list.txt
is "$(cmp ds.shard ds1.shard && echo same)" "same" "datasketch signatures do not depend on -j"

r=$(cp-cat --minhash ds.shard | compare)
set -- $r
is "$1" "37" "every document was read (30 stdlib files, 7 hand-made)"
is "$2" "0" "every signature equals datasketch's MinHash(num_perm=256).hashvalues"
is "$3" "36" "... of which 36 have one (too few tokens: none)"
r=$(cp-cat --minhash xx.shard | compare 2>/dev/null)
set -- $r
is "$2" "36" "sanity: the default scheme's signatures all differ from datasketch's"
same=$(cp-cat --minhash ds.shard | "$PYTHON" -c '
import json, sys
docs = [json.loads(l) for l in sys.stdin]
a = [v for d in docs for v in d.get("minhash", [])]
print(len(a), len(set(a)) > len(a) // 2)')
is "$same" "9216 True" "signatures hold 36 x 256 values, mostly distinct"

# --- cp-dedup: one scheme at a time
ok "cp-dedup takes datasketch signatures" cp-dedup -o out1/ ds.shard ds1.shard
exit_is 1 "cp-dedup refuses mixed schemes" cp-dedup -o out2/ ds.shard xx.shard
err_like "schemes cannot be mixed" "... saying why"
err_like "'xx.shard'.*'xxh3'.*'ds.shard'.*'datasketch'" "... naming the inputs and schemes"
is "$(ls out2 2>/dev/null)" "" "... and writes nothing"
exit_is 1 "... in either order" cp-dedup -o out3/ xx.shard ds.shard
ok "--no-near compares no signatures: mixing is fine" cp-dedup --no-near -o out4/ ds.shard xx.shard
exit_is 2 "an unknown scheme is a usage error" cp-hash --minhash sha1 -o x.shard h

# --- --minhash none: the same records but for the signature and the token count
ok "cp-hash --minhash none" cp-hash -q -j2 --minhash none -o none.shard - <list.txt
strip_sig() { cp-cat "$1" | "$PYTHON" -c '
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    for k in ("n_tokens", "n_minhash", "minhash_scheme"):
        d.pop(k)
    print(json.dumps(d, sort_keys=True))'; }
strip_sig ds.shard >ds.json
strip_sig none.shard >none.json
is "$(cmp ds.json none.json && echo same)" "same" "... id, hash, statistics, flags and content as with signatures"
is "$(cp-cat --minhash none.shard | "$PYTHON" -c '
import json, sys
d = [json.loads(l) for l in sys.stdin]
print(len(d), sum("minhash" in x for x in d), sum(x["n_tokens"] for x in d),
      sorted({x["minhash_scheme"] for x in d}))')" "37 0 0 ['none']" \
	"... no signature, n_tokens 0, scheme 'none' in every record"
ok "cp-dedup --no-near on unsigned documents" cp-dedup --no-near -o n1/ --report n1.json none.shard
ok "... the same run on signed ones" cp-dedup --no-near -o n2/ --report n2.json ds.shard
is "$(json_field n1.json "r['docs_out'], r['exact_duplicates'], r['removed']")" \
	"$(json_field n2.json "r['docs_out'], r['exact_duplicates'], r['removed']")" "... decides the same"
ok "near dedup on unsigned documents runs" cp-dedup -o n3/ --report n3.json none.shard
err_like "37 documents have no MinHash signature" "... and warns that it cannot see them"
is "$(json_field n3.json "r['near']['no_signature'], r['near_duplicates']")" "37 0" \
	"... counted in the report"

done_testing
