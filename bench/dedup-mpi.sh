#!/bin/sh
# bench/dedup-mpi.sh: the data stages on 2 MPI ranks against 1, on the real corpus, run as a
# user runs them: mpirun -np N cp-hash -j1 -o docs/ CORPUS, then mpirun -np N cp-dedup -j1
# -o clean/ docs/ (exact + near dedup, filters, the clean corpus written). N = 1 and 2 take
# turns, REPEAT rounds, the least of each kept. Prints wall and CPU seconds (user + system of
# every process, mpirun's too), MB/s, each rank's wall and CPU seconds per stage (of the
# fastest run), the ratio of 2 ranks' throughput to 1 rank's (goal 1.6x) and the CPU view
# beside it: what 2 ranks spend in all against 1, and their critical path (per stage, the
# busier rank's CPU seconds), the ratio a machine with a free core per rank would give at
# most; and whether both wrote the same documents, kept set and report. Not a test.
# usage: bench/dedup-mpi.sh [CORPUS...]   (default: scripts/default-corpus, the README's)
# Environment: BUILD (default ./build), PYTHON, REPEAT (default 3).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
: "${BUILD:=$root/build}" "${PYTHON:=python3}" "${REPEAT:=3}"
. "$here/lib.sh"
bench_machine "$BUILD/bin/cp-dedup"
[ $# -gt 0 ] || set -- $("$root/scripts/default-corpus")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cp-bench-mpi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OMPI_MCA_btl_vader_single_copy_mechanism=none
echo "corpus: $*"
"$PYTHON" - "$BUILD/bin" "$tmp" "$REPEAT" "$@" <<'PY'
import json, os, resource, subprocess, sys, time
bindir, tmp, repeat, corpus = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]
STAGES = ("hash", "dedup")

def cmd(stage, out):
    if stage == "hash":
        return [bindir + "/cp-hash", "-q", "-j1", "-o", out + "/docs/"] + corpus
    return [bindir + "/cp-dedup", "-j1", "-o", out + "/clean/", "--report",
            out + "/report.json", out + "/docs"]

def once(n):
    """One run on N ranks: (wall, cpu, {stage: wall}, {stage: [(wall, cpu) a rank]})"""
    out = "%s/%d" % (tmp, n)
    subprocess.run(["rm", "-rf", out], check=True)
    os.makedirs(out)
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    walls, ranks = {}, {}
    for st in STAGES:
        # each rank under /usr/bin/time: its seconds into OUT/time.STAGE.RANK
        wrap = 'exec /usr/bin/time -f "%%e %%U %%S" -o "%s/time.%s.$OMPI_COMM_WORLD_RANK" "$@"' % (
            out, st)
        s = time.perf_counter()
        with open(out + "/" + st + ".err", "w") as err:
            subprocess.run(MPIRUN + ["-np", str(n), "sh", "-c", wrap, "sh"] + cmd(st, out),
                           check=True, stderr=err, stdout=subprocess.DEVNULL)
        walls[st] = time.perf_counter() - s
        ranks[st] = []
        for r in range(n):
            e, u, sy = open("%s/time.%s.%d" % (out, st, r)).read().split("\n")[-2].split()
            ranks[st].append((float(e), float(u) + float(sy)))
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, walls, ranks

best = {}
for _ in range(repeat):
    for n in (1, 2):
        r, b = once(n), best.get(n)
        if b is not None:	# the fastest run, with the least CPU of any
            r = (r if r[0] < b[0] else b)[:1] + (min(r[1], b[1]),) + (r if r[0] < b[0] else b)[2:]
        best[n] = r

rep = json.load(open(tmp + "/1/report.json"))
mb = rep["bytes_in"] / 1e6
print("%.1f MB in %d documents; cp-hash -j1 -o docs/, then cp-dedup -j1 -o clean/ docs/ "
      "(exact + near, filters), under mpirun -np N; the least of %d runs, N = 1 and 2 in turn"
      % (mb, rep["docs_in"], repeat))
print("%-6s %8s %8s %8s %10s %10s" % ("ranks", "wall s", "CPU s", "MB/s", "cp-hash s", "cp-dedup s"))
for n in (1, 2):
    w, c, sw, _ = best[n]
    print("%-6d %8.2f %8.2f %8.1f %10.2f %10.2f" % (n, w, c, mb / w, sw["hash"], sw["dedup"]))
print("each rank, of the fastest run (wall s / CPU s):")
crit = {}
for n in (1, 2):
    for st in STAGES:
        rk = best[n][3][st]
        crit[n] = crit.get(n, 0) + max(c for _, c in rk)
        print("  %d rank%s, %-8s %s" % (n, "s" if n > 1 else " ", "cp-" + st + ":",
              ", ".join("rank %d %.2f / %.2f" % (i, e, c) for i, (e, c) in enumerate(rk))))
cpu_ranks = {n: sum(c for st in STAGES for _, c in best[n][3][st]) for n in (1, 2)}
ratio = best[1][0] / best[2][0]
print("2 ranks against 1: %.2fx the throughput (wall; goal 1.6x)" % ratio)
print("CPU view: the ranks' CPU seconds %.2f on 2 against %.2f on 1 (%.2fx the work); the "
      "critical path (per stage the busier rank's CPU) %.2f s against %.2f: %.2fx at most with a "
      "free core per rank" % (cpu_ranks[2], cpu_ranks[1], cpu_ranks[2] / cpu_ranks[1], crit[2],
                              crit[1], crit[1] / crit[2]))

def same():
    a, b = tmp + "/1", tmp + "/2"
    for d in ("docs", "clean"):
        fa, fb = sorted(os.listdir(a + "/" + d)), sorted(os.listdir(b + "/" + d))
        if fa != fb or any(subprocess.run(["cmp", "-s", "%s/%s/%s" % (a, d, f), "%s/%s/%s" % (b, d, f)]).returncode
                           for f in fa):
            return "NO (%s/ differs)" % d
    ra, rb = (json.load(open(p + "/report.json")) for p in (a, b))
    for r in (ra, rb):
        for k in ("seconds", "outputs", "ranks", "exact_bytes_per_unique"):
            r.pop(k, None)
        r.get("near", {}).pop("bytes_per_doc", None)
    return "yes" if ra == rb else "NO (the reports differ)"
print("2 ranks wrote 1 rank's documents, kept set and report:", same())
with open(tmp + "/row", "w") as f:
    f.write("%.2f s wall, %.2f s CPU (%.1f MB/s)|1 rank: %.2f s wall, %.2f s CPU|%.2fx wall, critical path %.2fx\n"
            % (best[2][0], best[2][1], mb / best[2][0], best[1][0], best[1][1], ratio, crit[1] / crit[2]))
PY
IFS='|' read -r ours peer ratio <"$tmp/row"
bench_row "2 ranks against 1 rank, real corpus: \`mpirun -np 2 cp-hash -j1 -o docs/ SRC\`, then \`mpirun -np 2 cp-dedup -j1 -o clean/ docs/\`" \
	"$ours" "$peer" "$ratio" 1.6x
