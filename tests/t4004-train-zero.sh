#!/bin/sh
# t4004: many ranks on the CPU backend, against one process. Gradients are summed in rank
# order, so A ranks of one micro-batch give the bytes of one process accumulating A (1 x 2 and
# 1 x 3 against 2 x 1 and 3 x 1); --zero 1 (AdamW's moments sharded over the ranks) gives the
# bytes of the run without it; a ZeRO checkpoint holds the whole moments and resumes on
# another number of ranks (re-sharded on load), with or without ZeRO; a collective that does
# not finish ends the job within the timeout, naming the rank and the collective.
. "$(dirname "$0")/lib.sh"
need_cmd mpirun
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
mpirun --allow-run-as-root --oversubscribe -np 3 true >/dev/null 2>&1 || skip_all "mpirun cannot start 3 processes here"

"$BUILD/tests/test-gpt2-data" tokens tok.shard 256 600 1 60 || exit 1
cp-pack -T 32 --valid-frac 0.1 -o seqs tok.shard >/dev/null || exit 1
X="--train seqs/train --valid seqs/valid --model tiny --lr 3e-3 --warmup 2 --steps 6 --eval-every 3 --eval-batches 2 --threads 1"
mp() { n=$1; shift; mpirun --allow-run-as-root --oversubscribe -np "$n" "$BUILD/bin/cp-train" "$@"; }
# the trained parameters alone (a checkpoint also holds the options, which differ)
params() { cp-train -o "$1" --export-hf "$1/hf" >/dev/null && cat "$1/hf/model.safetensors"; }
same_params() { params "$1" >"$1.p" && params "$2" >"$2.p" && cmp "$1.p" "$2.p"; }

# ---- ranks against accumulation: the same bytes
ok "one process, 2 micro-batches of 3" cp-train -o acc2 $X --batch 3 --accum 2
ok "2 ranks of 3" mp 2 -o rk2 $X --batch 6
ok "1 x 2 and 2 x 1: the same parameters, bit for bit" same_params acc2 rk2
ok "one process, 3 micro-batches of 2" cp-train -o acc3 $X --batch 2 --accum 3
ok "3 ranks of 2" mp 3 -o rk3 $X --batch 6
ok "1 x 3 and 3 x 1: the same parameters, bit for bit" same_params acc3 rk3
# (the evaluations differ: their batch is --batch)
ok "... and the same losses and gradient norms" "$PYTHON" -c '
import json
a = [json.loads(l) for l in open("acc3/log.jsonl")]
b = [json.loads(l) for l in open("rk3/log.jsonl")]
assert len(a) == len(b) == 7
assert [(x.get("loss"), x.get("grad_norm")) for x in a] == [(y.get("loss"), y.get("grad_norm")) for y in b]
'


# ---- 1, 2 and 3 ranks against one process with the same global batch: within 1e-5
ok "one process, batch 6" cp-train -o one $X --batch 6
ok "mpirun -np 1" mp 1 -o np1 $X --batch 6
ok "-np 1 is one process, bit for bit" same_params one np1
ok "losses of 2 and 3 ranks within 1e-5 of one process's" "$PYTHON" -c '
import json
logs = [[json.loads(l) for l in open(d + "/log.jsonl")] for d in ("one", "rk2", "rk3")]
for run in logs[1:]:
    assert len(run) == len(logs[0])
    for x, y in zip(logs[0], run):
        for k in ("loss", "val_loss", "grad_norm"):
            if k in x:
                assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), (k, x[k], y[k])
'

# ---- ZeRO-1
ok "--zero 1 on 2 ranks" mp 2 -o z2 $X --batch 6 --zero 1
ok "... the bytes of 2 ranks without it" cmp z2/ckpt-00000006.ckpt rk2/ckpt-00000006.ckpt
ok "--zero 1 on 3 ranks" mp 3 -o z3 $X --batch 6 --zero 1
ok "... the bytes of 3 ranks without it" cmp z3/ckpt-00000006.ckpt rk3/ckpt-00000006.ckpt
ok "--zero 1 alone (one process)" cp-train -o z1 $X --batch 6 --zero 1
ok "... the bytes of the run without it" cmp z1/ckpt-00000006.ckpt one/ckpt-00000006.ckpt
ok "--zero 1 on 2 ranks, 3 steps" mp 2 -o zr $X --batch 6 --zero 1 --stop-after 3
ok "... resumed on 3 ranks with --zero 1 (re-sharded)" mp 3 -o zr --resume --train seqs/train --valid seqs/valid --threads 1 --zero 1
ok "... the log of the straight 2-rank run within 1e-5" "$PYTHON" -c '
import json
a = [json.loads(l) for l in open("z2/log.jsonl")]
b = [json.loads(l) for l in open("zr/log.jsonl")]
assert len(a) == len(b) == 7, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("loss", "val_loss"):
        if k in x:
            assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), (k, x[k], y[k])
'
ok "a ZeRO checkpoint of 2 ranks, 3 steps" mp 2 -o zs $X --batch 6 --zero 1 --stop-after 3
ok "... resumed on 2 ranks without ZeRO" mp 2 -o zs --resume --train seqs/train --valid seqs/valid --threads 1
ok "... the bytes of 6 steps straight (the checkpoint held the whole moments)" cmp zs/ckpt-00000006.ckpt rk2/ckpt-00000006.ckpt
exit_is 2 "--zero 2 refused" cp-train -o zbad $X --batch 6 --zero 2

# ---- a hang ends the job: rank 1 stops answering, rank 0 waits 2 s in a collective
start=$(date +%s)
CP_TEST_COMM_HANG=1 CP_COMM_TIMEOUT=2 mp 2 -o hang $X --batch 6 >hang.out 2>hang.err
rc=$?
took=$(( $(date +%s) - start ))
ok "a rank that stops answering fails the job (exit $rc)" test "$rc" != 0
ok "... within 30 s (took $took)" test "$took" -le 30
like "$(cat hang.err)" "rank 0 of 2: the .* did not finish within 2 s" "the message names the rank and the collective"
done_testing
