#!/bin/sh
# bench/bpe.sh: cp-bpe against HF tokenizers' BpeTrainer on the same files of the default
# corpus (vocabulary 32768, same threads); then bytes per token of each tokenizer on held-out
# files, and whether the merges are identical. Not a test.
#   bench/bpe.sh [MAXBYTES]     (default 100000000; J=threads, default 2)
set -eu
cd "$(dirname "$0")/.."
: "${BUILD:=$PWD/build}" "${PYTHON:=python3}" "${J:=2}"
. bench/lib.sh
bench_machine "$BUILD/bin/cp-bpe"
MAXBYTES=${1:-100000000}
VOCAB=${VOCAB:-32768}
STDLIB=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-bpe.XXXXXX")
trap 'rm -rf "$T"' EXIT
# every file of the corpus, sorted; the first MAXBYTES train, the next 10 MB are held out
$PYTHON tests/ref/tok_ref.py validlist "$STDLIB" 100000000000 >"$T/all"
: >"$T/train"; : >"$T/held"
total=0
while read -r f; do
	s=$(stat -c %s "$f")
	if [ $((total + s)) -le "$MAXBYTES" ]; then echo "$f" >>"$T/train"
	elif [ $((total)) -le $((MAXBYTES + 10000000)) ]; then echo "$f" >>"$T/held"; fi
	total=$((total + s))
done <"$T/all"
BYTES=$(cat $(cat "$T/train") | wc -c)
echo "training: $(wc -l <"$T/train") files, $BYTES bytes; held out: $(wc -l <"$T/held") files; vocab $VOCAB; threads $J"

now() { date +%s.%N; }
t0=$(now)
nice "$BUILD/bin/cp-bpe" -j "$J" --vocab-size "$VOCAB" --text -o "$T/ours" $(cat "$T/train")
t1=$(now)
RAYON_NUM_THREADS=$J nice $PYTHON tests/ref/tok_ref.py hftrain "$T/hf" "$VOCAB" "$T/train"
t2=$(now)
OURS=$(echo "$t1 - $t0" | bc -l)
HF=$(echo "$t2 - $t1" | bc -l)
printf '%-16s %7.1f s  %6.1f MB/s\n' cp-bpe "$OURS" "$(echo "$BYTES / $OURS / 1000000" | bc -l)" \
	"HF BpeTrainer" "$HF" "$(echo "$BYTES / $HF / 1000000" | bc -l)"
SPEEDUP=$(printf '%.1fx' "$(echo "$HF / $OURS" | bc -l)")
echo "speed-up: $SPEEDUP"
if cmp -s "$T/ours/merges.txt" "$T/hf/merges.txt"; then MERGES="identical merges"
else MERGES="merges differ from line $(cmp "$T/ours/merges.txt" "$T/hf/merges.txt" | sed 's/.*line //')"; fi
echo "merges: $MERGES"
HB=$(cat $(cat "$T/held") | wc -c)
NO=$("$BUILD/bin/cp-tokenize" -t "$T/ours" --ids $(cat "$T/held") | wc -w)
NH=$($PYTHON tests/ref/tok_ref.py hf "$T/hf/tokenizer.json" "$T/held" | wc -w)
printf 'held-out bytes/token: cp-bpe %.4f  HF %.4f  (difference %.3f%%)\n' \
	"$(echo "$HB / $NO" | bc -l)" "$(echo "$HB / $NH" | bc -l)" "$(echo "($NH - $NO) * 100 / $NH" | bc -l)"
bench_row "BPE training, $((BYTES / 1000000)) MB, vocab $VOCAB, $J threads (\`bench/bpe.sh\`)" \
	"$(printf '%.1f s, %s' "$OURS" "$MERGES")" "$(printf 'HF tokenizers BpeTrainer: %.1f s' "$HF")" "$SPEEDUP" 3x
