/* read-floor.c: the least any tool pays to read a source tree: walk it (getdents64, d_type,
 * no stat), open, read and close every *.py file, and do nothing with the bytes. bench/dedup.sh
 * prints its time beside the others, since on a tree of small files the kernel's share of
 * that work bounds every ratio. Not part of the build: the bench script compiles it.
 * usage: read-floor DIR...   (prints "FILES BYTES" on stdout) */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char buf[1 << 20];
static unsigned long long n_files, n_bytes;

static void floor_walk(int dfd)
{
	char db[32768] __attribute__((aligned(8)));
	ssize_t got;
	while ((got = getdents64(dfd, db, sizeof db)) > 0) {
		for (ssize_t off = 0; off < got;) {
			const struct dirent64 *d = (const struct dirent64 *)(db + off);
			off += d->d_reclen;
			const char *name = d->d_name;
			size_t l = strlen(name);
			if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
				continue;
			if (d->d_type == DT_DIR) {
				int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (fd >= 0) {
					floor_walk(fd);
					close(fd);
				}
			} else if (d->d_type == DT_REG && l > 3 && !strcmp(name + l - 3, ".py")) {
				int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
				if (fd < 0)
					continue;
				ssize_t r;
				while ((r = read(fd, buf, sizeof buf)) > 0)
					n_bytes += (unsigned long long)r;
				n_files++;
				close(fd);
			}
		}
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			perror(argv[i]);
			return 1;
		}
		floor_walk(fd);
		close(fd);
	}
	printf("%llu %llu\n", n_files, n_bytes);
	return 0;
}
