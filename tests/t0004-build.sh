#!/bin/sh
# t0004: the build's hygiene. After the suite's build, make has nothing left to do (objects are
# kept, so `make` twice rebuilds nothing); `make check` builds and tests but installs nothing;
# the user's CPPFLAGS, CFLAGS and LDFLAGS reach every compile and link, and DEVELOPER=1 adds
# -Werror; a change in what make found (OpenMPI) rebuilds every object; clang with
# DEVELOPER=1 builds everything warning-free, and a second make of that build does nothing.
. "$(dirname "$0")/lib.sh"
need_cmd make

# a make of its own: not the MAKEFLAGS (DEVELOPER=1, SAN=1, -j) of a make check that runs this
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u DEVELOPER -u SAN -u CFLAGS make --no-print-directory -C "$SRC_DIR" "$@"; }
# commands NAME: the lines of make -n output in NAME that would compile, archive or link
commands() { grep -E '(^| )(cc|gcc|clang|ar|nvcc|scripts/embed)( |$)|-o ' "$1"; }

# ---- make twice rebuilds nothing
ok "make -q all: the suite's build ($BUILD) is up to date" mk -q BUILD="$BUILD" all
mk -n BUILD="$BUILD" all >again.txt 2>&1
is "$(commands again.txt)" "" "make -n all after the build prints no compile or link line"

# ---- what make found (OpenMPI, nvcc) is part of the build: without OpenMPI (MPI_LIBS=, as on
# a machine before scripts/deps) the same build directory is rebuilt, every object, and
# ranks.c without -DCP_HAVE_MPI; not relinked from objects of the other configuration
mk -n BUILD="$BUILD" MPI_LIBS= MPI_CFLAGS= all >nompi.txt 2>&1
like "$(grep -- ' -c ' nompi.txt | grep 'common/base/ranks.c')" "ranks\.c" \
	"make MPI_LIBS= all: ranks.c is compiled again"
is "$(grep -- ' -c ' nompi.txt | grep 'common/base/ranks.c' | grep -c -- -DCP_HAVE_MPI)" "0" \
	"... without -DCP_HAVE_MPI"
is "$(grep -- ' -c ' nompi.txt | grep -c 'common/tok/bpe.c')" "1" \
	"... and so is every other object (common/tok/bpe.c)"
if [ -n "$(pkg-config --libs ompi-c 2>/dev/null)" ]; then
	like "$(mk -n -B BUILD="$BUILD" "$BUILD/obj/common/base/ranks.o" 2>&1)" "-DCP_HAVE_MPI" \
		"with OpenMPI found, ranks.c is compiled with -DCP_HAVE_MPI"
else
	skip "no OpenMPI (pkg-config ompi-c)"
fi

# ---- make check installs nothing: scripts/deps is scripts/check's business
mk -n BUILD="$BUILD" check >check.txt 2>&1
like "$(cat check.txt)" "scripts/run-tests" "make -n check runs scripts/run-tests"
is "$(grep -n 'scripts/deps' check.txt)" "" "... and no scripts/deps"
sed -n '/^check:/,/^$/p; /^check-san:/,/^$/p' "$SRC_DIR/Makefile" >recipes.txt
like "$(cat recipes.txt)" "^check:" "the Makefile has a check recipe"
is "$(grep -n 'deps' recipes.txt)" "" "... which, with check-san's, names no deps"

# ---- the user's flags, and DEVELOPER=1 (make -n -B: every command, none run)
flags() { # MAKEARGS...: make -n -B of a tool, a unit test and a replay into a scratch BUILD
	mk -n -B BUILD="$TMP/flags" "$@" "$TMP/flags/bin/cp-cat" "$TMP/flags/tests/test-shard" \
		"$TMP/flags/tests/replay-fuzz-shard" >flags.txt 2>&1
}
ok "make -n -B with CPPFLAGS, CFLAGS and LDFLAGS" \
	flags CPPFLAGS=-DCP_T0004_CPP CFLAGS="-O1 -DCP_T0004_C" LDFLAGS=-Wl,--as-needed,-O1
grep -- ' -c ' flags.txt >compile.txt
grep -v -- ' -c ' flags.txt | grep -- ' -o ' >link.txt
ok "... it compiles" test -s compile.txt
ok "... and links" test -s link.txt
is "$(grep -v -- '-DCP_T0004_CPP' compile.txt)" "" "CPPFLAGS reaches every compile"
is "$(grep -v -- '-O1 -DCP_T0004_C' compile.txt)" "" "CFLAGS reaches every compile"
is "$(grep -v -- '-Wl,--as-needed,-O1' link.txt)" "" "LDFLAGS reaches every link"
is "$(grep -c -- '-Werror' flags.txt)" "0" "without DEVELOPER, no -Werror"
ok "make -n -B DEVELOPER=1" flags DEVELOPER=1
is "$(grep -- ' -c ' flags.txt | grep -v -- '-Werror')" "" "DEVELOPER=1: -Werror in every compile"

# ---- clang, DEVELOPER=1, a build of its own
if need_cmd clang 3; then
	# without OpenMPI, too (as on a machine before scripts/deps): the one build that
	# compiles the code a build without MPI runs
	mk -k -j2 CC=clang DEVELOPER=1 MPI_LIBS= MPI_CFLAGS= BUILD="$TMP/clang" all >clang.out 2>clang.err
	s=$?
	# the files clang complains about, each once
	warned=$(grep -Eo '^[^: ]+\.[ch]:[0-9]+:[0-9]+: (warning|error)' clang.err |
		sed 's/:.*//' | sort -u | tr '\n' ' ')
	is "$s:$warned" "0:" "make CC=clang DEVELOPER=1 all builds, no file warned of"
	[ -z "$warned" ] || grep -E 'warning:|error:' clang.err | head -10 | sed 's/^/#   /'
	if [ "$s" = 0 ]; then
		ok "... make -q: the clang build is up to date" \
			mk -q CC=clang MPI_LIBS= MPI_CFLAGS= BUILD="$TMP/clang" all
		mk -n CC=clang MPI_LIBS= MPI_CFLAGS= BUILD="$TMP/clang" all >again2.txt 2>&1
		is "$(commands again2.txt)" "" "... make -n prints no compile or link line"
		# a tool without MPI that a launcher started as one of 2 ranks stops, saying why
		mkdir -p src && echo 'x = 1' >src/a.py
		for t in cp-hash cp-train; do
			OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$TMP/clang/bin/$t" -o out-$t \
				src >nompi.out 2>nompi.err
			is "$?" 1 "$t without MPI as one of 2 ranks: exit status 1"
			like "$(cat nompi.err)" "one of 2 ranks.*built without MPI.*scripts/deps" \
				"... saying it was built without MPI and what to do"
			is "$(ls -d out-$t 2>/dev/null)" "" "... and writing nothing"
		done
		OMPI_COMM_WORLD_SIZE=1 "$TMP/clang/bin/cp-hash" -q -o one.shard src
		is "$?:$("$TMP/clang/bin/cp-cat" one.shard 2>/dev/null | wc -l | tr -d ' ')" "0:1" \
			"... as the one rank of 1 it runs"
	else
		for i in 1 2 3 4 5 6 7 8 9; do skip "the clang build failed"; done
	fi
fi
done_testing
