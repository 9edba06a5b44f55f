#!/bin/sh
# t2008: cp-hash and cp-dedup on ranks on three "hosts": network namespaces of this machine
# (ip netns, veths on a bridge, addresses of the test's own), each rank in one with a hostname
# of its own, started by mpirun's own launcher through an rsh agent that enters the namespace,
# the ranks talking over TCP alone. What they write is what one process writes. Skips, naming
# why, where namespaces cannot be made (not root, no ip, no bridge or veth).
. "$(dirname "$0")/lib.sh"
need_cmd mpirun
need_cmd ip
need_cmd unshare
[ "$(id -u)" = 0 ] || skip_all "network namespaces need root"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
set -- $(stdlib_dirs email json unittest logging)
[ $# -gt 0 ] || skip_all "no standard library directories found"
# a build without MPI runs N processes of one rank each: nothing here to test
cp-hash -q -o probe.shard "$1" && mpirun --allow-run-as-root --oversubscribe -np 2 \
	"$BUILD/bin/cp-dedup" -n --report probe.json probe.shard >/dev/null 2>&1
[ "$(json_field probe.json 'len(r.get("ranks", []))' 2>/dev/null)" = 2 ] ||
	skip_all "cp-dedup does not join mpirun's job (built without MPI: no pkg-config ompi-c?)"

P=cp$$
NET=10.213.$(($$ % 250))
HOSTS="${P}h0 ${P}h1 ${P}h2"
cleanup() {
	for h in $HOSTS; do ip netns del "$h" 2>/dev/null; done
	ip link del "${P}br" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
make_hosts() {
	ip link add "${P}br" type bridge &&
	ip addr add "$NET.1/24" dev "${P}br" &&
	ip link set "${P}br" up || return 1
	local i=0 h
	for h in $HOSTS; do
		ip netns add "$h" &&
		ip link add "${P}v$i" type veth peer name eth0 netns "$h" &&
		ip link set "${P}v$i" master "${P}br" up &&
		ip netns exec "$h" ip addr add "$NET.$((i + 2))/24" dev eth0 &&
		ip netns exec "$h" ip link set eth0 up &&
		ip netns exec "$h" ip link set lo up || return 1
		i=$((i + 1))
	done
}
make_hosts >"$TMP/.err" 2>&1 || skip_all "cannot make network namespaces here: $(head -1 "$TMP/.err")"

# mpirun's rsh agent: [ssh options] HOST COMMAND... run in namespace HOST, under its name
cat >agent <<'EOF'
#!/bin/sh
while [ $# -gt 0 ]; do case $1 in -*) shift ;; *) break ;; esac; done
h=$1
shift
exec ip netns exec "$h" unshare --uts sh -c "hostname $h; $*"
EOF
chmod +x agent
export CP_DOCPIPE_BATCH_ITEMS=7 CP_DEDUP_PART_BYTES=150000
hosts() { # COMMAND...: on the three hosts, a rank on each
	mpirun --allow-run-as-root --mca plm_rsh_agent "$TMP/agent" \
		--host "${P}h0,${P}h1,${P}h2" -np 3 --map-by node \
		--mca oob_tcp_if_include "$NET.0/24" --mca btl tcp,self \
		--mca btl_tcp_if_include "$NET.0/24" \
		-x CP_DOCPIPE_BATCH_ITEMS -x CP_DEDUP_PART_BYTES -x ASAN_OPTIONS -x PATH "$@"
}

ok "a rank on each host" hosts sh -c 'echo "$(hostname) $(ip -4 -o addr show eth0 | wc -l)"'
is "$(sort "$TMP/.out" | tr '\n' ' ')" "${P}h0 1 ${P}h1 1 ${P}h2 1 " \
	"three hostnames, each with its own address"

ok "cp-hash, one process" cp-hash -q -o one/ --shard-docs 30 "$@"
ok "cp-hash on three hosts" hosts "$BUILD/bin/cp-hash" -q -j1 -o three/ --shard-docs 30 "$@"
ok "the same shards and manifest" diff -r one three
ok "cp-dedup, one process" cp-dedup -o d1 --index i1 --report r1.json one one
ok "cp-dedup on three hosts" hosts "$BUILD/bin/cp-dedup" -j1 -o d3 --index i3 --report r3.json one one
ok "the same kept shards and manifest" diff -r d1 d3
ok "the same index" cmp i1 i3
is "$(json_field r3.json '(r["docs_out"], r["exact_duplicates"], r["near_duplicates"], len(r["ranks"]))')" \
	"$(json_field r1.json '(r["docs_out"], r["exact_duplicates"], r["near_duplicates"], 3)')" \
	"the same report, with three ranks' bytes"
done_testing
