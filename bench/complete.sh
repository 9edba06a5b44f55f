#!/bin/sh
# bench/complete.sh: generation speed on the GPT-2 124M shape (random weights, fp32), greedy,
# NEW tokens after a PROMPT-token prompt, side by side: cp-complete, PyTorch with a key/value
# cache on the same weights (tests/ref/complete_torch.py, Debian's python3-torch) with the same
# threads, and the memory-bandwidth floor (the weights one token reads, at the copy bandwidth
# measured here). Prints decode tokens/s and the ratios. Figures move with the machine's load:
# run it on an idle machine (OMP_WAIT_POLICY=passive helps cp-complete on a busy one).
# PyTorch runs with torch.set_num_threads(THREADS), as its users run it; the script checks
# that it has them (bench/torch_threads.py) and warns loudly when not (bench/lib.sh).
# usage: bench/complete.sh [THREADS] [NEW] [PROMPT]      (BUILD names the build directory;
# ROUNDS, default 5, the runs of each of fp32 and bf16)
set -eu
cd "$(dirname "$0")/.."
SRC=$PWD
: "${BUILD:=$SRC/build}"
. bench/lib.sh
bench_machine "$BUILD/bin/cp-complete"
THREADS=${1:-2}
NEW=${2:-256}
PROMPT=${3:-128}
: "${ROUNDS:=5}"
PY=${TORCH_PYTHON:-/usr/bin/python3}
TOK=${GPT2_TOKENIZER:-$SRC/../shared/data/gpt2}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cp-bench-complete.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
CC="$BUILD/bin/cp-complete"

# the 124M shape with GPT-2's tokenizer, random weights
"$BUILD/tests/test-infer" hf-random "$TMP/m" 50257 1024 12 12 768 "$TOK" 1

