#!/bin/sh
# bench/train.sh: training throughput on the GPT-2 124M shape (B=4, T=64, fp32), side by side:
# cp-train, PyTorch (Debian's python3-torch, the same model in plain torch: tests/ref) with the
# same threads, and the OpenBLAS sgemm ceiling (the step's matrix products alone, the better of
# OpenBLAS's own threading and OpenMP over tiles, the fastest of 12 timings, against
# cp-train's fastest step). Prints tokens/s (the median step's), the ratios, peak memory.
# Run it on an otherwise idle machine: on a shared one every figure moves with the load.
# PyTorch runs as its users run it, torch.set_num_threads(THREADS); the script checks that it
# has them (torch.get_num_threads()) and uses them (its CPU seconds over the steps' wall time),
# and names the BLAS it calls, warning loudly when it falls short (bench/lib.sh).
# usage: bench/train.sh [THREADS] [STEPS]      (BUILD names the build directory)
set -eu
cd "$(dirname "$0")/.."
SRC=$PWD
: "${BUILD:=$SRC/build}"
. bench/lib.sh
bench_machine "$BUILD/bin/cp-train"
THREADS=${1:-$(nproc)}
STEPS=${2:-6}
PY=${TORCH_PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cp-bench-train.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# data: synthetic token documents, vocabulary 50257, packed to T=64
"$BUILD/tests/test-gpt2-data" tokens "$TMP/tok.shard" 50257 400 1 400
"$BUILD/bin/cp-pack" -T 64 --valid-frac 0 -o "$TMP/seqs" "$TMP/tok.shard" >/dev/null

# the OpenBLAS sgemm ceiling: every matrix product of one step (forward, and the two of
# backward), timed two ways, the better one kept: OpenBLAS threading itself, and OpenMP over
# tiles with single-threaded OpenBLAS (what cp-train does)
cat >"$TMP/ceil.c" <<'CEOF'
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float *buf(size_t n) { float *p = malloc(n * 4); for (size_t i = 0; i < n; i++) p[i] = (float)(i % 7) * 0.01f; return p; }
static int tiled;
static void mm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	if (!tiled) {
		cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	int nti = (M + 127) / 128, ntj = (N + 511) / 512;
	#pragma omp parallel for schedule(dynamic, 1)
	for (int t = 0; t < nti * ntj; t++) {
		int i0 = t / ntj * 128, j0 = t % ntj * 512, m = M - i0 < 128 ? M - i0 : 128, n = N - j0 < 512 ? N - j0 : 512;
		cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, K, 1,
			    ta ? A + i0 : A + (size_t)i0 * lda, lda, tb ? B + (size_t)j0 * ldb : B + j0, ldb, beta, C + (size_t)i0 * ldc + j0, ldc);
	}
}
int main(int argc, char **argv)
{
	int th = atoi(argv[1]), BT = 256, C = 768, V = 50257, L = 12;
	int sh[5][2] = { { C, 3 * C }, { C, C }, { C, 4 * C }, { 4 * C, C }, { C, V } };
	float *a = buf((size_t)BT * 4 * C), *w = buf((size_t)V * C), *o = buf((size_t)BT * V), *g = buf((size_t)V * C);
	double best = 1e9;
	omp_set_num_threads(th);
	for (tiled = 0; tiled < 2; tiled++) {
		openblas_set_num_threads(tiled ? 1 : th);
		for (int rep = 0; rep < 3; rep++) {
			double t0 = now();
			for (int k = 0; k < 5; k++) {
				int in = sh[k][0], out = sh[k][1], n = k == 4 ? 1 : L;
				for (int l = 0; l < n; l++) {
					mm(0, 0, BT, out, in, a, in, w, out, 0, o, out);
					mm(0, 1, BT, in, out, o, out, w, out, 0, a, in);
					mm(1, 0, in, out, BT, a, in, o, out, 1, g, out);
				}
			}
			double t = now() - t0;
			if (t < best) best = t;
		}
	}
	printf("%.1f\n", BT / best);
	return 0;
}
CEOF
cc -O2 -fopenmp -o "$TMP/ceil" "$TMP/ceil.c" -lopenblas
ceil_first=$("$TMP/ceil" "$THREADS")

# cp-train: median tokens/s of the steps after the first (which faults its memory in), and
# the fastest of them, for the share of the ceiling: the ceiling is the fastest of its
# timings, so the step set against it is cp-train's fastest (like with like; the median's
# share is printed beside it)
/usr/bin/time -f %M -o "$TMP/cp.mem" "$BUILD/bin/cp-train" -o "$TMP/run" --train "$TMP/seqs/train" \
	--model gpt2 --batch 4 --seq 64 --steps "$STEPS" --warmup 1 --threads "$THREADS" \
	--eval-every 0 --keep 1 >/dev/null
sed 1d "$TMP/run/log.jsonl" | sed 's/.*"tokens_per_s":\([0-9.]*\).*/\1/' | sort -n >"$TMP/cp.tps"
cp_tps=$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' "$TMP/cp.tps")
cp_best=$(tail -1 "$TMP/cp.tps")
cp_mem=$(awk '{printf "%.0f", $1/1024}' "$TMP/cp.mem")

# PyTorch: the same model, AdamW, same threads
cat >"$TMP/torch_bench.py" <<PYEOF
import ctypes, os, sys, time, torch
sys.path.insert(0, "$SRC/tests/ref")
from gpt2_torch_ref import forward
torch.set_num_threads($THREADS)
torch.manual_seed(0)
cfg = {"n_embd": 768, "n_head": 12, "n_layer": 12}
V, P, C, L = 50257, 1024, 768, 12
p = {"transformer.wte.weight": torch.randn(V, C) * 0.02, "transformer.wpe.weight": torch.randn(P, C) * 0.01,
     "transformer.ln_f.weight": torch.ones(C), "transformer.ln_f.bias": torch.zeros(C)}
