#!/bin/sh
# t2011: when outputs wait for the disk (man/cp-shard.5, SETS). A shard is renamed into place
# without an fsync, unless CP_SYNC is set (and not 0) or cp-dedup --index commits to it; the
# manifest, the index and the report are synced always. What a crash could then leave (a
# shard cut short, a page of zeros in it) is refused by the next stage, naming the file.
. "$(dirname "$0")/lib.sh"

set -- $(stdlib_dirs email json)
need all "no Python sources in the standard library of $PYTHON" test $# -gt 0
trees="$*"

# synced LOG GLOB: how many fsync calls of LOG (strace -y) were on files matching GLOB
synced() { grep -E '^[0-9]+ +f(data)?sync\(' "$1" | grep -c -- "$2"; }

if need_cmd strace 15; then
	# LeakSanitizer cannot run under ptrace: the sanitizer builds' leak check is left out
	st() { log=$1; shift
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
			strace -f -y -qq -e trace=fsync,fdatasync -o "$log" "$@"; }
	ok "cp-hash -o DIR/, CP_SYNC unset" st h.log env -u CP_SYNC cp-hash -q -j2 --shard-docs 20 -o h/ $trees
	n=$(ls h/*.shard | wc -l)
	ok "... in $n shards, more than one" test "$n" -ge 2
	is "$(synced h.log '\.shard\.tmp')" 0 "... none of its $n shards is synced"
	is "$(synced h.log '\.set\.tmp')" 1 "... its manifest is"

	ok "cp-dedup -o DIR/ --report, CP_SYNC unset" st d.log env -u CP_SYNC cp-dedup -j2 -o d/ --report r.json h
	is "$(synced d.log '\.shard\.tmp')" 0 "... no clean shard is synced"
	is "$(synced d.log '\.set\.tmp')" 1 "... the manifest is"
	is "$(synced d.log 'r\.json\.tmp')" 1 "... and the report"

	rm -rf d
	ok "CP_SYNC=0: the same" st d0.log env CP_SYNC=0 cp-dedup -j2 -o d/ h
	is "$(synced d0.log '\.shard\.tmp')" 0 "... no clean shard is synced"

	rm -rf d
	ok "CP_SYNC=1" st d1.log env CP_SYNC=1 cp-dedup -j2 -o d/ h
	k=$(ls d/*.shard | wc -l)
	is "$(synced d1.log '\.shard\.tmp')" "$k" "... every clean shard ($k) is synced before its rename"

	rm -rf h
	ok "cp-hash with CP_SYNC=1" st h1.log env CP_SYNC=1 cp-hash -q -j2 --shard-docs 20 -o h/ $trees
	is "$(synced h1.log '\.shard\.tmp')" "$n" "... every shard ($n) is synced"

	rm -rf d
	ok "cp-dedup --index, CP_SYNC unset" st di.log env -u CP_SYNC cp-dedup -j2 -o d/ --index idx h
	k=$(ls d/*.shard | wc -l)
	is "$(synced di.log '\.shard\.tmp')" "$k" "... the shards the index vouches for are synced ($k)"
	is "$(synced di.log 'idx\.pending')" 1 "... and the index"
fi

# ---- what a crash before the writeback could leave, refused ----
rm -rf z && ok "a set of level-0 shards" cp-hash -q -L 0 --shard-docs 20 -o z/ $trees
first=$(ls z/*.shard | head -1)
size=$(wc -c <"$first")
cp -r z zz
# a page of zeros in the middle, the size unchanged: the block's checksum fails
dd if=/dev/zero of="zz/${first#z/}" bs=4096 seek=$((size / 8192)) count=1 conv=notrunc 2>/dev/null
exit_is 1 "a shard with a page of zeros: cp-dedup refuses the set" cp-dedup -o zd/ zz
err_like "zz/${first#z/}'" "... naming the shard"
ok "... and writes no clean set" test ! -e zd/.set
cp -r z zc
truncate -s $((size / 2)) "zc/${first#z/}"
exit_is 1 "a shard cut short: cp-cat refuses the set" cp-cat zc
err_like "'${first#z/}'" "... naming the shard"
: >"zc/${first#z/}"
exit_is 1 "a shard left empty: refused as well" cp-cat zc
err_like "'${first#z/}'" "... naming the shard"
done_testing
