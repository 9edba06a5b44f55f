#!/bin/sh
# t0003: the house keeps its rooms. Every #include "..." in common/*/*.[ch] is held against the
# layering table of common/README.md (one assertion per subsystem, failures named FILE:LINE);
# every file under common/*/ is named in the README's Files sections and every file named there
# exists. cmd/ may include anything. The checks are first run on a copy with a planted bad
# include and a planted unlisted file, so a checker that sees nothing cannot pass.
. "$(dirname "$0")/lib.sh"

# table ROOT: "SUBSYSTEM ALLOWED..." per row of the layering table, in its order
table() {
	sed -n '/<!-- layering:begin -->/,/<!-- layering:end -->/p' "$1/README.md" |
		awk -F'|' '/^\|/ { s = $2; a = $3; gsub(/^ +| +$/, "", s); gsub(/^ +| +$/, "", a)
			if (s == "subsystem" || s ~ /^-+$/) next; print s, a }'
}

# violations ROOT SUB ALLOWED...: FILE:LINE: why, for each include of ROOT/SUB/*.[ch] that
# reaches outside SUB and ALLOWED, names no file under ROOT, or is not by its path under ROOT
violations() {
	root=$1 sub=$2
	shift 2
	for f in "$root/$sub"/*.[ch]; do
		[ -e "$f" ] || continue
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" /dev/null
	done | awk -v root="$root" -v room="$sub" -v allowed="$sub $*" '
		BEGIN { n = split(allowed, a, " "); for (i = 1; i <= n; i++) ok[a[i]] = 1 }
		{
			split($0, p, ":"); file = p[1]; line = p[2]
			inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
			where = substr(file, length(root) + 2) ":" line
			if (inc !~ /\//) {
				print where ": includes \"" inc "\", not by its path under common/"
				next
			}
			to = inc; sub(/\/.*$/, "", to)
			if (!(to in ok))
				print where ": " room " includes \"" inc "\" (" to " is not in its may-include list)"
			else if (system("test -f \"" root "/" inc "\"") != 0)
				print where ": includes \"" inc "\", which is no file under common/"
		}'
}

# listed ROOT: the files the README names, as SUB/NAME (x.[ch] standing for x.c and x.h)
listed() {
	awk '/^## Files/ { on = 1; next } /^## / { on = 0 }
		on && /^### / { room = $2; next }
		on && room != "" {
			s = $0
			while (match(s, /`[^`]*`/)) {
				w = substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH)
				if (w ~ /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.\[ch\]$/) {
					b = w; sub(/\.\[ch\]$/, "", b); print room "/" b ".c"; print room "/" b ".h"
				} else if (w ~ /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.(c|h|py|html)$/)
					print room "/" w
			}
		}' "$1/README.md" | sort -u
}
present() { (cd "$1" && find . -mindepth 2 -maxdepth 2 -type f | sed 's|^\./||' | sort); }
unlisted() { listed "$1" >"$TMP/listed"; present "$1" | comm -23 - "$TMP/listed"; }
missing() { present "$1" >"$TMP/present"; listed "$1" | comm -23 - "$TMP/present"; }

# ---- the checker sees a planted bad include and a planted unlisted file
mkcopy() {
	cp -r "$SRC_DIR/common" copy
	f=$(ls copy/base/*.c | head -1)
	printf '#include "eval/passk.h"\n' >>"$f"
	echo "$f:$(wc -l <"$f" | tr -d ' ')" >planted
	echo '/* planted */' >copy/base/planted.c
	rm copy/base/buf.h
}
setup "a copy of common/ with a planted bad include" mkcopy
where=$(sed 's|^copy/||' planted)
base_allowed=$(table copy | awk '$1 == "base" { $1 = ""; print }')
like "$(violations copy base $base_allowed)" "^$where: base includes \"eval/passk.h\"" \
	"a planted include of eval/ in base/ is caught, as $where"
like "$(unlisted copy)" "^base/planted.c$" "a planted file the README does not name is caught"
like "$(missing copy)" "^base/buf.h$" "a file the README names that is gone is caught"

# ---- the real tree
table "$SRC_DIR/common" >rows
ok "the layering table has rows" test -s rows
above=
while read -r sub allowed; do
	v=$(violations "$SRC_DIR/common" "$sub" $allowed)
	is "$v" "" "common/$sub/ includes only $sub${allowed:+ and $allowed}"
	bad=
	for a in $allowed; do
		case " $above " in *" $a "*) ;; *) bad="$bad $a" ;; esac
	done
	is "$bad" "" "$sub may include only subsystems above it in the table"
	above="$above $sub"
done <rows
for d in "$SRC_DIR"/common/*/; do
	d=$(basename "$d")
	grep -q "^$d " rows
	_tap $? "common/$d/ has a row in the layering table"
done
is "$(unlisted "$SRC_DIR/common")" "" "every file under common/*/ is named in common/README.md"
is "$(missing "$SRC_DIR/common")" "" "every file common/README.md names exists"
done_testing
