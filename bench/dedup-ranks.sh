#!/bin/sh
# bench/dedup-ranks.sh: cp-dedup over MPI ranks at scale, simulated. Makes DOCS synthetic
# documents with the seed's duplicate distribution (the most copied 0.1% of the unique files
# make 15% of all files, 1% make 35%, 10% make 66%; the rest appear once) and near duplicates
# (one singleton in 20 is a variant of an earlier unique file, 2 of its 60 tokens changed),
# hashes them once (cp-hash --jsonl, MinHash SCHEME), then runs exact and near dedup (-n: decide
# and report) by one process and on 1, 2 and 4 ranks, printing the seconds (and the CPU
# seconds of all its processes, user + system: the machine may be shared), each rank's bytes
# of exact set and LSH index (the report's) and its peak RSS, and the duplicates found; and
# whether every run decided as the one process did; the machine line first (bench/lib.sh).
# Not a test.
#   bench/dedup-ranks.sh [DOCS]    (default 200000; J threads per rank, default 1;
#                                   SCHEME xxh3 (default) or datasketch; RANKS "1 2 4";
#                                   PART input parts of PART bytes, default 8000000;
#                                   KEEP=DIR: the hashed documents kept in DIR/docs-DOCS,
#                                   and taken from there when a run made them before)
set -eu
cd "$(dirname "$0")/.."
: "${BUILD:=$PWD/build}" "${PYTHON:=python3}" "${J:=1}" "${SCHEME:=xxh3}" "${RANKS:=1 2 4}"
: "${PART:=8000000}"
export CP_DEDUP_PART_BYTES=$PART	# parts enough to share among the ranks
DOCS=${1:-200000}
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-dedup-ranks.XXXXXX")
trap 'rm -rf "$T"' EXIT
D=$T/docs
if [ -n "${KEEP:-}" ]; then
	D=$KEEP/docs-$DOCS-$SCHEME
	mkdir -p "$KEEP"
fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none"
. bench/lib.sh
bench_machine "$BUILD/bin/cp-dedup"

now() { date +%s.%N; }
t0=$(now)
if [ -f "$D.made" ]; then
	echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem/ {print $2}') GB; $DOCS documents ($SCHEME) hashed by an earlier run: $(du -sh "$D" | cut -f1) of shards in $D"
else
rm -rf "$D"
"$PYTHON" - "$DOCS" <<'PY' | "$BUILD/bin/cp-hash" -q -j2 --minhash "$SCHEME" --jsonl -o "$D/" /dev/stdin
import json, random, sys
n = int(sys.argv[1])
rng = random.Random(14)
unique = max(10, int(0.378 * n))	# 90% of the unique files appear once and make 34% of all
counts, done_u, done_n = [], 0, 0
for frac_u, frac_n in ((0.001, 0.15), (0.01, 0.35), (0.1, 0.66), (1.0, 1.0)):
    k = max(1, int(frac_u * unique)) - done_u
    m = int(frac_n * n) - done_n
    counts += [m // k + (i < m % k) for i in range(k)]
    done_u, done_n = done_u + k, done_n + m
words = ["w%04d" % i for i in range(5000)]
def tokens(u):
    r = random.Random(u)
    return [r.choice(words) for _ in range(60)]
base = {}	# a singleton that is a near variant of an earlier unique file
for u in range(done_u):
    if counts[u] == 1 and u > 100 and rng.random() < 0.05:
        base[u] = rng.randrange(u)
order = [u for u, c in enumerate(counts) for _ in range(c)]
rng.shuffle(order)
out = sys.stdout
for u in order:
    t = tokens(base.get(u, u))
    if u in base:
        for i in random.Random(u).sample(range(60), 2):
            t[i] = "v%d" % u
    text = "def f():\n" + "".join("    %s = %s(%s, %s)\n" % tuple(t[i:i + 4]) for i in range(0, 60, 4))
    out.write(json.dumps({"content": text}) + "\n")
PY
t1=$(now)
echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem/ {print $2}') GB; $DOCS documents made and hashed ($SCHEME) in $(echo "$t1 - $t0" | bc) s: $(du -sh "$D" | cut -f1) of shards"
[ -z "${KEEP:-}" ] || touch "$D.made"
fi

run() { # NAME CMD...
	local name=$1 s
	shift
	s=$(now)
	"$@" -j"$J" -n --report "$T/$name.json" "$D" >"$T/$name.out" 2>"$T/$name.err" ||
		{ echo "$name failed:"; tail -5 "$T/$name.err"; return 1; }
	"$PYTHON" - "$T/$name.json" "$T/$name.err" "$name" "$(echo "$(now) - $s" | bc)" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
err = open(sys.argv[2]).read()
rss = re.findall(r"RSS (\d+) KB", err)
cpu = sum(float(u) + float(s) for u, s in re.findall(r"CPU ([0-9.]+) ([0-9.]+) s", err))
ranks = r.get("ranks", [])
print("%-8s %7.2f s, CPU %.2f s  exact %d, near %d of %d in" % (sys.argv[3], float(sys.argv[4]),
      cpu, r["exact_duplicates"], r["near_duplicates"], r["docs_in"]))
for i, x in enumerate(ranks):
    print("         rank %d: exact set %.1f MB, LSH index %.1f MB" % (i, x["exact_bytes"] / 1e6,
          x["lsh_bytes"] / 1e6))
print("         peak RSS of each process: %s MB" % ", ".join("%.0f" % (int(k) / 1e3) for k in rss))
PY
}
TIME="/usr/bin/time -f RSS_%M_%U_%S"
run one sh -c "$TIME $BUILD/bin/cp-dedup \"\$@\" 2>&1 | sed 's/^RSS_\([0-9]*\)_\([0-9.]*\)_\([0-9.]*\)$/RSS \1 KB, CPU \2 \3 s/' >&2" sh
for n in $RANKS; do
	run "ranks$n" $MPIRUN -np "$n" sh -c \
		"$TIME $BUILD/bin/cp-dedup \"\$@\" 2>&1 | sed 's/^RSS_\([0-9]*\)_\([0-9.]*\)_\([0-9.]*\)$/RSS \1 KB, CPU \2 \3 s/' >&2" sh
done
"$PYTHON" - "$T" $RANKS <<'PY'
import json, sys
def fate(p):
    r = json.load(open(p))
    return [r[k] for k in ("docs_in", "docs_out", "bytes_out", "exact_duplicates", "near_duplicates")] + [r["removed"]]
one = fate(sys.argv[1] + "/one.json")
same = all(fate("%s/ranks%s.json" % (sys.argv[1], n)) == one for n in sys.argv[2:])
print("every run decided as the one process:", "yes" if same else "NO")
PY
