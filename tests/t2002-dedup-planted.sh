#!/bin/sh
# t2002: a tree with planted exact duplicates (whitespace variants), near duplicates (a few
# tokens changed in 200-token files) and distinct files: exactly the expected files survive
# cp-hash | cp-dedup, whatever the thread count, the shard split or a pipe in between.
. "$(dirname "$0")/lib.sh"

# Files are named so that byte order of path is the order of "first"; expect.txt lists the
# survivors (relative paths), pairs.txt the near pairs that must be joined.
setup "generate the tree" "$PYTHON" - <<'PY'
import os, random
rng = random.Random(2002)
def word():
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))
def body(tokens):
    # 4 tokens a line as an assignment: 200 distinct tokens, 50 lines
    lines = ["%s = %s + %s * %s" % tuple(tokens[i:i + 4]) for i in range(0, len(tokens), 4)]
    return "def f():\n" + "".join("    %s\n" % l for l in lines)
def change(tokens, k):
    t = list(tokens)
    for i in rng.sample(range(len(t)), k):
        t[i] = word()
    return t
os.makedirs("tree/g", exist_ok=True)
keep, files = [], {}
for g in range(6):
    base = [word() for _ in range(200)]
    files["g/%02d_a_base.py" % g] = body(base)
    keep.append("g/%02d_a_base.py" % g)
    # exact duplicates: spacing and line endings differ, nothing else
    files["g/%02d_b_exact_spaces.py" % g] = body(base).replace(" = ", "=").replace(" + ", "  +  ")
    files["g/%02d_c_exact_crlf.py" % g] = body(base).replace("\n", "\r\n")
    # near duplicates: 2 to 6 of 200 tokens replaced (Jaccard about 0.94 to 0.98)
    files["g/%02d_d_near.py" % g] = body(change(base, 2 + g % 5))
    files["g/%02d_e_near.py" % g] = body(change(base, 3))
    # far enough: 40 of 200 replaced (Jaccard about 0.67) stays
    files["g/%02d_f_far.py" % g] = body(change(base, 40))
    keep.append("g/%02d_f_far.py" % g)
# a near duplicate that comes first in path order wins over its later original
orig = [word() for _ in range(200)]
files["g/90_first_near.py"] = body(change(orig, 4))
files["g/91_later_original.py"] = body(orig)
keep.append("g/90_first_near.py")
# distinct files, and small ones (fewer than 10 tokens: never near duplicates)
for i in range(8):
    files["g/95_distinct_%d.py" % i] = body([word() for _ in range(200)])
    keep.append("g/95_distinct_%d.py" % i)
files["g/96_small_1.py"] = "x = 1\n"
files["g/96_small_2.py"] = "x = 2\n"
keep += ["g/96_small_1.py", "g/96_small_2.py"]
for p, t in files.items():
    with open(os.path.join("tree", p), "w", newline="") as f:
        f.write(t)
with open("expect.txt", "w") as f:
    f.writelines("tree/%s\n" % p for p in sorted(keep))
PY
ok "tree generated" test -s expect.txt
n_files=$(find tree -name '*.py' | wc -l)

survivors() { # shards... -> sorted relative origins
	cp-cat "$@" | "$PYTHON" -c '
import json, sys
for l in sys.stdin:
    o = json.loads(l)["origin"]
    print(o[o.index("tree/"):])' | sort
}

ok "cp-hash the tree" cp-hash -q -o all.shard tree
exit_is 0 "cp-dedup --no-filters" cp-dedup -j1 -o out1 --no-filters --report r1.json --pairs pairs.jsonl all.shard
is "$(survivors out1)" "$(cat expect.txt)" "exactly the expected files survive"
r=$("$PYTHON" -c "import json; r = json.load(open('r1.json')); print(r['docs_in'], r['exact_duplicates'], r['near_duplicates'], r['docs_out'])")
is "$r" "$n_files 12 13 $(wc -l <expect.txt)" "report: docs_in, 12 exact, 13 near, docs_out"
"$PYTHON" - <<'PY'
import json, sys
pairs = [json.loads(l) for l in open("pairs.jsonl")]
group = lambda o: o.split("/")[-1][:2].replace("91", "90")
ok = len(pairs) == 13 and all(p["jaccard"] >= 0.85 for p in pairs) and \
    all(group(p["a"]) == group(p["b"]) for p in pairs)
sys.exit(0 if ok else 1)
PY
_tap $? "--pairs: 13 confirmed pairs, within their groups, Jaccard >= 0.85"

