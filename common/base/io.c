/* io.c: write/read loops that treat every short write, EPIPE and ENOSPC as the error it is. */
#include "base/io.h"
#include "base/die.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int write_full(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

long read_full(int fd, void *p, size_t n)
{
	char *s = p;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, s + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!r)
			break;
		got += (size_t)r;
	}
	return (long)got;
}

int pread_full(int fd, void *p, size_t n, long long off)
{
	char *s = p;
	while (n) {
		ssize_t r = pread(fd, s, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (!r)
				errno = EIO;
			return -1;
		}
		s += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

int is_tty(int fd)
{
	return isatty(fd);
}

void refuse_tty(int fd, const char *what)
{
	if (isatty(fd))
		die_usage("refusing to write binary %s to a terminal (use -o FILE or a pipe)", what);
}

void close_stdout(void)
{
	if (fflush(stdout) || ferror(stdout) || fclose(stdout))
		die_errno("error writing to standard output");
}

char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		error_errno("cannot open '%s'", path);
		return NULL;
	}
	struct stat st;
	size_t cap = 1 << 16, n = 0;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode))
		cap = (size_t)st.st_size + 1;
	char *p = xmalloc(cap);
	for (;;) {
		/* a file read to its stat size is probed for more into a byte of the terminator's
		 * room, so it is not copied into a block twice its size only to find EOF */
		ssize_t r = n + 1 >= cap ? read(fd, p + n, 1) : read(fd, p + n, cap - n - 1);
		if (r > 0 && n + 1 >= cap) {
			n += (size_t)r;
			p = xrealloc(p, cap *= 2);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			error_errno("cannot read '%s'", path);
			free(p);
			close(fd);
			return NULL;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	close(fd);
	p[n] = 0;
	*len = n;
	return p;
}

int io_mkdirs(const char *dir)
{
	char *p = xstrdup(dir);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0777) && errno != EEXIST) {
				error_errno("cannot create directory '%s'", p);
				free(p);
				return -1;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	struct stat st;
	int ret = 0;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		ret = error("'%s' is not a directory", dir);
	free(p);
	return ret;
}
