#!/bin/sh
# t2010: documents only passed through (cp-hash's records to a pipe, cp-dedup's kept ones to
# stored clean shards) go out from where they lie, not copied (shard_write_ref): on files of
# every size, small ones, ones of a few KiB and ones over a 128 KiB raw zstd block, the
# records are those of the copying path (compressed shards), in each of cp-dedup's ways of
# reading: one pass from a pipe, two passes over a file or over its copy of standard input
# (in memory, or spooled to a file), and the stored default is what -L 0 writes.
. "$(dirname "$0")/lib.sh"

setup() { ok "setup: $1" sh -c "$2"; }

setup "a tree of files of every size, with copies" "$PYTHON" - <<'PY'
import os, random
rng = random.Random(2010)
os.makedirs("tree", exist_ok=True)
sizes = [10, 900, 4000, 4100, 9000, 70000, 131000, 140000, 300000, 700000]
for i in range(60):
    n = sizes[i % len(sizes)] + rng.randrange(50)
    lines, size = [], 0
    while size < n:
        l = "x%d = %s + %d  # %s\n" % (rng.randrange(10**6), "y" * rng.randrange(1, 40), i,
                                       "".join(rng.choice("abcdefgh ") for _ in range(30)))
        lines.append(l)
        size += len(l)
    text = "def f():\n    return 1\n" + "".join(lines)
    with open("tree/f%02d.py" % i, "w") as f:
        f.write(text)
    if i % 7 == 0:	# an exact duplicate, later in path order
        with open("tree/g%02d.py" % i, "w") as f:
            f.write(text)
PY

cp-hash -q -j2 -L 19 -o hashed.shard tree
cp-hash -q -j2 tree | cat >piped.shard
is "$(cp-cat piped.shard | md5sum)" "$(cp-cat hashed.shard | md5sum)" \
	"cp-hash to a pipe (stored, by reference): the records of a compressed file"
cp-hash -q -j1 tree | cmp -s - piped.shard
_tap $? "... the same bytes on 1 thread as on 2"

want=$(cp-dedup -j2 -L 19 -o ref --drop-prob 1 --no-near hashed.shard 2>/dev/null && cp-cat ref | md5sum)
[ "$(cp-cat ref | wc -l)" -gt 30 ]
_tap $? "setup: the copying path keeps most documents"
cp-hash -q -j2 tree | cp-dedup -j2 -o s1 --drop-prob 1 --no-near - 2>/dev/null
is "$(cp-cat s1 | md5sum)" "$want" "one pass from a pipe, stored by reference: the same records"
cp-dedup -j2 -o s2 --drop-prob 1 --no-near piped.shard 2>/dev/null
is "$(cp-cat s2 | md5sum)" "$want" "two passes over a stored file: the same records"
cp-dedup -j2 -o s3 --drop-prob 1 --no-near hashed.shard 2>/dev/null
is "$(cp-cat s3 | md5sum)" "$want" "... over a compressed one"
cp-dedup -j2 -L 0 -o s4 --drop-prob 1 --no-near hashed.shard 2>/dev/null
is "$(cat s4/*.shard | md5sum)" "$(cat s3/*.shard | md5sum)" "the default level is -L 0's bytes"

# near dedup reads standard input twice: from its copy in memory, or spooled to a file
want=$(cp-dedup -j2 -L 19 -o nref --no-filters hashed.shard 2>/dev/null && cp-cat nref | md5sum)
cp-dedup -j2 -o n1 --no-filters - <piped.shard 2>/dev/null
is "$(cp-cat n1 | md5sum)" "$want" "near dedup, standard input from memory: the same records"
CP_DEDUP_SPOOL_MEM=100000 cp-dedup -j2 -o n2 --no-filters - <piped.shard 2>/dev/null
is "$(cp-cat n2 | md5sum)" "$want" "... spooled to a file past its memory"
cmp -s n1/docs-00000.shard n2/docs-00000.shard
_tap $? "... the same bytes"
ok "the stored clean shards verify" cp-cat --verify n1/docs-00000.shard s1/docs-00000.shard

done_testing