# the same decisions with many shards and threads, through pipes
ok "cp-hash into 7-document shards" cp-hash -q -o split/ --shard-docs 7 tree
exit_is 0 "cp-dedup -j2 on 7-document shards" cp-dedup -j2 -o out2 --no-filters split
is "$(survivors out2)" "$(cat expect.txt)" "same survivors from split shards"
exit_is 0 "cp-dedup -j1 on the same" cp-dedup -j1 -o out3 --no-filters split
same=0
for f in out2/*.shard; do cmp -s "$f" "out3/${f#out2/}" || same=1; done
[ "$(ls out2 | wc -l)" -gt 1 ] && [ "$(ls out2)" = "$(ls out3)" ] || same=1
_tap $same "-j1 and -j2 write the same shards byte for byte"
# one shard cut into parts of ~20 kB: same decisions, same bytes for any -j
CP_DEDUP_PART_BYTES=20000 cp-dedup -j2 -o out9 --no-filters all.shard 2>/dev/null
is "$(survivors out9)" "$(cat expect.txt)" "one input cut into parts: same survivors"
ok "... written as several shards" test "$(ls out9 | wc -l)" -gt 2
CP_DEDUP_PART_BYTES=20000 cp-dedup -j1 -o out10 --no-filters all.shard 2>/dev/null
same=0
for f in out9/*.shard; do cmp -s "$f" "out10/${f#out9/}" || same=1; done
_tap $same "... byte for byte the same with -j1 and -j2"
cp-hash -q -o - tree | cp-dedup -o - --no-filters 2>/dev/null >piped.shard
is "$(survivors piped.shard)" "$(cat expect.txt)" "cp-hash | cp-dedup -o - | cp-cat: same survivors"
ok "no staging or spool left behind" test -z "$(ls -A out1 | grep -v '^docs-\|^\.set$')"
# standard input: copied into memory, or spilled to a file beyond CP_DEDUP_SPOOL_MEM; alone
# without near dedup, decided and written in one pass: the same bytes as from the file
cp-dedup -j1 -o file1 --no-filters all.shard 2>/dev/null
for mem in 0 30000; do
	CP_DEDUP_SPOOL_MEM=$mem cp-dedup -j2 -o mem$mem --no-filters - <all.shard 2>/dev/null
	ok "stdin with $mem bytes of it in memory: the shard read from a file" \
		cmp -s file1/docs-00000.shard mem$mem/docs-00000.shard
	ok "... and no spool left behind" test -z "$(ls -A mem$mem | grep -v '^docs-\|^\.set$')"
done
for lvl in 0 1 3; do
	cp-dedup -j1 -L$lvl -o sf$lvl --no-near --drop-prob 1 --report rf$lvl.json all.shard 2>/dev/null
	cp-dedup -j2 -L$lvl -o ss$lvl --no-near --drop-prob 1 --report rs$lvl.json - <all.shard 2>/dev/null
	ok "one pass from stdin at level $lvl: the bytes of two passes over the file" \
		cmp -s sf$lvl/docs-00000.shard ss$lvl/docs-00000.shard
done
is "$("$PYTHON" -c "import json; a, b = (json.load(open(p)) for p in ('rf1.json', 'rs1.json')); print([k for k in a if k not in ('seconds', 'outputs', 'exact_bytes_per_unique') and a[k] != b[k]])")" \
	"[]" "... and the same report (but for the memory its exact set took)"
cp-dedup -j1 -o - --no-near --drop-prob 1 - <all.shard 2>/dev/null >stream.shard
cp-dedup -j1 -o - --no-near --drop-prob 1 all.shard 2>/dev/null >twopass.shard
ok "... also to standard output" cmp -s stream.shard twopass.shard
head -c 3000 all.shard >cut.shard
exit_is 1 "one pass from a cut stdin fails" cp-dedup -o cutout --no-near - <cut.shard
ok "... and leaves no shard" test -z "$(ls -A cutout 2>/dev/null)"

# a part is folded into the decisions while it is read (every 256 documents): 2500 distinct
# files before the planted ones, so that the near duplicates join clusters well after the
# first folds and the part's arrays have grown; from a pipe (one part, folded as it comes)
# and from the file cut into parts of ~20 kB (most folded after their reading), -j1 and -j2:
# the same report and pairs
setup "a wide tree before the planted one" "$PYTHON" - <<'PY'
import os, random, shutil
rng = random.Random(20021)
os.makedirs("wide/a", exist_ok=True)
for i in range(2500):
    words = " + ".join("".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(30))
    with open("wide/a/f%04d.py" % i, "w") as f:
        f.write("def g():\n    return %s\n" % words)
shutil.copytree("tree/g", "wide/g")
PY
cp-hash -q -o wide.shard wide
cp-hash -q wide | cp-dedup -n -j2 --no-filters --report wp.json --pairs wp.jsonl 2>/dev/null
for j in 1 2; do
	CP_DEDUP_PART_BYTES=20000 cp-dedup -n -j$j --no-filters --report wf$j.json \
		--pairs wf$j.jsonl wide.shard 2>/dev/null
done
is "$(json_field wp.json '(r["docs_in"], r["exact_duplicates"], r["near_duplicates"])')" \
	"($((n_files + 2500)), 12, 13)" "wide tree from a pipe: every document, 12 exact, 13 near"
same=0
for x in wf1 wf2; do
	cmp -s wp.jsonl $x.jsonl || same=1
	"$PYTHON" -c "
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for r in a, b:	# what memory took: the tables are sized for the documents expected
    r.pop('seconds'), r.pop('exact_bytes_per_unique'), r['near'].pop('bytes_per_doc')
sys.exit(a != b)" wp.json $x.json || same=1
done
_tap $same "... the pairs and report (but for time and memory) of the file cut into parts, -j1 and -j2"

# without near dedup, near duplicates stay; with the filters, the short files go
cp-dedup -o out4 --no-near --no-filters all.shard 2>/dev/null
is "$(survivors out4 | wc -l)" "$((n_files - 12))" "--no-near keeps the near duplicates"
cp-dedup -o out5 --drop-prob 1 --report r5.json all.shard 2>/dev/null
is "$(survivors out5 | grep -c small)" "0" "with filters, the short files are removed"
like "$(cat r5.json)" '"no_keywords": 2' "... as files without keywords"

# --dry-run: the same report, nothing written; from a file or a pipe
cp-dedup -n -o out11 --drop-prob 1 --report r11.json --pairs pairs11.jsonl all.shard 2>/dev/null
is "$?" "0" "-n runs"
ok "... and creates no output directory" test ! -e out11
same=$("$PYTHON" - r5.json r11.json <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
keys = ("docs_in", "bytes_in", "docs_out", "bytes_out", "exact_duplicates",
        "near_duplicates", "removed", "top_unique_share")
print("same" if all(a[k] == b[k] for k in keys) else "differ: %s" %
      [k for k in keys if a[k] != b[k]])
PY
)
is "$same" "same" "... its report equals the run that wrote the shards"
is "$(wc -l <pairs11.jsonl | tr -d ' ')" "13" "... and --pairs still lists the pairs"
cp-hash -q tree | cp-dedup -n --drop-prob 1 --report r12.json 2>/dev/null
is "$("$PYTHON" -c "import json; a, b = (json.load(open(p)) for p in ('r5.json', 'r12.json')); print(a['docs_out'] == b['docs_out'] and a['bytes_out'] == b['bytes_out'])")" \
	"True" "... also from a pipe"
ok "-n with the report on standard output" cp-dedup -n --report - all.shard
like "$(cat .out)" '"docs_out"' "... prints it there"

# the output level: the same records, stored (the default) or compressed
cp-dedup -o out12 -L 0 --drop-prob 1 all.shard 2>/dev/null
cp-dedup -o out13 -L 19 --drop-prob 1 all.shard 2>/dev/null
cp-dedup -o out14 -L 1 --drop-prob 1 all.shard 2>/dev/null
is "$(cat out12/*.shard | md5sum)" "$(cat out5/*.shard | md5sum)" "the default level stores: the bytes of -L 0"
is "$(cp-cat out13 | md5sum)" "$(cp-cat out5 | md5sum)" "-L 19: the same records"
is "$(cp-cat out14 | md5sum)" "$(cp-cat out5 | md5sum)" "-L 1: the same records"
[ "$(cat out5/*.shard | wc -c)" -gt "$(cat out14/*.shard | wc -c)" ]
_tap $? "... in smaller shards than the stored default"
exit_is 2 "-L 99 is a usage error" cp-dedup -L 99 all.shard

# empty input: a valid report, no shard
setup "an empty shard" sh -c 'mkdir empty && cp-hash -q -o empty.shard empty'
exit_is 0 "an empty input is fine" cp-dedup -o out8 --report r8.json empty.shard
is "$("$PYTHON" -c "import json; r = json.load(open('r8.json')); print(r['docs_in'], r['docs_out'], r['outputs'])")" \
	"0 0 []" "... with zero counts and no shard written"

# option checking
exit_is 2 "a bad threshold is a usage error" cp-dedup --threshold 1.5 all.shard
exit_is 2 "a non-number drop probability is a usage error" cp-dedup --drop-prob x all.shard
exit_is 1 "a missing input is an error" cp-dedup -o out6 no-such.shard
err_like "no-such.shard" "... naming the file"
printf 'garbage that is not a shard' >bad.shard
exit_is 1 "a corrupt input is an error" cp-dedup -o out7 bad.shard
ok "... and leaves no output" test -z "$(ls -A out7 2>/dev/null)"
done_testing