for l in range(L):
    h = "transformer.h.%d." % l
    p[h + "ln_1.weight"] = torch.ones(C); p[h + "ln_1.bias"] = torch.zeros(C)
    p[h + "ln_2.weight"] = torch.ones(C); p[h + "ln_2.bias"] = torch.zeros(C)
    p[h + "attn.c_attn.weight"] = torch.randn(C, 3 * C) * 0.02; p[h + "attn.c_attn.bias"] = torch.zeros(3 * C)
    p[h + "attn.c_proj.weight"] = torch.randn(C, C) * 0.02; p[h + "attn.c_proj.bias"] = torch.zeros(C)
    p[h + "mlp.c_fc.weight"] = torch.randn(C, 4 * C) * 0.02; p[h + "mlp.c_fc.bias"] = torch.zeros(4 * C)
    p[h + "mlp.c_proj.weight"] = torch.randn(4 * C, C) * 0.02; p[h + "mlp.c_proj.bias"] = torch.zeros(C)
for v in p.values():
    v.requires_grad_(True)
opt = torch.optim.AdamW(list(p.values()), lr=5e-4, weight_decay=0.1)
tok = torch.randint(0, V, (4, 64))
times = []
for s in range($STEPS):
    if s == 1:
        c1, w1 = time.process_time(), time.perf_counter()
    t0 = time.time()
    opt.zero_grad()
    _, loss = forward(p, cfg, tok)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
    opt.step()
    times.append(time.time() - t0)
cpus = (time.process_time() - c1) / (time.perf_counter() - w1)
t = sorted(times[1:])[len(times[1:]) // 2]
# the BLAS torch calls: the library loaded, asked as OpenBLAS
blas = "?"
for l in open("/proc/self/maps"):
    f = l.split()[-1]
    if "blas" in os.path.basename(f):
        blas = f
        try:
            b = ctypes.CDLL(f)
            b.openblas_get_corename.restype = ctypes.c_char_p
            blas += " (OpenBLAS, kernel %s, %d threads)" % (b.openblas_get_corename().decode(), b.openblas_get_num_threads())
        except (OSError, AttributeError):
            pass
        break
print("%.1f %d %.2f %s" % (256 / t, torch.get_num_threads(), cpus, blas))
PYEOF
if "$PY" -c 'import torch' 2>/dev/null; then
	/usr/bin/time -f %M -o "$TMP/pt.mem" "$PY" "$TMP/torch_bench.py" >"$TMP/pt.out"
	read -r pt_tps pt_threads pt_cpus pt_blas <"$TMP/pt.out"
	pt_mem=$(awk '{printf "%.0f", $1/1024}' "$TMP/pt.mem")
else
	pt_tps=0 pt_mem=0
fi

# measured twice, around the others, the better kept: the machine may be shared
ceil_tps=$(printf '%s\n%s\n' "$ceil_first" "$("$TMP/ceil" "$THREADS")" | sort -n | tail -1)

echo "GPT-2 124M, B=4 T=64 fp32, $THREADS threads, median of $STEPS steps"
printf '%-28s %12s %10s %12s\n' what tokens/s s/step peak_MB
printf '%-28s %12s %10.2f %12s\n' cp-train "$cp_tps" "$(echo "256 / $cp_tps" | bc -l)" "$cp_mem"
[ "$pt_tps" != 0 ] && printf '%-28s %12s %10.2f %12s\n' "pytorch $("$PY" -c 'import torch; print(torch.__version__)')" "$pt_tps" "$(echo "256 / $pt_tps" | bc -l)" "$pt_mem"
printf '%-28s %12s %10.2f %12s\n' "openblas sgemm ceiling" "$ceil_tps" "$(echo "256 / $ceil_tps" | bc -l)" -
r_pt=-
if [ "$pt_tps" != 0 ]; then
	r_pt=$(printf '%.2fx' "$(echo "$cp_tps / $pt_tps" | bc -l)")
	echo "cp-train / pytorch: $r_pt"
	echo "pytorch: torch.get_num_threads() $pt_threads, $pt_cpus CPUs busy over the steps; BLAS $pt_blas"
	[ "$pt_threads" = "$THREADS" ] ||
		bench_warn "PyTorch has $pt_threads threads, not the $THREADS asked: the ratio against it means little"
	if [ "$(echo "$pt_cpus < 0.75 * $THREADS" | bc -l)" = 1 ]; then
		bench_warn "PyTorch kept $pt_cpus CPUs busy of its $THREADS threads (a busy machine, or PyTorch short of threads): the ratio against it means little"
	fi
fi
r_ceil=$(printf '%.0f%%' "$(echo "100 * $cp_best / $ceil_tps" | bc -l)")
r_ceil_med=$(printf '%.0f%%' "$(echo "100 * $cp_tps / $ceil_tps" | bc -l)")
echo "cp-train / sgemm ceiling: $r_ceil (its fastest step, $cp_best tokens/s, against the ceiling's fastest timing; its median step: $r_ceil_med)"
pt_v=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)
bench_row "training, GPT-2 124M, B=4 T=64 fp32, $THREADS threads (\`bench/train.sh\`)" \
	"$cp_tps tokens/s, $cp_mem MB" "PyTorch $pt_v: $pt_tps tokens/s, $pt_mem MB" "$r_pt" 2x
bench_row "  against the OpenBLAS sgemm ceiling (the step's products alone, fastest of 12 timings: $ceil_tps tokens/s; cp-train's fastest step: $cp_best)" \
	"$r_ceil (median step: $r_ceil_med)" "" "" "70%"
