#!/bin/sh
# t4006: cp-train --profile: the table names every op of the cpu model and of the step around
# it, the ops' times add up to the step's (within 10%: the rest is the code between them),
# and profiling changes no byte of the run.
. "$(dirname "$0")/lib.sh"

"$BUILD/tests/test-gpt2-data" tokens tok.shard 256 600 1 60 || exit 1
cp-pack -T 32 --valid-frac 0 -o seqs tok.shard >/dev/null || exit 1
X="--train seqs/train --model tiny --width 64 --heads 2 --batch 4 --accum 2 --steps 6 --warmup 2 --eval-every 0 --threads 2"

ok "train with --profile" cp-train -o P $X --profile
cp "$TMP/.err" prof.txt
like "$(head -1 prof.txt)" '^profile: 5 steps, [0-9.]+ s a step \(wall\), [0-9.]+ s CPU user, [0-9.]+ s system, [0-9]+ minor page faults$' \
	"the summary line: the first of 6 steps left out"
like "$(sed -n 2p prof.txt)" '^op +ms/step +%step$' "the table's header"
for op in data zero_grad fwd.embed fwd.layernorm fwd.matmul.qkv fwd.attention \
	fwd.matmul.attn_proj fwd.matmul.fc fwd.matmul.fc_proj fwd.residual fwd.lm_head \
	fwd.loss bwd.loss bwd.lm_head bwd.layernorm bwd.matmul.fc_proj bwd.gelu bwd.matmul.fc \
	bwd.matmul.attn_proj bwd.attention bwd.matmul.qkv bwd.embed accum allreduce grad_norm \
	adamw untimed; do
	like "$(cat prof.txt)" "
$op +[0-9.-]+ +[0-9.-]+" "op $op listed"
done
ok "no whole forward or backward on the cpu (its ops are timed one by one)" \
	sh -c '! grep -Eq "^(forward|backward) " prof.txt'
ok "the ops' times add up to the step's, within 10%" awk '
	NR == 1 { step = $4 * 1000 }
	NR > 2 && $1 != "untimed" { sum += $2; if ($2 < 0) bad = 1 }
	END { printf "ops %.3f ms, step %.3f ms\n", sum, step
	      exit !(!bad && step > 0 && sum <= step * 1.001 && sum >= step * 0.9) }' prof.txt
ok "untimed is the step less the ops (to the table's rounding)" awk '
	NR == 1 { step = $4 * 1000 }
	NR > 2 && $1 != "untimed" { sum += $2 }
	$1 == "untimed" { u = $2 }
	END { d = step - sum - u; exit !(d < 0.02 && d > -0.02) }' prof.txt

ok "the same run without --profile" cp-train -o Q $X
ok "profiling changes no byte" cmp P/ckpt-00000006.ckpt Q/ckpt-00000006.ckpt
ok "one step: that step is profiled" cp-train -o R $X --steps 1 --profile
like "$(head -1 "$TMP/.err")" '^profile: 1 steps, ' "a run of one step keeps it"
done_testing
