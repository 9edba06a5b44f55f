#!/bin/sh
# bench/tokenize.sh: cp-tokenize against tiktoken and HF tokenizers, encoding the same files of
# the default corpus with GPT-2's published files, with the same number of threads; then
# cp-tokenize on the same bytes as one large file (--text to a token shard, and --ids), which it
# cuts into parts to encode in parallel. Prints MB/s for each and our ratio to each; tiktoken
# is held against its published speed a thread (bench/lib.sh). The peers run as their users
# run them: tiktoken's encode_ordinary_batch with num_threads, HF's encode_batch with
# RAYON_NUM_THREADS. Not a test.
#   bench/tokenize.sh [MAXBYTES]     (default 100000000; J=threads, default 2)
set -eu
cd "$(dirname "$0")/.."
: "${BUILD:=$PWD/build}" "${PYTHON:=python3}" "${J:=2}"
. bench/lib.sh
MAXBYTES=${1:-100000000}
GPT2=../shared/data/gpt2
STDLIB=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-tok.XXXXXX")
trap 'rm -rf "$T"' EXIT
bench_machine
$PYTHON tests/ref/tok_ref.py validlist "$STDLIB" "$MAXBYTES" >"$T/list"
BYTES=$(cat $(cat "$T/list") | wc -c)
NFILES=$(wc -l <"$T/list")
echo "corpus: $NFILES files, $BYTES bytes of $STDLIB; threads: $J"

now() { date +%s.%N; }
mbps() { echo "$BYTES / ($2 - $1) / 1000000" | bc -l; }
t0=$(now)
nice "$BUILD/bin/cp-tokenize" -t "$GPT2" -j "$J" --text --min-ratio 0 -o "$T/tok.shard" $(cat "$T/list")
t1=$(now)
OURS=$(mbps "$t0" "$t1")
cat $(cat "$T/list") >"$T/one.txt"
t0=$(now)
nice "$BUILD/bin/cp-tokenize" -t "$GPT2" -j "$J" --text --min-ratio 0 -o "$T/one.shard" "$T/one.txt"
t1=$(now)
nice "$BUILD/bin/cp-tokenize" -t "$GPT2" -j "$J" --ids "$T/one.txt" >"$T/one.ids"
t2=$(now)
ONE_TEXT=$(mbps "$t0" "$t1")
ONE_IDS=$(mbps "$t1" "$t2")
rm -f "$T/one.ids" "$T/one.shard"

# the references are timed on encoding alone (files already in memory): a conservative
# comparison; CPU seconds are the process's, all its threads
RAYON_NUM_THREADS=$J nice $PYTHON - "$T/list" "$GPT2" "$J" <<'PY' >"$T/ref"
import sys, time
sys.path.insert(0, "tests/ref")
import tok_ref
lst, gpt2, j = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = list(tok_ref.texts(lst))
n = sum(len(t.encode()) for t in texts)
def timed(f):
    c, t = time.process_time(), time.perf_counter()
    f()
    return time.perf_counter() - t, time.process_time() - c
enc = tok_ref.tiktoken_encoding(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe")
tt, tc = timed(lambda: enc.encode_ordinary_batch(texts, num_threads=j))
hf = tok_ref.hf_tokenizer(gpt2)
ht, hc = timed(lambda: hf.encode_batch(texts, add_special_tokens=False))
print(n / tt / 1e6, tc, tt, n / ht / 1e6, hc, ht)
PY
read -r TT TT_CPU TT_WALL HF HF_CPU HF_WALL <"$T/ref"
printf '%-44s %8.1f MB/s\n' "cp-tokenize --text, $NFILES files (whole run)" "$OURS" \
	"cp-tokenize --text, the same as one file" "$ONE_TEXT" \
	"cp-tokenize --ids, the same as one file" "$ONE_IDS" \
	"tiktoken (encode only)" "$TT" "HF tokenizers (encode only)" "$HF"
printf 'CPUs used: tiktoken %.2f, HF tokenizers %.2f (of %d threads)\n' \
	"$(echo "$TT_CPU / $TT_WALL" | bc -l)" "$(echo "$HF_CPU / $HF_WALL" | bc -l)" "$J"
r_tt=$(printf '%.2fx' "$(echo "$OURS / $TT" | bc -l)")
printf 'cp-tokenize / tiktoken: %s   cp-tokenize / HF: %.2fx   one file (--text, --ids) / tiktoken: %.2fx, %.2fx\n' \
	"$r_tt" "$(echo "$OURS / $HF" | bc -l)" "$(echo "$ONE_TEXT / $TT" | bc -l)" "$(echo "$ONE_IDS / $TT" | bc -l)"
bench_check_rate tiktoken "$TT" "$J" "$TIKTOKEN_MBPS_THREAD" "$TIKTOKEN_PUBLISHED" "$TT_CPU" "$TT_WALL"
mb=$(echo "$BYTES / 1000000" | bc)
bench_row "encoding with GPT-2's files, $mb MB in $NFILES files, $J threads (\`cp-tokenize --text -o tok.shard\`)" \
	"$(printf '%.1f MB/s' "$OURS")" "$(printf 'tiktoken encode_ordinary_batch: %.1f MB/s; HF tokenizers: %.1f MB/s' "$TT" "$HF")" \
	"$r_tt" 2x
bench_row "the same bytes as one file: \`--text\`; \`--ids\`" \
	"$(printf '%.1f MB/s; %.1f MB/s' "$ONE_TEXT" "$ONE_IDS")" "" \
	"$(printf '%.2fx; %.2fx' "$(echo "$ONE_TEXT / $TT" | bc -l)" "$(echo "$ONE_IDS / $TT" | bc -l)")" \
	"as fast as many files"
