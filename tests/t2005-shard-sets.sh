#!/bin/sh
# t2005: directory outputs are sets, whole or not at all (man/cp-shard.5, SETS). cp-hash,
# cp-pack, cp-tokenize and cp-dedup killed or failing part way leave nothing the next stage
# takes: it refuses the directory, naming it; a killed rerun over an old output leaves the
# old set intact and accepted; cp-dedup without --index refuses a directory that holds a set;
# a failed --index write commits nothing; an input that fails part way (a corrupt zstd frame)
# leaves no finished output of cp-hash.
. "$(dirname "$0")/lib.sh"

set -- $(stdlib_dirs email json unittest importlib xml logging concurrent)
need all "no Python sources in the standard library of $PYTHON" test $# -gt 0
trees="$*"

# refused DIR DESC: cp-cat refuses DIR with exit 1, naming it
refused() {
	cp-cat "$1" >/dev/null 2>"$TMP/.err"
	s=$?
	[ $s = 1 ] && grep -q "'$1'" "$TMP/.err"
	_tap $? "$2"
	[ $s = 1 ] || echo "#   exit $s"
}
# hidden DIR: its hidden entries but the manifest
hidden() { ls -A "$1" 2>/dev/null | grep '^\.' | grep -v '^\.set$'; }
digest() { cp-cat "$1" | cksum; }

# ---- cp-hash: killed with shards staged: a FIFO nobody writes to blocks the input after
# the first batch of documents (4096, docpipe.c) ----
"$PYTHON" -c 'import json; open("many.jsonl", "w").write("".join(json.dumps({"content": "def f%d():\n    return %d\n" % (i, i * i)}) + "\n" for i in range(6000)))'
for sig in TERM KILL; do
	rm -rf h f && mkfifo f
	cp-hash -q -j2 --shard-docs 20 -o h/ many.jsonl f 2>/dev/null &
	pid=$!
	wait_for "h/.stage-$pid/docs-00002.shard"
	_tap $? "SIG$sig: cp-hash staged shards"
	kill -s "$sig" "$pid"
	wait "$pid" 2>/dev/null
	refused h "SIG$sig: cp-cat refuses what the killed cp-hash left"
	exit_is 1 "... and so does cp-dedup" cp-dedup -o d h
	err_like "'h' holds no set of shards" "... naming the directory"
	[ "$sig" = TERM ] && is "$(ls -A h)" "" "SIGTERM: the stage is removed"
done
# shellcheck disable=SC2086
ok "a finished cp-hash over what a killed one left" cp-hash -q -j2 --shard-docs 20 -o h/ $trees
is "$(hidden h)" "" "... removes the dead run's stage"
ok "... and its set is read" cp-cat --verify h
old=$(digest h)
n_old=$(ls h | wc -l)

# a killed rerun over the finished set
for sig in TERM KILL; do
	rm -f f && mkfifo f
	cp-hash -q -j2 --shard-docs 7 -o h/ many.jsonl f 2>/dev/null &
	pid=$!
	wait_for "h/.stage-$pid/docs-00002.shard"
	kill -s "$sig" "$pid"
	wait "$pid" 2>/dev/null
	is "$(digest h)" "$old" "SIG$sig over a finished set: the old set is read, unchanged"
	is "$(ls h | wc -l)" "$n_old" "... and nothing of the killed run is in it"
done

# ---- a legacy or hand-made directory: shards, no manifest ----
mkdir legacy && cp h/docs-00000.shard h/docs-00001.shard legacy/
refused legacy "shards without a set manifest are refused"
err_like "legacy' holds shards but no set manifest" "... saying so"
ok "... named one by one they are read" cp-cat legacy/docs-00000.shard legacy/docs-00001.shard
cp h/.set legacy/
refused legacy "a manifest naming shards that are not there is refused"
err_like "legacy': the set manifest names 'docs-00002.shard', which is missing" "... naming it"
rm legacy/.set

# ---- cp-dedup: no second copy of the corpus; the index commits with the shards ----
ok "cp-dedup writes a set" cp-dedup -j2 -o c h
clean=$(digest c)
exit_is 1 "cp-dedup -o DIR again, without --index, is refused" cp-dedup -j2 -o c h
err_like "'c' already holds shards" "... naming the directory"
is "$(digest c)" "$clean" "... which is unchanged"
exit_is 1 "an index that cannot be written fails the run" cp-dedup -j2 --index nodir/x.idx -o i h
is "$(ls -A i)" "" "... and nothing is moved in (no shard, no manifest)"
ok "the rerun with a writable index" cp-dedup -j2 --index x.idx -o i h
is "$(digest i)" "$clean" "... writes the corpus once"
ok "a second run on the index" cp-dedup -j2 --index x.idx -o i h
is "$(digest i)" "$clean" "... adds nothing"
orph=$(ls i | tail -1 | sed 's/[0-9]*\.shard$//')99999.shard
cp "i/$(ls i | head -1)" "i/$orph"
ok "a shard no manifest names (a killed publication) in a set" cp-cat --verify i
is "$(digest i)" "$clean" "... is not read"
ok "a --index run over it" cp-dedup -j2 --index x.idx -o i h
ok "... removes it" test ! -e "i/$orph"