# a prompt of exactly PROMPT tokens: the first tokens of our own source
cat common/*/*.c >"$TMP/src.txt"
head -c 1500 "$TMP/src.txt" >"$TMP/head.txt"
"$CC" -m "$TMP/m" --score "$TMP/head.txt" --json >"$TMP/score.json"
"$PY" - "$TMP" "$PROMPT" <<'PYEOF'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
t = json.load(open(d + "/score.json"))["tokens"][:n]
open(d + "/ids.txt", "w").write(" ".join(str(x["id"]) for x in t))
open(d + "/prompt.txt", "w").write("".join(x["text"] for x in t))
PYEOF

# copy bandwidth, measured before and after the runs; the better kept (load makes it vary)
bw0=$("$BUILD/tests/test-infer" copy-bw 512 "$THREADS")
best() { # the best decode_tokens_per_s of the JSON lines in $1
	"$PY" -c 'import json, sys; print(max(json.loads(l)["decode_tokens_per_s"] for l in open(sys.argv[1])))' "$1"
}
# fp32, then the same with the weights in bf16 (--bf16), in turn: the memory bandwidth
# both are bound by moves with the neighbours' load on a shared machine, and runs side by
# side in time see the same (three fp32 runs then three bf16 ones put 1.51x and 1.76x into
# two bench/all runs ten minutes apart); the best of ROUNDS each
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	i=$((i + 1))
	nice "$CC" -m "$TMP/m" -j "$THREADS" -N "$NEW" --no-eot-stop --stats --json -f "$TMP/prompt.txt" \
		>"$TMP/ours.out" 2>>"$TMP/ours.stats"
	nice "$CC" -m "$TMP/m" -j "$THREADS" -N "$NEW" --no-eot-stop --stats --json --bf16 \
		-f "$TMP/prompt.txt" >"$TMP/bf16.out" 2>>"$TMP/bf16.stats"
done
ours=$(best "$TMP/ours.stats")
bf16=$(best "$TMP/bf16.stats")
# bf16's greedy tokens against fp32's
bsame=$("$PY" -c '
import json, sys
a = json.loads(open(sys.argv[1]).readline())["ids"]
b = json.loads(open(sys.argv[2]).readline())["ids"]
k = 0
while k < min(len(a), len(b)) and a[k] == b[k]:
    k += 1
print(f"{k} of {len(a)}")' "$TMP/ours.out" "$TMP/bf16.out")
ptoks=$("$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["prompt_tokens"])' "$TMP/ours.stats")
nice "$PY" bench/torch_threads.py "$TMP/torch.threads" tests/ref/complete_torch.py "$TMP/m" "$TMP/ids.txt" \
	"$NEW" "$THREADS" >"$TMP/torch.json"
read -r pt_threads pt_cpus <"$TMP/torch.threads"
[ "$pt_threads" = "$THREADS" ] ||
	bench_warn "PyTorch has $pt_threads threads, not the $THREADS asked: the ratio against it means little"
torch=$(best "$TMP/torch.json")

# do both choose the same greedy tokens? (our text, re-scored, gives our ids)
"$PY" - "$TMP" <<'PYEOF' >"$TMP/ours.txt"
import json, sys
d = sys.argv[1]
sys.stdout.write(open(d + "/prompt.txt").read() + json.loads(open(d + "/ours.out").readline())["text"])
PYEOF
"$CC" -m "$TMP/m" --score "$TMP/ours.txt" --json >"$TMP/ours.score"
same=$("$PY" - "$TMP" "$PROMPT" <<'PYEOF'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
ours = [t["id"] for t in json.load(open(d + "/ours.score"))["tokens"]][n:]
ref = json.load(open(d + "/torch.json"))["ids"]
k = 0
while k < min(len(ours), len(ref)) and ours[k] == ref[k]:
    k += 1
print(f"{k} of {len(ref)}")
PYEOF
)

bw1=$("$BUILD/tests/test-infer" copy-bw 512 "$THREADS")
bw=$("$PY" -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))' "$bw0" "$bw1")
# weights read per token: every parameter but the position table (one row of it)
bytes=$(( 4 * (50257 * 768 + 12 * (4 * 768 + 3 * 768 * 768 + 3 * 768 + 768 * 768 + 768 + 4 * 768 * 768 + 4 * 768 + 4 * 768 * 768 + 768) + 2 * 768) ))
"$PY" - "$ours" "$torch" "$bw" "$bytes" "$THREADS" "$NEW" "$ptoks" "$same" "$TMP/row" "$bf16" "$bsame" <<'PYEOF'
import sys
ours, torch, bw, nbytes = (float(x) for x in sys.argv[1:5])
threads, new, ptoks, same = sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
bf16, bsame = float(sys.argv[10]), sys.argv[11]
floor = bw * 1e9 / nbytes
print(f"GPT-2 124M fp32, greedy, {new} new tokens after {ptoks} prompt tokens, {threads} threads")
print(f"{'':28}{'tokens/s':>10}{'ms/token':>10}")
print(f"{'cp-complete':28}{ours:10.2f}{1000 / ours:10.2f}")
print(f"{'PyTorch KV cache':28}{torch:10.2f}{1000 / torch:10.2f}")
print(f"{'bandwidth floor':28}{floor:10.2f}{1000 / floor:10.2f}   ({nbytes / 1e6:.0f} MB a token at {bw:.1f} GB/s copy)")
print(f"cp-complete / PyTorch: {ours / torch:.2f}x   (goal >= 5x)")
print(f"cp-complete / floor:   {100 * ours / floor:.0f}%   (goal >= 70%)")
print(f"greedy tokens equal to PyTorch's: {same}")
print(f"{'cp-complete --bf16':28}{bf16:10.2f}{1000 / bf16:10.2f}   ({bf16 / ours:.2f}x fp32, goal >= 1.6x; "
      f"greedy tokens equal to fp32's: {bsame})")
open(sys.argv[9] + ".bf16", "w").write(f"{bf16:.2f} tokens/s, the first {bsame} greedy tokens fp32's|"
                                       f"{bf16 / ours:.2f}x\n")
open(sys.argv[9], "w").write(f"{ours:.2f} tokens/s ({100 * ours / floor:.0f}% of the bandwidth floor)|"
                             f"{torch:.2f} tokens/s|{ours / torch:.2f}x\n")
PYEOF
echo "pytorch: torch.get_num_threads() $pt_threads; $pt_cpus CPUs busy over its whole run"
IFS='|' read -r r_ours r_torch r_ratio <"$TMP/row"
bench_row "generation, GPT-2 124M fp32, greedy, $NEW after $ptoks, $THREADS threads (\`bench/complete.sh\`)" \
	"$r_ours" "PyTorch with a KV cache: $r_torch" "$r_ratio" 5x
IFS='|' read -r r_bf16 r_bratio <"$TMP/row.bf16"
# the kernel cp-complete picks (model/cpu-bf16.c): AVX-512 BF16's where the CPU has it, else AVX2's
kern=AVX2
grep -qw avx512_bf16 /proc/cpuinfo && kern="AVX-512 BF16"
bench_row "  the same with the weights in bf16 (\`--bf16\`, the $kern kernel on this CPU), against our fp32" \
	"$r_bf16" "" "$r_bratio" 1.6x
