#!/bin/sh
# t4003: data parallelism: `mpirun -np 2 cp-train` equals one process with the same global
# batch to fp32 rounding; rank 0 alone writes. Skips without mpirun.
. "$(dirname "$0")/lib.sh"
command -v mpirun >/dev/null || skip_all "mpirun not installed"
# OpenMPI's runtime keeps allocations to the end: no leak reports from sanitizer builds
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1

"$BUILD/tests/test-gpt2-data" tokens tok.shard 256 600 1 60 || exit 1
cp-pack -T 32 --valid-frac 0.1 -o seqs tok.shard >/dev/null || exit 1
X="--train seqs/train --valid seqs/valid --model tiny --batch 8 --accum 2 --lr 3e-3 --warmup 2 --steps 6 --eval-every 3 --eval-batches 4 --threads 1"

ok "one process" cp-train -o one $X
mpirun --allow-run-as-root --oversubscribe -np 2 true >/dev/null 2>&1 || skip_all "mpirun cannot start 2 processes here"
ok "mpirun -np 2" mpirun --allow-run-as-root --oversubscribe -np 2 "$BUILD/bin/cp-train" -o two $X
is "$(ls two | tr '\n' ' ')" "ckpt-00000006.ckpt log.jsonl " "one log and one checkpoint"
is "$(wc -l <two/log.jsonl | tr -d ' ')" 7 "rank 0 alone wrote the log"
ok "losses and validation losses agree to 1e-5" "$PYTHON" -c '
import json, sys
a = [json.loads(l) for l in open("one/log.jsonl")]
b = [json.loads(l) for l in open("two/log.jsonl")]
assert len(a) == len(b) == 7
for x, y in zip(a, b):
    for k in ("loss", "val_loss", "grad_norm"):
        if k in x:
            assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), (k, x[k], y[k])
'
M="mpirun --allow-run-as-root --oversubscribe -np 2 $BUILD/bin/cp-train"
ok "mpirun -np 2: stop after 3" $M -o twoB $X --stop-after 3
ok "mpirun -np 2: resume" $M -o twoB --resume --train seqs/train --valid seqs/valid --threads 1
ok "3 + resume + 3 under mpirun: the same bytes as 6 straight" cmp two/ckpt-00000006.ckpt twoB/ckpt-00000006.ckpt
ok "eval-only, one process" cp-train -o one --valid seqs/valid --eval-only
e1=$(sed 's/.*"val_loss":\([0-9.]*\).*/\1/' "$TMP/.out")
ok "eval-only, mpirun -np 2" $M -o one --valid seqs/valid --eval-only
e2=$(sed 's/.*"val_loss":\([0-9.]*\).*/\1/' "$TMP/.out")
ok "eval-only: one line from rank 0 alone" test "$(wc -l <"$TMP/.out" | tr -d ' ')" = 1
ok "eval-only over 2 ranks agrees ($e1, $e2)" awk "BEGIN { d = $e1 - $e2; if (d < 0) d = -d; exit !(d <= 1e-5 * $e1) }"
exit_is 2 "a batch the ranks cannot split is refused" mpirun --allow-run-as-root --oversubscribe -np 2 "$BUILD/bin/cp-train" -o three $X --batch 7
err_like "batch 7 is not a multiple of the 2 ranks" "says why"
done_testing
