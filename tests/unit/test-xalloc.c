/* test-xalloc: base/xalloc.h and read_file in base/io.h, at the sizes where their paths change.
 * A block grown from the heap into its own mapping keeps its bytes, as does one grown and shrunk
 * there, a large xcalloc is all zeros, and read_file gives
 * a file's exact bytes whether it ends at its stat size, grows while being read (a pipe, which
 * has none), or is empty. */
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "tap.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 2654435761u >> 13);
}

static int has_pattern(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(i))
			return 0;
	return 1;
}

static void test_realloc(void)
{
	size_t small = 3 << 20, big = 24 << 20, bigger = 40 << 20;
	unsigned char *p = xmalloc(small);
	for (size_t i = 0; i < small; i++)
		p[i] = pattern(i);
	p = xrealloc(p, big);
	ok(has_pattern(p, small), "xrealloc into its own mapping keeps the first %zu bytes", small);
	for (size_t i = small; i < big; i++)
		p[i] = pattern(i);
	p = xrealloc(p, bigger);
	ok(has_pattern(p, big), "xrealloc of a mapped block keeps %zu bytes", big);
	p = xrealloc(p, small);
	ok(has_pattern(p, small), "xrealloc shrinking it keeps %zu bytes", small);
	free(p);

	unsigned char *z = xcalloc(big / 8, 8);
	size_t nonzero = 0;
	for (size_t i = 0; i < big; i++)
		nonzero += z[i] != 0;
	is_int(nonzero, 0, "a %zu-byte xcalloc is zeros", big);
	free(z);
}

/* PATH written with N pattern bytes */
static void write_pattern(const char *path, size_t n)
{
	unsigned char *p = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(i);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write_full(fd, p, n) < 0 || close(fd))
		die_errno("cannot write '%s'", path);
	free(p);
}

static void test_read_file(void)
{
	char dir[] = "/tmp/cp-test-xalloc.XXXXXX";
	if (!mkdtemp(dir))
		die_errno("mkdtemp");
	char *path = xasprintf("%s/f", dir);
	size_t sizes[] = { 0, 1, 65535, 65536, 65537, (size_t)9 << 20 };
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		write_pattern(path, sizes[k]);
		size_t len = SIZE_MAX;
		unsigned char *p = (unsigned char *)read_file(path, &len);
		ok(p && len == sizes[k] && has_pattern(p, len) && p[len] == 0,
		   "read_file of a %zu-byte file: its bytes and a terminator", sizes[k]);
		free(p);
	}

	/* a FIFO has no size to trust: the reader grows its block as the bytes come */
	char *fifo = xasprintf("%s/fifo", dir);
	if (mkfifo(fifo, 0600))
		die_errno("mkfifo");
	size_t n = 300000;
	pid_t pid = fork();
	if (pid == 0) {
		write_pattern(fifo, n);
		_exit(0);
	}
	size_t len = 0;
	unsigned char *p = (unsigned char *)read_file(fifo, &len);
	int st;
	waitpid(pid, &st, 0);
	ok(p && len == n && has_pattern(p, len), "read_file of a FIFO: all %zu bytes", n);
	free(p);

	unlink(fifo);
	unlink(path);
	rmdir(dir);
	free(fifo);
	free(path);
}

int main(void)
{
	test_realloc();
	test_read_file();
	return done_testing();
}
