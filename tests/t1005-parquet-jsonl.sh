#!/bin/sh
# t1005: scripts/cp-parquet-jsonl, Parquet (as the Hugging Face hub serves The Stack and
# codeparrot-clean) to JSON lines for cp-hash: every row with text becomes a document with its
# content intact (UTF-8 too) and, in order, over several row groups; the default columns
# (repo_name, path, license, size) kept as metadata and shown by cp-cat, --keep all keeping the
# others, --column naming the text; rows without text skipped and counted; a missing column
# or an unreadable file named, exit 1.
. "$(dirname "$0")/lib.sh"
need_python_module pyarrow
P="$SRC_DIR/scripts/cp-parquet-jsonl"

ok "a Parquet file of 3 row groups" "$PYTHON" -c '
import pyarrow as pa, pyarrow.parquet as pq
n = 50
content = [None if i == 7 else "def f%d():\n    return %r\n" % (i, "é" * i) for i in range(n)]
t = pa.table({"content": content, "repo_name": ["org/r%d" % i for i in range(n)],
              "path": ["src/m%d.py" % i for i in range(n)], "license": ["mit"] * n,
              "size": [i for i in range(n)], "stars": [i * 10 for i in range(n)]})
pq.write_table(t, "t.parquet", row_group_size=20)
t2 = t.rename_columns(["code" if c == "content" else c for c in t.column_names])
pq.write_table(t2, "code.parquet")
'
ok "to cp-hash" sh -c "'$P' t.parquet 2>skip.err | cp-hash --jsonl -o docs/ /dev/stdin"
like "$(cat skip.err)" "1 rows without text skipped \\(49 written\\)" "the row without text is counted"
ok "cp-cat the documents" sh -c 'cp-cat docs >docs.jsonl'
ok "49 documents in row order, content and metadata intact" "$PYTHON" -c '
import json
docs = [json.loads(l) for l in open("docs.jsonl")]
want = [i for i in range(50) if i != 7]
assert len(docs) == 49, len(docs)
for d, i in zip(docs, want):
    assert d["content"] == "def f%d():\n    return %r\n" % (i, "é" * i), (i, d["content"])
    assert d["meta"] == {"repo_name": "org/r%d" % i, "path": "src/m%d.py" % i, "license": "mit", "size": i}, d["meta"]
'
ok "--keep all" sh -c "'$P' --keep all t.parquet 2>/dev/null | head -1 >all.jsonl"
is "$("$PYTHON" -c 'import json; print(sorted(json.load(open("all.jsonl"))))')" \
	"['content', 'license', 'path', 'repo_name', 'size', 'stars']" "every column kept"
ok "--column code" sh -c "'$P' --column code code.parquet 2>/dev/null | head -2 >code.jsonl"
is "$("$PYTHON" -c 'import json; print(json.loads(open("code.jsonl").readline())["content"])')" \
	"$(printf 'def f0():\n    return '"''")" "the named column is the content"
exit_is 1 "a missing column" "$P" --column text t.parquet
err_like "'t.parquet' has no column 'text' \\(it has: content, repo_name" "names the file, the column and what there is"
printf 'not parquet' >bad.parquet
exit_is 1 "an unreadable file" "$P" bad.parquet
err_like "cannot read 'bad.parquet'" "names the file"
done_testing
