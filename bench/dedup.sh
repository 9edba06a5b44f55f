#!/bin/sh
# bench/dedup.sh: cp-hash + cp-dedup against CodeParrot's preprocessing in Python, side by
# side on the same corpus and machine, in one run:
#   1. hash + exact dedup + filters: cp-hash --minhash none | cp-dedup --no-near --drop-prob 1
#      (at -j1 and -jN) against tests/ref/codeparrot_ref.py (one process), and whether the
#      counts agree; beside them, what reading the files alone costs (bench/read-floor.c);
#   The full path, what a user who wants the clean corpus waits for, is the pipe with the
#   corpus written: cp-hash SRC | cp-dedup -o clean/ -; beside it both stages writing shards,
#   and the full path with CP_SYNC=1 (every shard synced to disk before its rename; by
#   default shards are not, as man/cp-shard.5 says, and the peers' files are not either).
#   The report-only rows send cp-hash --no-content records through a pipe into cp-dedup -n:
#   what the peers do (read, decide, report), and whether that gives the full run's report;
#   2. near dedup: cp-hash + cp-dedup (exact + near) against datasketch MinHashLSH with the
#      same parameters (256 permutations, threshold 0.85, same tokens), end to end and LSH
#      alone, and the share of datasketch's confirmed pairs that cp-dedup also joins, with
#      cp-hash's default MinHash scheme (datasketch's: equal signatures) and with
#      --minhash xxh3, and what each costs cp-hash.
# usage: nice bench/dedup.sh [CORPUS...]   (default: the running python3's stdlib + site-packages)
# Environment: BUILD (default ./build), JOBS (default: all CPUs), PYTHON (default python3),
# REPEAT (runs of each command, the least time kept; default 3).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
: "${BUILD:=$root/build}" "${PYTHON:=python3}" "${JOBS:=$(nproc)}" "${REPEAT:=3}"
PATH="$BUILD/bin:$PATH"
. "$here/lib.sh"
bench_machine "$BUILD/bin/cp-dedup"
[ $# -gt 0 ] || set -- "$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")"
"$PYTHON" -c "import datasketch" 2>/dev/null || {
	echo "bench/dedup.sh: needs datasketch (pip install datasketch)" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cp-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

field() { "$PYTHON" -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
rate() { "$PYTHON" -c "print('%.1f' % ($1 / 1e6 / $2))"; }
ratio() { "$PYTHON" -c "print('%.1fx' % ($1 / $2))"; }
# measure 'SHELL COMMAND' ['SETUP'] -> "WALL CPU": seconds of wall clock and of CPU (user + system of
# everything it ran), each the least of REPEAT runs (ours and the peers' alike), as a shared
# machine's speed wanders from minute to minute
measure() {
	"$PYTHON" -c '
import resource, subprocess, sys, time
best = None
for _ in range(int(sys.argv[2])):
    if sys.argv[3]:
        subprocess.run(["sh", "-c", sys.argv[3]], check=True)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(["sh", "-c", sys.argv[1]], check=True)
    wall = time.perf_counter() - t
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r.ru_utime + r.ru_stime - r0.ru_utime - r0.ru_stime
    best = (wall, cpu) if best is None else (min(best[0], wall), min(best[1], cpu))
print("%.2f %.2f" % best)' "$1" "$REPEAT" "${2:-}"
}
# Exact dedup and filters need no MinHash signatures (the peer makes none): --minhash none.
run_cp() { # JOBS NEAR(yes/no) [CP-HASH FLAGS] -> "WALL CPU"; report in $tmp/cp.json
	flags="--no-near --drop-prob 1"
	[ "$2" = yes ] && flags="--no-filters --pairs $tmp/ours.jsonl"
	[ "$2" = yes ] || set -- "$1" "$2" "--minhash none ${3:-}"
	measure "cp-hash -q -j$1 ${3:-} -o '$tmp/h/' $corpus &&
		cp-dedup -j$1 -o '$tmp/out' $flags --report '$tmp/cp.json' '$tmp/h' 2>/dev/null" \
		"rm -rf '$tmp/out' '$tmp/h'"
}
# The same work as the peers do, no more: they read the files and report, and write no
# corpus. cp-hash's records cross a pipe without the documents' bytes (--no-content: hash,
# statistics, signature and size), and cp-dedup -n decides and reports. run_pipe_content:
# the same with the bytes in the records, as a corpus-making run needs them.
run_pipe() { # JOBS NEAR(yes/no) [CP-HASH FLAGS] -> "WALL CPU"; report in $tmp/cp.json
	run_pipe_content "$1" "$2" "--no-content ${3:-}"
}
run_pipe_content() { # JOBS NEAR(yes/no) [CP-HASH FLAGS] -> "WALL CPU"; report in $tmp/cp.json
	flags="--no-near --drop-prob 1"
	[ "$2" = yes ] && flags="--no-filters --pairs $tmp/ours.jsonl"
	[ "$2" = yes ] || set -- "$1" "$2" "--minhash none ${3:-}"
	measure "cp-hash -q -j$1 ${3:-} $corpus |
		cp-dedup -n -j$1 $flags --report '$tmp/cp.json' 2>/dev/null"
}
# The full path: the pipe, and cp-dedup writing the clean corpus.
run_pipe_write() { # JOBS NEAR(yes/no) -> "WALL CPU"; report in $tmp/cp.json
	flags="--no-near --drop-prob 1" hflags="--minhash none"
	[ "$2" = yes ] && flags="--no-filters" hflags=
	measure "cp-hash -q -j$1 $hflags $corpus |
		cp-dedup -j$1 -o '$tmp/out' $flags --report '$tmp/cp.json' - 2>/dev/null" "rm -rf '$tmp/out'"
}
# table_row LABEL "WALL CPU" "PEER_WALL PEER_CPU" PEER GOAL: a row of bench/all's table
table_row() {
	set -- "$1" $2 $3 "$4" "$5"
	bench_row "$1" "$2 s wall, $3 s CPU" "$6" "$(ratio "$4" "$2") wall, $(ratio "$5" "$3") CPU" "$7"
}
row() { # LABEL "WALL CPU" "PEER_WALL PEER_CPU"
	set -- "$1" $2 $3
	printf '%-40s %7s %7s %7s %8s %8s\n' "$1" "$2" "$3" "$(rate "$bytes" "$2")" \
		"$(ratio "$4" "$2")" "$(ratio "$5" "$3")"
}
header() { printf '%-40s %7s %7s %7s %8s %8s\n' "$1" "wall s" "CPU s" "MB/s" "x wall" "x CPU"; }
# cmp_reports OURS OTHER: "identical counts", or which of OTHER's keys differ
cmp_reports() {
	"$PYTHON" - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def differs(k):
    if k == "top_unique_share":
        return any(abs(a[k][q] - b[k][q]) > 1e-12 for q in b[k])
    return k != "seconds" and a[k] != b[k]
diff = [k for k in b if differs(k)]
print("identical counts" if not diff else "DIFFER in " + ", ".join(diff))
PY
}
corpus="$*"

echo "corpus: $corpus"
echo "machine: $(nproc) CPUs; JOBS=$JOBS; each time the least of $REPEAT runs"
echo

# ---- 1. hash + exact dedup + filters ----
m_cp1=$(run_cp 1 no)
cp "$tmp/cp.json" "$tmp/cp1.json"
m_cpn=$(run_cp "$JOBS" no)
m_pipe1=$(run_pipe 1 no)
m_pipen=$(run_pipe "$JOBS" no)
cp "$tmp/cp.json" "$tmp/pipe.json"
m_pipecn=$(run_pipe_content "$JOBS" no)
same_pipe=$(cmp_reports "$tmp/pipe.json" "$tmp/cp.json")
m_full=$(run_pipe_write "$JOBS" no)
# the same with every shard synced before its rename (man/cp-shard.5: the default is not)
m_fullsync=$(export CP_SYNC=1; run_pipe_write "$JOBS" no)
# what the clean corpus takes on disk at cp-dedup's default level, against its documents' bytes
clean=$(cat "$tmp"/out/*.shard | wc -c)
clean_docs=$(field "$tmp/cp.json" "r['bytes_out']")
bytes=$(field "$tmp/cp1.json" "r['bytes_in']")
cc -O2 -o "$tmp/read-floor" "$here/read-floor.c"
m_floor=$(measure "'$tmp/read-floor' $corpus >/dev/null")
m_py=$(measure "'$PYTHON' '$root/tests/ref/codeparrot_ref.py' --drop-prob 1 $corpus >'$tmp/ref.json'")
same=$(cmp_reports "$tmp/cp1.json" "$tmp/ref.json")
header "hash + exact dedup + filters"
row "Python reference (1 process)" "$m_py" "$m_py"
row "cp-hash + cp-dedup -j1" "$m_cp1" "$m_py"
row "cp-hash | cp-dedup -j$JOBS -o clean/ -" "$m_full" "$m_py"
row "  the same, CP_SYNC=1 (shards synced)" "$m_fullsync" "$m_py"
row "cp-hash + cp-dedup -j$JOBS" "$m_cpn" "$m_py"
row "cp-hash | cp-dedup -n -j1 (report only)" "$m_pipe1" "$m_py"
row "cp-hash | cp-dedup -n -j$JOBS (report only)" "$m_pipen" "$m_py"
row "  the same, bytes through the pipe" "$m_pipecn" "$m_py"
row "reading the files alone (read-floor, C)" "$m_floor" "$m_py"
echo "agreement with the reference (--drop-prob 1): $same"
echo "report-only pipe: cp-hash --no-content against the bytes through the pipe: $same_pipe"
echo "clean corpus: $("$PYTHON" -c "print('%.1f MB of shards for %.1f MB of documents (%.2fx)' % ($clean / 1e6, $clean_docs / 1e6, $clean_docs / $clean))")"
echo "docs in/out: $(field "$tmp/cp1.json" "r['docs_in'], r['docs_out']"); exact duplicates: $(field "$tmp/cp1.json" "r['exact_duplicates']"); removed: $(field "$tmp/cp1.json" "r['removed']")"
echo "top_unique_share: $(field "$tmp/cp1.json" "r['top_unique_share']")"
echo
mb=$("$PYTHON" -c "print(round($bytes / 1e6))")
py="CodeParrot's rules in Python, 1 process: $(echo $m_py | cut -d' ' -f1) s"
table_row "hash + exact dedup + filters, $mb MB, $JOBS threads, the clean corpus written: \`cp-hash --minhash none SRC \| cp-dedup --no-near -o clean/ -\`" \
	"$m_full" "$m_py" "$py" 30x
table_row "  the same, every shard synced to disk before its rename (\`CP_SYNC=1\`)" "$m_fullsync" "$m_py" "" ""
table_row "  the same, both stages writing shards (\`cp-hash -o docs/\`, then \`cp-dedup -o clean/ docs/\`)" "$m_cpn" "$m_py" "" ""
table_row "  report only, no corpus written: \`cp-hash --no-content \| cp-dedup -n\`" "$m_pipen" "$m_py" "" 50x
table_row "  report only, the documents' bytes through the pipe" "$m_pipecn" "$m_py" "" ""
table_row "  reading the files alone (\`bench/read-floor.c\`)" "$m_floor" "$m_py" "" ""

# ---- 2. near dedup ----
m_ds=$(measure "'$PYTHON' '$here/near_datasketch.py' --pairs '$tmp/ds.jsonl' $corpus >'$tmp/ds.json'")
m_nearp1=$(run_pipe 1 yes)
m_nearpn=$(run_pipe "$JOBS" yes)
cp "$tmp/ours.jsonl" "$tmp/ours-pipe.jsonl"
m_nearpcn=$(run_pipe_content "$JOBS" yes)
m_near=$(run_cp "$JOBS" yes)
m_near1=$(run_cp 1 yes)
m_nearfull=$(run_pipe_write "$JOBS" yes)
m_nearsync=$(export CP_SYNC=1; run_pipe_write "$JOBS" yes)
ds_lsh=$(field "$tmp/ds.json" "'%.3f' % r['seconds']['lsh']")
ds_mh=$(field "$tmp/ds.json" "'%.2f' % (r['seconds']['minhash'] + r['seconds']['read_exact'])")
cp_lsh=$(field "$tmp/cp.json" "'%.4f' % max(r['seconds']['near'], 0.0001)")
header "near dedup (exact first, 256 perm, J 0.85)"
row "datasketch: read + MinHash + LSH" "$m_ds" "$m_ds"
row "cp-hash + cp-dedup -j1 (everything)" "$m_near1" "$m_ds"
row "cp-hash | cp-dedup -j$JOBS -o clean/ -" "$m_nearfull" "$m_ds"
row "  the same, CP_SYNC=1 (shards synced)" "$m_nearsync" "$m_ds"
row "cp-hash + cp-dedup -j$JOBS (everything)" "$m_near" "$m_ds"
row "cp-hash | cp-dedup -n -j1 (report, pairs)" "$m_nearp1" "$m_ds"
row "cp-hash | cp-dedup -n -j$JOBS (report, pairs)" "$m_nearpn" "$m_ds"
row "  the same, bytes through the pipe" "$m_nearpcn" "$m_ds"
printf '%-40s %7s %7s %7s %8s\n' "datasketch: MinHashLSH query+insert" "$ds_lsh" "" "" "1.0x"
printf '%-40s %7s %7s %7s %8s\n' "cp-dedup: LSH + union-find" "$cp_lsh" "" "" "$(ratio "$ds_lsh" "$cp_lsh")"
echo "(datasketch's read + exact + MinHash part alone took ${ds_mh}s)"
echo "datasketch: $(field "$tmp/ds.json" "'bands %d rows %d; %d docs with MinHash, %d candidates, %d confirmed pairs' % (r['bands'], r['rows'], r['docs_with_minhash'], r['candidates'], r['pairs'])")"
echo "cp-dedup:   $(field "$tmp/cp.json" "'bands %d rows %d; %d docs with MinHash, %d near duplicates removed, %d bytes/doc near index' % (r['near']['bands'], r['near']['rows'], r['near']['docs'], r['near_duplicates'], r['near']['bytes_per_doc'])")"
"$PYTHON" "$here/pairs_recall.py" "$tmp/ds.jsonl" "$tmp/ours.jsonl" >"$tmp/recall.json"
echo "pairs of the report-only pipe (--no-content) against the full run's: $(cmp -s "$tmp/ours.jsonl" "$tmp/ours-pipe.jsonl" && echo identical || echo DIFFER)"
echo "pairs: cp-dedup joins $(field "$tmp/recall.json" "'%d of datasketch\\'s %d confirmed pairs (%.1f%%; goal >= 95%%); datasketch agrees with %.1f%% of cp-dedup\\'s joins' % (r['found'], r['peer_pairs'], 100 * r['recall'], 100 * r['agreement'])")"
ds="datasketch, read + MinHash + LSH: $(echo $m_ds | cut -d' ' -f1) s"
table_row "near dedup (exact first), the clean corpus written: \`cp-hash SRC \| cp-dedup -o clean/ -\`" \
	"$m_nearfull" "$m_ds" "$ds" 30x
table_row "  the same, every shard synced to disk before its rename (\`CP_SYNC=1\`)" "$m_nearsync" "$m_ds" "" ""
table_row "  the same, both stages writing shards" "$m_near" "$m_ds" "" ""
table_row "  report and pairs only, no corpus written: \`cp-hash --no-content \| cp-dedup -n --pairs\`" \
	"$m_nearpn" "$m_ds" "" 50x
bench_row "  LSH + clustering alone" "$cp_lsh s" "datasketch MinHashLSH: $ds_lsh s" "$(ratio "$ds_lsh" "$cp_lsh")" ""
recall=$(field "$tmp/recall.json" "'%d of %d (%.1f%%)' % (r['found'], r['peer_pairs'], 100 * r['recall'])")
# The same with cp-hash's other scheme.
m_near_xx=$(run_cp "$JOBS" yes "--minhash xxh3")
"$PYTHON" "$here/pairs_recall.py" "$tmp/ds.jsonl" "$tmp/ours.jsonl" >"$tmp/recall-xx.json"
echo "pairs with cp-hash --minhash xxh3: cp-dedup joins $(field "$tmp/recall-xx.json" "'%d of datasketch\\'s %d confirmed pairs (%.1f%%); datasketch agrees with %.1f%% of cp-dedup\\'s joins' % (r['found'], r['peer_pairs'], 100 * r['recall'], 100 * r['agreement'])")"
header "cost of each MinHash scheme"
row "cp-hash + cp-dedup -j$JOBS, xxh3" "$m_near_xx" "$m_ds"
for scheme in datasketch xxh3 none; do
	row "cp-hash -j$JOBS --minhash $scheme (alone)" \
		"$(measure "cp-hash -q -j$JOBS --minhash $scheme -o '$tmp/h/' $corpus" "rm -rf '$tmp/h'")" "$m_ds"
done
# The ceiling for any other hash family: datasketch itself with another MinHash seed.
"$PYTHON" "$here/near_datasketch.py" --seed 2 --pairs "$tmp/ds2.jsonl" $corpus >/dev/null
"$PYTHON" "$here/pairs_recall.py" "$tmp/ds.jsonl" "$tmp/ds2.jsonl" >"$tmp/recall2.json"
echo "baseline: datasketch with seed 2 joins $(field "$tmp/recall2.json" "'%d of seed 1\\'s %d pairs (%.1f%%)' % (r['found'], r['peer_pairs'], 100 * r['recall'])")"
bench_row "near-duplicate pairs datasketch finds, found by us" \
	"$recall; $(field "$tmp/recall-xx.json" "'%.1f%%' % (100 * r['recall'])") with \`--minhash xxh3\`" \
	"datasketch with another seed: $(field "$tmp/recall2.json" "'%.1f%%' % (100 * r['recall'])")" "" 95%
