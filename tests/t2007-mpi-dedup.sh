#!/bin/sh
# t2007: cp-hash and cp-dedup under mpirun write what one process writes. For N = 1 to 4
# ranks: cp-hash's shards are the same bytes; cp-dedup's kept shards, set manifest, index,
# pairs and report (less its timings, output names and memory figures) are one process's, on
# the standard-library corpus (with a second copy of it: exact duplicates across ranks) and
# on a tree of planted near duplicates, and again for a run that adds to the index. The
# report gives each rank's bytes; --max-mem stops a rank that would need more, saying what
# to change. Skips without mpirun.
. "$(dirname "$0")/lib.sh"
need_mpirun
run() { # N TOOL ARGS...: TOOL on N ranks
	local n=$1 t=$2
	shift 2
	ranks "$n" "$BUILD/bin/$t" "$@"
}
# small batches and parts, so that a small corpus is spread over every rank
export CP_DOCPIPE_BATCH_ITEMS=7 CP_DEDUP_PART_BYTES=150000

set -- $(stdlib_dirs email json unittest importlib xml logging concurrent)
[ $# -gt 0 ] || skip_all "no standard library directories found"
# a build without MPI runs N processes of one rank each: nothing here to test
cp-hash -q -o probe.shard "$1" && run 2 cp-dedup -n --report probe.json probe.shard >/dev/null 2>&1
[ "$(json_field probe.json 'len(r.get("ranks", []))' 2>/dev/null)" = 2 ] ||
	skip_all "cp-dedup does not join mpirun's job (built without MPI: no pkg-config ompi-c?)"

# ---- cp-hash
ok "cp-hash, one process" cp-hash -q -j2 -o one.shard "$@"
for n in 1 2 3 4; do
	ok "cp-hash on $n ranks" run $n cp-hash -q -j1 -o hash$n.shard "$@"
	ok "cp-hash on $n ranks: the same shard" cmp one.shard hash$n.shard
done
# ranks of 2 threads: a rank's blocks compressed on its workers go into its spill as well
ok "cp-hash on 2 ranks of 2 threads" run 2 cp-hash -q -j2 -o hashj2.shard "$@"
ok "cp-hash on 2 ranks of 2 threads: the same shard" cmp one.shard hashj2.shard
# uneven turns: batches of one file, rank 0's large and rank 1's small, so that rank 1 has
# its next batch measured while its turn waits for rank 0's note, and writes the turn as
# the note comes in (docpipe's measure_turns, -j1): still one process's bytes
mkdir uneven
for i in 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do
	if [ $((i % 2)) = 0 ]; then
		awk -v i=$i 'BEGIN { for (k = 0; k < 12000; k++) printf "name_%d_%d = value_%d + %d\n", i, k, k % 97, k }' \
			>uneven/f$i.py
	else
		echo "x_$i = $i" >uneven/f$i.py
	fi
done
export CP_DOCPIPE_BATCH_ITEMS=1
ok "cp-hash, uneven turns, one process" cp-hash -q -o uneven1.shard uneven
ok "cp-hash, uneven turns, on 2 ranks" run 2 cp-hash -q -j1 -o uneven2.shard uneven
ok "cp-hash, uneven turns, on 3 ranks" run 3 cp-hash -q -j1 -o uneven3.shard uneven
export CP_DOCPIPE_BATCH_ITEMS=7
ok "... the same shard on 2 ranks" cmp uneven1.shard uneven2.shard
ok "... and on 3" cmp uneven1.shard uneven3.shard
is "$(cp-cat uneven2.shard | wc -l | tr -d ' ')" 16 "... which holds all 16 files"
ok "cp-hash into a directory, one process" cp-hash -q -o corpus/ --shard-docs 40 "$@"
ok "cp-hash into a directory on 3 ranks" run 3 cp-hash -q -j1 -o corpus3/ --shard-docs 40 "$@"
ok "the same shards and manifest" diff -r corpus corpus3
exit_is 2 "cp-hash: '-' is refused under mpirun" run 2 cp-hash -o x.shard -
# mpirun tears the job down when the first rank exits, and its forwarding of the ranks'
# stderr can lose the last lines of a rank it killed: the message is asked for up to 3 times
for i in 1 2; do
	grep -q "give the paths as arguments" "$TMP/.err" && break
	run 2 cp-hash -o x.shard - >/dev/null 2>"$TMP/.err" </dev/null
done
err_like "under mpirun, give the paths as arguments" "says why"
ok "a second copy of the corpus" cp -r corpus again

# ---- a tree the ranks read together (input/walk.h): links to files and to directories
# before and after them, a link to a parent, dangling and self-looping links, a file over
# the size limit, a wide level and a deep chain; the shards, the exit code and the messages
# are one process's
setup "a tree of links and loops" sh -c '
	mkdir -p links/a links/a.b links/d/e/f/g/h links/w
	for k in 0 1 2 3 4 5 6 7 8 9 10 11; do mkdir -p links/w/k$k/sub; echo "x = $k" >links/w/k$k/f.py; done
	echo "y = 1" >links/a/y.py; echo "z = 2" >links/a.b/z.py; echo "q = 3" >links/d/e/f/g/h/q.py
	echo "b = 4" >links/b.py; head -c 3000 /dev/zero | tr "\0" x >links/big.py
	ln -s ../w/k5 links/a/later; ln -s a.b links/z-earlier; ln -s .. links/d/e/up
	ln -s nowhere.py links/a/dead.py; ln -s self.py links/a/self.py; ln -s ../b.py links/a/f.py'
cp-hash -q -j1 --max-size 2000 -o links1.shard links 2>links1.err
echo $? >links1.rc
like "$(cat links1.err)" "cannot stat 'links/a/dead.py'" "one process: the dangling link said"
like "$(cat links1.err)" "skipping 'links/w/k5': directory already visited" "... and the loops"
for n in 2 3; do
	run $n cp-hash -q -j1 --max-size 2000 -o links$n.shard links 2>links$n.err
	is "$?" "$(cat links1.rc)" "cp-hash on $n ranks, a tree of links: the exit code"
	ok "... the same shard" cmp links1.shard links$n.shard
	# (mpirun adds a banner of its own when a rank exits non-zero)
	is "$(grep '^cp-hash:' links$n.err)" "$(cat links1.err)" \
		"... the same messages, in the same order"
done

# ---- the planted tree: exact copies and near duplicates, across many small files
setup "planted tree" "$PYTHON" - <<'PY'
import os, random
rng = random.Random(2007)
word = lambda: "".join(rng.choice("abcdefghijklmnop") for _ in range(7))
def text(toks):
    return "def g():\n" + "".join("    %s = %s(%s, %s)\n" % tuple(toks[i:i + 4])
                                  for i in range(0, len(toks), 4))
os.makedirs("tree", exist_ok=True)
for g in range(12):
    base = [word() for _ in range(240)]
    for v in range(5):
        t = list(base)
        for i in rng.sample(range(len(t)), v):	# 0: an exact copy of the base
            t[i] = word()
        with open("tree/%02d_%d.py" % (g, v), "w") as f:
            f.write(text(t))
    with open("tree/%02d_copy.py" % g, "w") as f:	# an exact copy, later in path order
        f.write(text(base))
    with open("tree/%02d_far.py" % g, "w") as f:
        f.write(text([w if rng.random() < 0.7 else word() for w in base]))
PY
ok "cp-hash the tree" cp-hash -q -o planted/ --shard-docs 9 tree
# a chain of near duplicates over every rank: each file 3 words from the one before, the
# ends far apart, one cluster only through all the links (rounds of the labels' joining)
setup "a chain" "$PYTHON" - <<'PY'
import os, random
rng = random.Random(2014)
word = lambda: "".join(rng.choice("abcdefghijklmnop") for _ in range(7))
os.makedirs("chain-tree", exist_ok=True)
toks = [word() for _ in range(400)]
for i in range(30):
    for k in rng.sample(range(len(toks)), 3):
        toks[k] = word()
    with open("chain-tree/c%02d.py" % (i * 7 % 30), "w") as f:	# the links out of order
        f.write("def g():\n" + "".join("    %s = %s(%s, %s)\n" % tuple(toks[j:j + 4])
                                       for j in range(0, 400, 4)))
PY
ok "cp-hash the chain" cp-hash -q -o chain/ --shard-docs 3 chain-tree

# same_run TAG N: run N's outputs equal the one process's
same_run() {
	local t=$1 n=$2 f bad=0
	cmp -s "$t-1/pairs" "$t-$n/pairs" || bad=1
	cmp -s "$t-1/index" "$t-$n/index" || bad=1
	diff -r "$t-1/out" "$t-$n/out" >/dev/null || bad=1
	"$PYTHON" - "$t-1/report.json" "$t-$n/report.json" <<'PY' || bad=1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for r in (a, b):
    for k in ("seconds", "outputs", "ranks", "exact_bytes_per_unique"):
        r.pop(k, None)
    r["near"].pop("bytes_per_doc")
sys.exit(a != b)
PY
	return $bad
}

# dedup TAG N ARGS...: cp-dedup into TAG-N/, by one process when N is 1 (no mpirun)
dedup() {
	local t=$1 n=$2
	shift 2
	mkdir -p "$t-$n"
	if [ "$n" = 1 ]; then
		cp-dedup -j2 -o "$t-$n/out" --report "$t-$n/report.json" --pairs "$t-$n/pairs" \
			--index "$t-$n/index" "$@"
	else
		run "${n#m}" cp-dedup -j1 -o "$t-$n/out" --report "$t-$n/report.json" \
			--pairs "$t-$n/pairs" --index "$t-$n/index" "$@"
	fi
}

for corpus in "corpus again" planted chain; do
	tag=$(echo "$corpus" | cut -c1-4)
	ok "$tag: cp-dedup, one process" dedup "$tag" 1 $corpus
	for n in m1 2 3 4; do
		ok "$tag: cp-dedup on ${n#m} ranks" dedup "$tag" $n $corpus
		ok "$tag: on ${n#m} ranks the kept set, index, pairs and report are one process's" \
			same_run "$tag" $n
	done
done
r=$(json_field corp-1/report.json 'r["exact_duplicates"] >= r["docs_in"] // 2')
is "$r" True "the second copy: every document an exact duplicate"
r=$(json_field plan-1/report.json '(r["exact_duplicates"], r["near_duplicates"] > 20)')
is "$r" "(12, True)" "planted: 12 exact copies, the near duplicates found"
is "$(grep -c jaccard plan-1/pairs)" "$(json_field plan-1/report.json 'r["near_duplicates"]')" \
	"planted: a pair for each near duplicate"
r=$(json_field chai-1/report.json '(r["near_duplicates"], r["docs_out"])')
is "$r" "(29, 1)" "the chain: one cluster, its first file kept"
r=$(json_field plan-3/report.json '[sorted(x) for x in r["ranks"]]')
is "$r" "[['exact_bytes', 'lsh_bytes'], ['exact_bytes', 'lsh_bytes'], ['exact_bytes', 'lsh_bytes']]" \
	"the report gives each rank's bytes of exact set and LSH index"

# an incremental run: the planted tree against the corpus's index, added to its set
for n in 1 2 4; do
	mkdir -p inc-$n
	cp -r corp-$n/out inc-$n/out && cp corp-$n/index inc-$n/index
done
ok "incremental, one process" dedup inc 1 planted
for n in 2 4; do
	ok "incremental on $n ranks" dedup inc $n planted
	ok "incremental on $n ranks: one process's" same_run inc $n
done

# without near dedup, and a dry run
ok "--no-near, one process" cp-dedup -o nn1 --no-near --report nn1.json corpus again planted
ok "--no-near on 3 ranks" run 3 cp-dedup -j1 -o nn3 --no-near --report nn3.json corpus again planted
ok "--no-near: the same shards" diff -r nn1 nn3
ok "-n, one process" cp-dedup -n --report dry1.json corpus planted
ok "-n on 2 ranks" run 2 cp-dedup -n --report dry2.json corpus planted
is "$(json_field dry2.json '(r["docs_out"], r["bytes_out"])')" \
	"$(json_field dry1.json '(r["docs_out"], r["bytes_out"])')" "-n: the same counts"

# --max-mem
exit_is 1 "--max-mem too small on 2 ranks fails" run 2 cp-dedup -o mm corpus --max-mem 1000
err_like "rank [01] of 2 would hold [0-9]+ bytes for .*over --max-mem 1000: run more ranks \(mpirun -np\)" \
	"the rank says so and which setting to change"
ok "--max-mem large enough, one process" cp-dedup -o big --max-mem 1G --report big.json corpus again
ok "... keeps what a run without it keeps" diff -r big corp-1/out
exit_is 2 "cp-dedup: standard input is refused under mpirun" run 2 cp-dedup -o x -
done_testing
