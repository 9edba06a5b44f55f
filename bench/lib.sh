# bench/lib.sh: what the bench scripts share (sourced, POSIX sh). bench_machine prints the
# machine line every script starts with: the CPU, its cores and the load when it starts, the
# BLAS cp links and the kernel OpenBLAS chose for this CPU, and every OPENBLAS_* and OMP_*
# setting, since each of them moves the figures. bench_warn says loudly, on stderr and in the
# output, that a figure cannot be trusted; bench_check_rate holds a peer against its published
# speed a thread, so that a peer slowed by the machine or misconfigured is not taken for the
# peer. bench_row adds a row to the table bench/all writes (BENCH_ROWS names its file).
# Benchmarks are not tests: nothing here fails a run.

: "${PYTHON:=python3}"

# Published speeds the peers are held to (a thread, on code):
# tiktoken encodes about 5-6 MB/s a thread (issue 16; the rate its users see)
TIKTOKEN_MBPS_THREAD=5 TIKTOKEN_PUBLISHED="5-6 MB/s"

# the OpenBLAS library BIN (a cp tool, default cp-train) runs with: path, version and kernel
bench_blas() {
	bin=${1:-${BUILD:-build}/bin/cp-train}
	lib=$(ldd "$bin" 2>/dev/null | sed -n 's/.*\(libopenblas[^ ]*\) => \([^ ]*\).*/\2/p' | head -1)
	[ -n "$lib" ] || lib=/usr/lib/x86_64-linux-gnu/libopenblas.so.0
	"$PYTHON" - "$lib" <<'PY' 2>/dev/null || echo "$lib (not queried)"
import ctypes, os, sys
path = os.path.realpath(sys.argv[1])
l = ctypes.CDLL(path)
l.openblas_get_config.restype = l.openblas_get_corename.restype = ctypes.c_char_p
par = {0: "sequential", 1: "pthreads", 2: "OpenMP"}.get(l.openblas_get_parallel(), "?")
print("%s (%s; %s, %d threads), kernel %s" % (l.openblas_get_config().decode(), path, par,
      l.openblas_get_num_threads(), l.openblas_get_corename().decode()))
PY
}

# the OPENBLAS_* and OMP_* variables set, or "none"
bench_env() {
	v=$(env | grep -E '^(OPENBLAS|OMP|GOTO|MKL)_[A-Z0-9_]*=' | sort | tr '\n' ' ' | sed 's/ $//')
	echo "${v:-none set}"
}

bench_machine() {
	cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
	fam=$(sed -n 's/^cpu family[^:]*: //p' /proc/cpuinfo | head -1)
	mod=$(sed -n 's/^model[^:]*: \([0-9]*\)$/\1/p' /proc/cpuinfo | head -1)
	flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' ' | sed 's/ $//')
	echo "machine: ${cpu:-unknown CPU} (family ${fam:-?} model ${mod:-?}; ${flags:-no AVX2}), $(nproc) cores" \
		"($(getconf _NPROCESSORS_ONLN) online), load $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M) UTC;" \
		"BLAS: $(bench_blas "$@"); OPENBLAS_*/OMP_*: $(bench_env)"
}

# bench_warn MESSAGE...: to stderr and to the output (once when both are the same place); the
# line goes to BENCH_WARNINGS too when that names a file
bench_warn() {
	line="!!! WARNING: $* !!!"
	echo "$line" >&2
	# fds 3 and 4 carry the caller's stdout and stderr into the command substitution
	{ same=$([ "$(readlink /proc/self/fd/3)" = "$(readlink /proc/self/fd/4)" ] && echo y) || same=; } 3>&1 4>&2
	[ -n "$same" ] || echo "$line"
	[ -z "${BENCH_WARNINGS:-}" ] || echo "$*" >>"$BENCH_WARNINGS"
}

# bench_check_rate PEER MB_PER_S THREADS PUBLISHED_PER_THREAD PUBLISHED_TEXT [CPU_S WALL_S]:
# warn when the peer ran below its published speed a thread; with CPU and wall seconds of its own
# process, say how many CPUs it had and its speed a CPU second, which tells a busy machine
# (each CPU second as fast as published) from a slow or misconfigured peer
bench_check_rate() {
	"$PYTHON" - "$@" <<'PY' | while IFS= read -r l; do bench_warn "$l"; done
import sys
peer, rate, th, pub = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if rate / th < pub:
    msg = "%s ran at %.2f MB/s a thread (%.2f MB/s on %d), below its published %s a thread" % (
        peer, rate / th, rate, th, sys.argv[5])
    if len(sys.argv) > 7:
        cpu, wall = float(sys.argv[6]), float(sys.argv[7])
        msg += "; it had %.2f CPUs of its %d threads (%.2f MB/s a CPU second)" % (
            cpu / wall, th, rate * wall / cpu if cpu else 0)
    print(msg + ": the ratios against it mean little")
PY
}

# bench_row STAGE OURS PEER RATIO GOAL: a row of bench/all's table (nothing without BENCH_ROWS)
bench_row() {
	[ -z "${BENCH_ROWS:-}" ] || printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5" >>"$BENCH_ROWS"
}