# ---- cp-pack: killed while writing its many shards; failing between its two sides ----
gen="$BUILD/tests/test-gpt2-data"
setup "token shards" "$gen" tokens big.shard 300 20000 1 400
ok "a finished cp-pack" cp-pack -T 16 --shard-seqs 2000 -o p big.shard
ptrain=$(digest p/train)
pvalid=$(digest p/valid)
for t in 0.2; do
	for sig in TERM KILL; do
		rm -rf q
		cp-pack -T 16 --shard-seqs 2000 -o q big.shard >/dev/null 2>&1 &
		pid=$!
		sleep "$t"
		if kill -s "$sig" "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			if [ -e q/valid/.set ]; then
				is "$(digest q/train)" "$ptrain" "SIG$sig after ${t}s, at the end: a whole set"
			else
				refused q/train "SIG$sig after ${t}s: the killed cp-pack's train set is refused"
			fi
		else
			wait "$pid"
			is "$(digest q/train)" "$ptrain" "finished before ${t}s: a whole set"
		fi
		# and over the finished set in p: the old one or a whole new one, never a mix; a
		# SIGKILL inside the commit (between removing the old manifests and writing the
		# new) leaves a set without one, which is refused
		cp-pack -T 16 --shard-seqs 1000 -o p big.shard >/dev/null 2>&1 &
		pid=$!
		sleep "$t"
		kill -s "$sig" "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		if [ ! -e p/train/.set ] || [ ! -e p/valid/.set ]; then
			side=p/train
			[ -e p/train/.set ] && side=p/valid
			refused $side "SIG$sig after ${t}s over a finished set, inside the commit: refused"
			ok "... (rewritten as the old)" cp-pack -T 16 --shard-seqs 2000 -o p big.shard
		elif [ "$(ls p/train | wc -l)" = 125 ]; then
			is "$(digest p/train):$(digest p/valid)" "$ptrain:$pvalid" \
				"SIG$sig after ${t}s over a finished set: the old one is read, unchanged"
		else
			ok "SIG$sig after ${t}s over a finished set: the new one, whole" \
				cp-cat --verify p/train p/valid
			ok "... (rewritten as the old)" cp-pack -T 16 --shard-seqs 2000 -o p big.shard
		fi
	done
done
mkdir r && : >r/valid
exit_is 1 "cp-pack failing after staging the train side" cp-pack -T 16 --shard-seqs 2000 -o r big.shard
refused r/train "... leaves no train set the next stage takes"
is "$(ls -A r/train)" "" "... and no stage"

# ---- cp-tokenize -o DIR/: killed with its stage open (standard input, the last input, a
# FIFO that stays open and empty) ----
setup "a tokenizer" cp-bpe --vocab-size 300 -o tok/ h/docs-00000.shard
ok "a finished cp-tokenize into a directory" cp-tokenize -t tok -o tk/ h/docs-00000.shard h/docs-00001.shard
tk=$(digest tk)
for sig in TERM KILL; do
	for out in tn tk; do
		rm -f f && mkfifo f
		sleep 20 >f &
		sp=$!
		cp-tokenize -t tok -o $out/ h/docs-00002.shard h/docs-00003.shard - <f 2>/dev/null &
		pid=$!
		wait_for "$out/.stage-$pid"
		_tap $? "SIG$sig: cp-tokenize -o $out/ opened its stage"
		kill -s "$sig" "$pid"
		wait "$pid" 2>/dev/null
		kill "$sp"
		wait "$sp" 2>/dev/null
		if [ $out = tn ]; then
			refused tn "SIG$sig: cp-cat refuses what the killed cp-tokenize left"
		else
			is "$(digest tk)" "$tk" "SIG$sig over a finished set: the old set is read, unchanged"
		fi
		[ "$sig" = TERM ] && is "$(hidden $out)" "" "SIGTERM: the stage is removed"
	done
done

# ---- cp-hash: an input that fails part way leaves no finished output ----
if need_cmd zstd 7; then
	"$PYTHON" -c 'import json; open("three.jsonl", "w").write("".join(json.dumps({"content": "x = %d\n" % i}) + "\n" for i in range(3)))'
	setup "zstd with a checksum" sh -c 'zstd -q --check -c three.jsonl >good.zst'
	"$PYTHON" -c 'import sys; b = bytearray(open("good.zst", "rb").read()); b[-1] ^= 1; open("bad.jsonl.zst", "wb").write(b)'
	cp good.zst good.jsonl.zst
	ok "... the good frame (as .jsonl.zst)" cp-hash -q -o z.shard good.jsonl.zst
	zd=$(digest z.shard)
	exit_is 1 "a frame whose checksum fails: exit 1" cp-hash -q -o z.shard bad.jsonl.zst
	is "$(digest z.shard)" "$zd" "... the earlier z.shard stays as it was"
	exit_is 1 "... into a new file" cp-hash -q -o z2.shard bad.jsonl.zst
	ok "... none is written" test ! -e z2.shard
	exit_is 1 "... into a directory" cp-hash -q -o zd/ good.jsonl.zst bad.jsonl.zst
	refused zd "... which the next stage refuses"
fi
done_testing
