/* io.h: checked output, so a full disk or closed pipe is an error and never silent. */
#ifndef CP_IO_H
#define CP_IO_H

#include <stddef.h>
#include <stdio.h>

/* write all of n bytes to fd; -1 with errno on failure (EINTR retried) */
int write_full(int fd, const void *p, size_t n);
/* read up to n bytes, retrying short reads; returns bytes read or -1 */
long read_full(int fd, void *p, size_t n);
/* exactly n bytes at offset off; -1 with errno on failure (EIO when the file ends first) */
int pread_full(int fd, void *p, size_t n, long long off);
/* refuse to write binary data to a terminal (exit 2) */
void refuse_tty(int fd, const char *what);
/* flush and close stdout, dying on error (sbase: stdout closed and checked at exit) */
void close_stdout(void);
/* is fd a terminal? used to decide whether to show progress */
int is_tty(int fd);
/* read a whole file into memory; NULL with an error message on failure */
char *read_file(const char *path, size_t *len);
/* mkdir -p DIR; 0, or -1 after an error naming the directory */
int io_mkdirs(const char *dir);

#endif
