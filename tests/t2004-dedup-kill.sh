#!/bin/sh
# t2004: cp-dedup killed mid-run (SIGTERM, SIGKILL; while reading, while writing) leaves
# nothing in OUTDIR that a reader takes for output, hidden entries included; a SIGTERM leaves
# no temporary (DIR/.NAME.tmp.PID, base/atomic.h) anywhere under it; and a rerun completes
# with the same result as an uninterrupted run, and nothing hidden left.
. "$(dirname "$0")/lib.sh"

set -- $(stdlib_dirs email json unittest importlib xml logging concurrent)
need all "no Python sources in the standard library of $PYTHON" test $# -gt 0
setup "shards of $# stdlib trees" cp-hash -q -o in/ --shard-docs 40 "$@"
ok "an uninterrupted run" cp-dedup -j1 -o ref in
ok "... writes output" test -n "$(ls ref)"
first=$(ls in | head -1)

# nothing_accepted DIR DESC: no file in DIR, visible or hidden, is accepted as a shard, and
# cp-cat DIR prints nothing
nothing_accepted() {
	bad=0
	for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
		[ -f "$f" ] || continue
		cp-cat --verify "$f" >/dev/null 2>&1 && { echo "#   accepted: $f"; bad=1; }
	done
	[ -z "$(cp-cat "$1" 2>/dev/null | head -c 1)" ] || bad=1
	_tap $bad "$2"
}
# no_temporaries DIR DESC: no atomic temporary (.NAME.tmp.PID) anywhere under DIR
no_temporaries() {
	local tmps; tmps=$(find "$1" -name '.*.tmp.*' 2>/dev/null)
	is "$tmps" "" "$2"
}
same_as_ref() { # DIR DESC
	d=0
	[ "$(ls "$1")" = "$(ls ref)" ] || d=1
	for f in ref/*; do cmp -s "$f" "$1/${f#ref/}" || d=1; done
	_tap $d "$2"
}

# ---- killed while writing: the second input is a FIFO nobody writes to on the second
# reading, so cp-dedup blocks in pass 2 with one shard staged and one being written ----
for sig in TERM KILL; do
	rm -rf out f && mkfifo f
	(cat "in/$first" >f) >/dev/null 2>&1 &
	feeder=$!
	cp-dedup -j1 -o out "in/$first" f 2>/dev/null &
	pid=$!
	wait_for "out/.cp-dedup-$pid/part-00000.shard"
	_tap $? "SIG$sig: cp-dedup reached the writing pass"
	kill -s "$sig" "$pid"
	wait "$pid" 2>/dev/null
	kill "$feeder" 2>/dev/null	# only still there when cp-dedup never opened the FIFO
	nothing_accepted out "SIG$sig while writing: nothing in OUTDIR is accepted"
	if [ "$sig" = TERM ]; then
		is "$(ls -A out)" "" "SIGTERM: staged and temporary files removed"
		no_temporaries out "SIGTERM while writing: no temporary anywhere under OUTDIR"
	else
		ok "SIGKILL: only the hidden staging directory remains" test -z "$(ls out)"
	fi
done
exit_is 0 "the rerun completes" cp-dedup -j1 -o out in
same_as_ref out "the rerun writes what an uninterrupted run writes"
is "$(ls -A out | grep -v '^\.set$' | grep -c '^\.')" "0" "the rerun removed the dead run's staging directory"

# ---- killed while reading: standard input stalls half way ----
for sig in TERM KILL; do
	rm -rf out
	size=$(wc -c <"in/$first")
	{ head -c $((size / 2)) "in/$first"; sleep 2; } 2>/dev/null | cp-dedup -o out 2>/dev/null &
	pid=$!
	sleep 0.5
	kill -s "$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	nothing_accepted out "SIG$sig while reading standard input: nothing accepted"
	if [ "$sig" = TERM ]; then
		is "$(ls -A out | grep -v '^\.cp-dedup-[0-9]*$')" "" "SIGTERM: no spool left"
		no_temporaries out "SIGTERM while reading: no temporary anywhere under OUTDIR"
	fi
done
exit_is 0 "a rerun after the reading kills" cp-dedup -j1 -o out in
same_as_ref out "... writes what an uninterrupted run writes"
is "$(ls -A out | grep '^\.' | grep -v '^\.set$')" "" "... and leaves nothing hidden but the set manifest"

# ---- killed at several moments on the whole input ----
finished=0
for t in 0.05 0.2 0.4; do
	for sig in TERM KILL; do
		rm -rf out
		cp-dedup -j2 -o out in 2>/dev/null &
		pid=$!
		sleep "$t"
		if kill -s "$sig" "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			# a signal that comes once the shards are in place finds the work done
			if [ -n "$(ls out 2>/dev/null)" ] && cmp -s out/docs-00000.shard ref/docs-00000.shard; then
				same_as_ref out "SIG$sig after ${t}s, at the very end: complete output"
			else
				nothing_accepted out "SIG$sig after ${t}s: nothing accepted"
			fi
			[ "$sig" = TERM ] &&
				no_temporaries out "SIGTERM after ${t}s: no temporary anywhere under OUTDIR"
		else
			wait "$pid"
			same_as_ref out "finished before ${t}s: complete output"
			finished=1
		fi
	done
done
# a finished set is never added to without --index (t2005): only what a killed run left
[ -e out/.set ] && rm -rf out
exit_is 0 "the rerun completes" cp-dedup -j2 -o out in
same_as_ref out "... with the uninterrupted result (and -j2 writes what -j1 wrote)"
is "$(ls -A out | grep '^\.' | grep -v '^\.set$')" "" "... and nothing hidden is left but the set manifest"
done_testing
