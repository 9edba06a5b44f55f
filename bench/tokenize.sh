#!/bin/sh
# bench/tokenize.sh: cp-tokenize against tiktoken and HF tokenizers, encoding the same files of
# the default corpus with GPT-2's published files, with the same number of threads.
# Prints MB/s for each and our ratio to each. Not a test.
#   bench/tokenize.sh [MAXBYTES]     (default 100000000; J=threads, default 2)
set -eu
cd "$(dirname "$0")/.."
: "${BUILD:=$PWD/build}" "${PYTHON:=python3}" "${J:=2}"
MAXBYTES=${1:-100000000}
GPT2=../shared/data/gpt2
STDLIB=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-tok.XXXXXX")
trap 'rm -rf "$T"' EXIT
$PYTHON tests/ref/tok_ref.py validlist "$STDLIB" "$MAXBYTES" >"$T/list"
BYTES=$(cat $(cat "$T/list") | wc -c)
echo "corpus: $(wc -l <"$T/list") files, $BYTES bytes of $STDLIB; threads: $J; $(nproc) CPUs"

now() { date +%s.%N; }
t0=$(now)
nice "$BUILD/bin/cp-tokenize" -t "$GPT2" -j "$J" --text --min-ratio 0 -o "$T/tok.shard" $(cat "$T/list")
t1=$(now)
OURS=$(echo "$BYTES / ($t1 - $t0) / 1000000" | bc -l)

# the references are timed on encoding alone (files already in memory): a conservative comparison
RAYON_NUM_THREADS=$J nice $PYTHON - "$T/list" "$GPT2" "$J" <<'PY' >"$T/ref"
import sys, time
sys.path.insert(0, "tests/ref")
import tok_ref
lst, gpt2, j = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = list(tok_ref.texts(lst))
n = sum(len(t.encode()) for t in texts)
enc = tok_ref.tiktoken_encoding(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe")
t = time.perf_counter(); enc.encode_ordinary_batch(texts, num_threads=j); tt = time.perf_counter() - t
hf = tok_ref.hf_tokenizer(gpt2)
t = time.perf_counter(); hf.encode_batch(texts, add_special_tokens=False); th = time.perf_counter() - t
print(n / tt / 1e6, n / th / 1e6)
PY
read -r TT HF <"$T/ref"
printf '%-28s %8.1f MB/s\n' "cp-tokenize (whole run)" "$OURS" "tiktoken (encode only)" "$TT" \
	"HF tokenizers (encode only)" "$HF"
printf 'cp-tokenize / tiktoken: %.2fx   cp-tokenize / HF: %.2fx\n' \
	"$(echo "$OURS / $TT" | bc -l)" "$(echo "$OURS / $HF" | bc -l)"
