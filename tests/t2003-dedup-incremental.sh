#!/bin/sh
# t2003: incremental runs with --index. Run 2 sees new data holding copies and near copies
# of run-1 documents and of itself; it writes only the new clean documents, in new shards,
# and the two runs together keep exactly what one run over everything keeps. Indexes of
# separate runs merge into one that knows both. An index records the MinHash scheme of its
# signatures (version 2) and refuses inputs and indexes of the other; a version-1 index,
# which did not record it, is refused for near dedup unless CP_DEDUP_INDEX_SCHEME says it.
. "$(dirname "$0")/lib.sh"

setup "old and new data, with copies and near copies" "$PYTHON" - <<'PY'
import os, random
rng = random.Random(2003)
def word():
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))
def body(t):
    return "def f():\n" + "".join("    %s = %s + %s * %s\n" % tuple(t[i:i + 4]) for i in range(0, len(t), 4))
def change(t, k):
    t = list(t)
    for i in rng.sample(range(len(t)), k):
        t[i] = word()
    return t
new = lambda: [word() for _ in range(200)]
A, B, C, D, E, F = new(), new(), new(), new(), new(), new()
B2 = change(B, 3)
files = {
    # run 1: A, B and a near copy of B (removed), C, a file the filters drop
    "old/1_A.py": body(A), "old/2_B.py": body(B), "old/3_B_near.py": body(B2),
    "old/4_C.py": body(C), "old/5_nokw.py": "x = 1\n",
    # run 2: a copy of A, a near copy of C, a near copy of B's removed near copy, a copy of
    # the filtered file, D twice, E and a near copy of it, F
    "new/1_A_copy.py": body(A).replace(" = ", "="),
    "new/2_C_near.py": body(change(C, 4)),
    "new/3_B2_near.py": body(change(B2, 2)),
    "new/4_nokw_copy.py": "x  =  1\n",
    "new/5_D.py": body(D), "new/6_D_copy.py": body(D).replace("\n", "\r\n"),
    "new/7_E.py": body(E), "new/8_E_near.py": body(change(E, 3)),
    "new/9_F.py": body(F),
}
for p, t in files.items():
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w", newline="") as f:
        f.write(t)
PY
survivors() { cp-cat "$@" | "$PYTHON" -c '
import json, sys
for l in sys.stdin: print(json.loads(l)["origin"])' | sort; }
u32at() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }	# FILE OFFSET: a little-endian u32
u64at() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }

setup "hash both (xxh3 signatures)" sh -c \
	'cp-hash -q --minhash xxh3 -o old.shard old && cp-hash -q --minhash xxh3 -o new.shard new'
exit_is 0 "run 1 with a fresh index" cp-dedup -o clean --drop-prob 1 --index idx --report r1.json old.shard
ok "the index was written" test -s idx
is "$(survivors clean)" "$(printf 'old/1_A.py\nold/2_B.py\nold/4_C.py')" "run 1 keeps A, B, C"
cp clean/docs-00000.shard run1.shard
exit_is 0 "run 2 with the index" cp-dedup -o clean --drop-prob 1 --index idx --report r2.json new.shard
is "$(ls clean)" "$(printf 'docs-00000.shard\ndocs-00001.shard')" "run 2 adds docs-00001.shard"
ok "run 1's shard is untouched" cmp -s clean/docs-00000.shard run1.shard
is "$(survivors clean/docs-00001.shard)" "$(printf 'new/5_D.py\nnew/7_E.py\nnew/9_F.py')" \
	"run 2 writes only the new clean documents"
is "$(json_field r2.json "r['exact_duplicates'], r['near_duplicates'], r['docs_out']")" "3 3 3" \
	"run 2: 3 exact (A, the filtered file, D), 3 near (C, B's near copy, E)"

# the two runs keep what one run over everything keeps
cp-dedup -o once --drop-prob 1 old.shard new.shard 2>/dev/null
is "$(survivors clean)" "$(survivors once)" "two incremental runs = one run over all"

# rerunning run 2 on the same data now finds everything known
exit_is 0 "run 3: the same new data again" cp-dedup -o clean --drop-prob 1 --index idx --report r3.json new.shard
is "$(json_field r3.json "r['docs_out'], r['outputs']")" "0 []" "run 3 writes nothing"

