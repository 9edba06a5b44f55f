#!/bin/sh
# t2006: temporaries that a kill -9 left (DIR/.NAME.tmp.PID of a process that is gone) are
# removed by the next run writing into that directory, cp-train's and cp-tokenize's here
# (base/atomic does it for every tool); a live process's temporary and every name that is not
# exactly .NAME.tmp.PID are left alone.
. "$(dirname "$0")/lib.sh"

mksrc() {
	mkdir src
	i=0
	while [ $i -lt 40 ]; do
		printf 'def f%d(x):\n    return x * %d + 1  # n %d\n' $i $i $i >src/m$i.py
		i=$((i + 1))
	done
	cp-hash -q -o docs.shard src
	cp-bpe --vocab-size 300 --text -o tok src
	"$BUILD/tests/test-gpt2-data" tokens train-tok.shard 256 600 1 60
	cp-pack -T 32 --valid-frac 0.1 -o seqs train-tok.shard >/dev/null
}
setup "documents, a tokenizer and training sequences" mksrc

DEAD=$(sh -c 'echo $$')
sleep 300 &
LIVE=$!
trap 'kill $LIVE 2>/dev/null; rm -rf "$TMP"' EXIT
ok "pid $DEAD is gone" sh -c "! kill -0 $DEAD 2>/dev/null"
ok "pid $LIVE is alive" kill -0 $LIVE

# plant DIR NAME: the dead process's temporary of NAME, a live one's, and look-alikes
plant() {
	printf 'half' >"$1/.$2.tmp.$DEAD"
	printf 'half' >"$1/.$2.tmp.$LIVE"
	printf 'half' >"$1/.$2.tmp.${DEAD}x"
	printf 'half' >"$1/$2.tmp.$DEAD"
	printf 'half' >"$1/.$2.tmp.0$DEAD"
}
# kept DIR NAME: only the dead one is gone
kept() {
	test ! -e "$1/.$2.tmp.$DEAD" && test -e "$1/.$2.tmp.$LIVE" && test -e "$1/.$2.tmp.${DEAD}x" &&
		test -e "$1/$2.tmp.$DEAD" && test -e "$1/.$2.tmp.0$DEAD"
}

mkdir tokout rep
plant tokout docs.shard
plant rep report.json
ok "cp-tokenize writes into those directories" cp-tokenize -t tok -o tokout/ --report rep/report.json docs.shard
ok "  ... its output is there" test -s tokout/docs.shard -a -s rep/report.json
ok "  ... the dead run's shard temporary is removed, the rest kept" kept tokout docs.shard
ok "  ... so is the dead run's report temporary" kept rep report.json

mkdir run
plant run ckpt-00000002.ckpt
ok "cp-train into a directory holding them" cp-train -o run --train seqs/train --valid seqs/valid --model tiny --batch 4 --steps 2 --eval-every 0 --threads 1
ok "  ... writes its checkpoint" test -s run/ckpt-00000002.ckpt
ok "  ... removes the dead run's checkpoint temporary and keeps the rest" kept run ckpt-00000002.ckpt

kill $LIVE
wait $LIVE 2>/dev/null
printf 'half' >"tokout/.docs.shard.tmp.$LIVE"
ok "once that process is gone, the next run removes its temporary too" cp-tokenize -t tok -o tokout/ docs.shard
ok "  ... gone" test ! -e "tokout/.docs.shard.tmp.$LIVE"
done_testing
