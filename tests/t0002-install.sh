#!/bin/sh
# t0002: make install and uninstall honour PREFIX and DESTDIR, tools and man pages alike.
. "$(dirname "$0")/lib.sh"

ok 'make install into DESTDIR' make -s -C "$SRC_DIR" BUILD="$BUILD" DESTDIR="$TMP/root" PREFIX=/opt/cp install
ntools=$(ls "$SRC_DIR"/cmd/cp-*.c | wc -l | tr -d ' ')
is "$(ls "$TMP/root/opt/cp/bin" | grep -c '^cp-')" "$ntools" 'every tool installed under PREFIX/bin'
ok 'an installed tool runs' "$TMP/root/opt/cp/bin/cp-cat" -h
ok 'cp-shard(5) installed' test -f "$TMP/root/opt/cp/share/man/man5/cp-shard.5"
ok 'cp-cat(1) installed' test -f "$TMP/root/opt/cp/share/man/man1/cp-cat.1"
ok 'make uninstall' make -s -C "$SRC_DIR" BUILD="$BUILD" DESTDIR="$TMP/root" PREFIX=/opt/cp uninstall
is "$(find "$TMP/root" -type f | wc -l | tr -d ' ')" 0 'uninstall removes every installed file'
done_testing