# a --no-near run still remembers exact hashes
cp-dedup -o nn --no-near --index idx.nn --drop-prob 1 old.shard 2>/dev/null
cp-dedup -o nn --no-near --index idx.nn --drop-prob 1 --report rnn.json new.shard 2>/dev/null
is "$(json_field rnn.json "r['exact_duplicates']")" "3" "--no-near runs share exact hashes through the index"

# merge: indexes of two separate runs
cp-dedup -o pa --index a.idx old.shard 2>/dev/null
cp-dedup -o pb --index b.idx new.shard 2>/dev/null
exit_is 0 "--merge-index" cp-dedup --merge-index ab.idx a.idx b.idx
like "$(cat "$TMP/.err")" "merged 2 indexes" "merge reports what it did"
exit_is 0 "a run against the merged index" cp-dedup -o pc --index ab.idx --report rc.json old.shard new.shard
is "$(json_field rc.json "r['docs_out'], r['exact_duplicates']")" "0 14" "the merged index knows every document"
cp-dedup --merge-index self.idx a.idx a.idx 2>/dev/null
ok "merging an index with itself changes nothing but signatures" \
	test "$(head -c 32 self.idx | tail -c 8 | od -An -tu8)" = "$(head -c 32 a.idx | tail -c 8 | od -An -tu8)"
exit_is 1 "merging a missing index fails" cp-dedup --merge-index x.idx a.idx nope.idx
exit_is 2 "--merge-index without inputs is a usage error" cp-dedup --merge-index x.idx

# a damaged index is refused, naming it, and nothing is written
cp idx bad.idx
printf 'X' | dd of=bad.idx bs=1 seek=70 conv=notrunc 2>/dev/null
exit_is 1 "a damaged index is refused" cp-dedup -o bad --index bad.idx new.shard
err_like "bad.idx.*checksum" "... with a message naming it"
ok "... and no shard is written" test -z "$(ls bad 2>/dev/null)"
head -c 40 idx >cut.idx
exit_is 1 "a truncated index is refused" cp-dedup -o bad --index cut.idx new.shard
ok "no temporary index is left" test -z "$(ls | grep '\.tmp')"

# the MinHash scheme (cp-hash --minhash): recorded, and never mixed
is "$(u32at idx 8) $(u32at idx 20)" "2 1" "the index is version 2 and records scheme 1 (xxh3)"
is "$(u32at idx.nn 20)" "0" "an index without signatures records scheme 0 (none)"
ok "cp-hash --minhash datasketch on the new data" cp-hash -q --minhash datasketch -o new-ds.shard new
cp idx idx.before
exit_is 1 "datasketch inputs against an xxh3 index are refused" \
	cp-dedup -o mixed --drop-prob 1 --index idx new-ds.shard
err_like "new-ds.shard.*'datasketch'.*index 'idx'.*'xxh3'" "... naming the input, the index and both schemes"
ok "... nothing is written" test -z "$(ls mixed 2>/dev/null)"
ok "... and the index is untouched" cmp -s idx idx.before
exit_is 0 "--no-near compares no signatures: datasketch inputs are fine" \
	cp-dedup -o mixed --no-near --drop-prob 1 --index idx.before new-ds.shard
is "$(u32at idx.before 20)" "1" "... and the index keeps its scheme"
cp-dedup -o pds --index ds.idx new-ds.shard 2>/dev/null
is "$(u32at ds.idx 20)" "2" "a datasketch index records scheme 2"
exit_is 1 "merging an xxh3 and a datasketch index is refused" cp-dedup --merge-index m.idx a.idx ds.idx
err_like "'ds.idx'.*'datasketch'.*'a.idx'.*'xxh3'" "... naming both indexes and schemes"
ok "... and OUT is not written" test ! -e m.idx
exit_is 0 "an index without signatures merges with any" cp-dedup --merge-index m.idx idx.nn ds.idx
is "$(u32at m.idx 20)" "2" "... and the merge takes the scheme of the one with signatures"

