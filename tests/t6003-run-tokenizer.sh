#!/bin/sh
# t6003: a run directory remembers its tokenizer (cp-train --tokenizer), so cp-complete -m RUN,
# a checkpoint file in it and cp-humaneval generate -m RUN need no -t, and give what the same
# model with its tokenizer named gives; a resumed run keeps it; a tokenizer that cannot be read
# stops cp-train before any step.
. "$(dirname "$0")/lib.sh"

TOK=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"

setup "a tiny random model and its sequences" sh -c '
	"$1/tests/test-infer" hf-random M 50257 512 2 2 32 "$2" 3
	"$1/tests/test-gpt2-data" tokens tok.shard 50257 40 1 80 >/dev/null
	cp-pack -T 32 --valid-frac 0.2 -o seqs tok.shard >/dev/null' sh "$BUILD" "$TOK" || done_testing
printf 'def add(a, b):\n    return a + b' >prompt.py
X="--train seqs/train --lr 0 --warmup 0 --eval-every 0 --batch 2 --threads 1"

ok "the model with its tokenizer named" cp-complete -m M -N 12 --json -f prompt.py
want=$(cat "$TMP/.out")
ok "cp-train --tokenizer, lr 0" cp-train -o RUN --init-hf M --tokenizer "$TOK" $X --steps 2 --stop-after 1
ok "cp-complete -m RUN without -t" cp-complete -m RUN -N 12 --json -f prompt.py
is "$(cat "$TMP/.out")" "$want" "the same completion as the model it started from"
ok "a checkpoint file of the run, without -t" cp-complete -m RUN/ckpt-00000001.ckpt -N 12 --json -f prompt.py
is "$(cat "$TMP/.out")" "$want" "the same completion"
ok "the run's tokenizer encodes as the one it was given" sh -c '
	cp-complete -m RUN --score prompt.py --json >run.score &&
	cp-complete -m M --score prompt.py --json >m.score && cmp run.score m.score'
ok "resumed without --tokenizer" cp-train -o RUN --resume --train seqs/train --threads 1
ok "the run still has its tokenizer" cp-complete -m RUN -N 12 --json -f prompt.py
is "$(cat "$TMP/.out")" "$want" "and the same completion"

if HE=$(humaneval_problems); then
	ok "cp-humaneval generate -m RUN without --tokenizer" \
		cp-humaneval generate -m RUN --problems "$HE" --limit 1 -n 1 --max-tokens 8 -o run.jsonl
	ok "the same samples as with the tokenizer named" sh -c '
		cp-humaneval generate -m RUN --tokenizer "$1" --problems "$2" --limit 1 -n 1 \
			--max-tokens 8 -o named.jsonl && cmp run.jsonl named.jsonl' sh "$TOK" "$HE"
else
	skip "$HUMANEVAL_MISSING"
	skip "$HUMANEVAL_MISSING"
fi

exit_is 1 "a tokenizer that cannot be read" cp-train -o BAD --init-hf M --tokenizer nope $X --steps 1
err_like "nope" "the message names it"
is "$(ls BAD 2>/dev/null | grep -c ckpt)" 0 "and no step was taken"
exit_is 2 "--tokenizer with --eval-only" cp-train -o RUN --valid seqs/valid --eval-only --tokenizer "$TOK"
done_testing
