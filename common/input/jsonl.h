/* jsonl.h: reading JSON-lines dumps (one JSON object per line, as GitHub code datasets ship),
 * plain, gzip or zstd compressed, streaming in bounded memory.
 *
 * The reader hands out lines; the parser takes one line apart into the text field (unescaped
 * to bytes) and the other members, kept as JSON text (the document's metadata). The parser
 * is hand-written: it only validates and copies spans, which is several times faster than
 * building a jansson tree, and it accepts the \udcXX escapes with which cp tools write bytes
 * that are not UTF-8. It is fuzzed (tests/fuzz/fuzz-jsonl.c). */
#ifndef CP_JSONL_H
#define CP_JSONL_H

#include <stddef.h>
#include <stdint.h>
#include "base/buf.h"

/* Lines longer than this are skipped by default (they must fit in memory). */
#define JSONL_MAX_LINE_DEFAULT ((size_t)1 << 28)

struct jsonl_reader;
/* Open PATH; gzip and zstd are recognised by their magic bytes, anything else is read as
 * is. NULL after an error naming the file. */
struct jsonl_reader *jsonl_open(const char *path, size_t max_line);
/* Bytes [FROM, TO) of the plain file PATH, where lines start at both ends (jsonl_span's),
 * its lines numbered from LINE0 + 1: a part of a file, read on its own (ranks share one). */
struct jsonl_reader *jsonl_open_range(const char *path, size_t max_line, uint64_t from,
				      uint64_t to, uint64_t line0);
/* Whether the file open as FD is compressed (gzip or zstd: it cannot be cut into ranges):
 * 1 or 0; -1 when it cannot be read (nothing printed). */
int jsonl_compressed(int fd);
/* Of the plain file open as FD (SIZE bytes, named PATH in messages): *AT, where the first
 * line that starts at or after byte FROM starts (SIZE when none does), and *NL, the '\n'
 * from there to where the first line at or after TO starts. 0, or -1 after an error. */
int jsonl_span(int fd, const char *path, uint64_t size, uint64_t from, uint64_t to,
	       uint64_t *at, uint64_t *nl);
/* Read from memory instead (tests, fuzzing); NAME is used in messages. */
struct jsonl_reader *jsonl_open_mem(const void *data, size_t len, const char *name,
				    size_t max_line);
/* The next line without its "\n": 1 and *line, *len (valid until the next call); 2 when the
 * line was longer than max_line and was skipped (*len is its length, *line NULL); 0 at the
 * end; -1 after a read or decompression error (message printed naming file and line). */
int jsonl_next(struct jsonl_reader *r, const char **line, size_t *len);
/* Number of the line last returned, from 1. */
uint64_t jsonl_lineno(const struct jsonl_reader *r);
void jsonl_close(struct jsonl_reader *r);

struct jsonl_error {
	const char *why;	/* static text */
	size_t offset;		/* byte offset in the line */
};
/* Parse LINE, a JSON object. The string member named FIELD (the last one, when repeated)
 * is unescaped into CONTENT (reset first); every other member is appended to META as a
 * compact object {"key":value,...} (META reset first; left empty when there is none).
 * Returns 0 when FIELD was found, 1 when the line is blank (nothing to take), -1 when the
 * line is not a JSON object holding FIELD as a string (*err says why and where).
 * FIELD's \udc80..\udcff escapes become the raw bytes 0x80..0xff; other lone surrogates
 * become U+FFFD (one code point, like Python's lone surrogate). */
int jsonl_parse(const char *line, size_t len, const char *field, struct buf *content,
		struct buf *meta, struct jsonl_error *err);

#endif