# a version-1 index (scheme not recorded): two exact hashes, one signature of 256 values
setup "a version-1 index" "$PYTHON" -c '
import struct
body = b"\x01" * 16 + b"\x02" * 16 + b"".join(struct.pack("<H", i) for i in range(256))
head = b"CPDEDUP\0" + struct.pack("<IIIIQQQQ", 1, 256, 16, 0, 2, 1, 0, 0x15b24d47edc4ef21)
with open("v1.idx", "wb") as f:
    f.write(head + struct.pack("<Q", 0x6f519c150f8c4af2) + body)'
cp v1.idx v1a.idx
exit_is 1 "near dedup against a version-1 index with signatures is refused" \
	cp-dedup -o v1out --drop-prob 1 --index v1a.idx new.shard
err_like "index 'v1a.idx' does not record the scheme.*CP_DEDUP_INDEX_SCHEME" \
	"... naming it and the way out"
ok "... and leaves it as it was" cmp -s v1.idx v1a.idx
exit_is 0 "a --no-near run uses a version-1 index" \
	cp-dedup -o v1out --no-near --drop-prob 1 --index v1a.idx new.shard
is "$(u32at v1a.idx 8) $(u32at v1a.idx 20) $(u64at v1a.idx 24) $(u64at v1a.idx 32)" "2 3 10 1" \
	"... rewritten as version 2, scheme 3 (unknown), its 2 hashes (+ 8 new) and signature kept"
cp v1.idx v1b.idx
exit_is 0 "CP_DEDUP_INDEX_SCHEME=xxh3 says the scheme" \
	env CP_DEDUP_INDEX_SCHEME=xxh3 cp-dedup -o v1out2 --drop-prob 1 --index v1b.idx new.shard
is "$(u32at v1b.idx 20)" "1" "... and the rewritten index records it"
exit_is 2 "a bad CP_DEDUP_INDEX_SCHEME is a usage error" \
	env CP_DEDUP_INDEX_SCHEME=md5 cp-dedup -o v1out3 --drop-prob 1 --index v1.idx new.shard
exit_is 1 "merging a version-1 index with signatures into others is refused" \
	cp-dedup --merge-index m1.idx a.idx v1.idx
err_like "'v1.idx' does not record the MinHash scheme" "... naming it"
exit_is 0 "... unless CP_DEDUP_INDEX_SCHEME says it" \
	env CP_DEDUP_INDEX_SCHEME=xxh3 cp-dedup --merge-index m1.idx a.idx v1.idx
is "$(u32at m1.idx 20)" "1" "... recorded in the merged index"
# make dedup, then make refresh: an index made with xxh3 signatures (cp-hash's default
# before datasketch) keeps working, as make refresh hashes with the index's scheme
mk() { make --no-print-directory -s -C "$SRC_DIR" BUILD="$BUILD" OUT="$PWD/mk" JOBS=2 "$@"; }
ok "make dedup with HASH_FLAGS='--minhash xxh3'" mk CORPUS="$PWD/old" HASH_FLAGS="--minhash xxh3" dedup
is "$(u32at mk/dedup.index 20)" "1" "... its index records xxh3"
ok "make refresh NEW=new: new data against it" mk NEW="$PWD/new" refresh
is "$(survivors mk/clean/docs-00001.shard | sed "s|^$PWD/||")" \
	"$(printf 'new/5_D.py\nnew/7_E.py\nnew/9_F.py')" "... hashed with xxh3: the same 3 new documents survive"
is "$(json_field mk/refresh-report.json "r['near_duplicates']")" "3" "... and the 3 near copies go"
# the same under MPIRUN: 2 ranks for every stage, the same index and clean shards
if need_cmd mpirun 3; then
	export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	mk2() { make --no-print-directory -s -C "$SRC_DIR" BUILD="$BUILD" OUT="$PWD/mk2" JOBS=1 \
		MPIRUN="mpirun --allow-run-as-root --oversubscribe -np 2" "$@"; }
	ok "... make dedup on 2 ranks" mk2 CORPUS="$PWD/old" HASH_FLAGS="--minhash xxh3" dedup
	ok "... make refresh on 2 ranks" mk2 NEW="$PWD/new" refresh
	ok "... the index and the clean shards of one process" sh -c \
		'cmp mk/dedup.index mk2/dedup.index && for f in mk/clean/*.shard; do cmp "$f" "mk2/clean/${f##*/}" || exit 1; done'
fi
done_testing
