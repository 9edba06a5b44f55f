/* seccomp.c: the candidates' seccomp filter (see seccomp.h). */
#include "eval/seccomp.h"
#include "eval/sandbox.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const scfilter_denied[] = {
	"unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree",
	"move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register", "keyctl", "add_key", "request_key", "init_module",
	"finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
	"swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime",
	"adjtimex", "syslog", "quotactl", "vhangup", "iopl", "ioperm", "lookup_dcookie",
	"name_to_handle_at", "open_by_handle_at", "personality",
};
const size_t scfilter_ndenied = sizeof scfilter_denied / sizeof *scfilter_denied;

const uint64_t scfilter_clone_flags[] = { CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
					  CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP };
const size_t scfilter_nclone_flags = sizeof scfilter_clone_flags / sizeof *scfilter_clone_flags;

static int filter_add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
		      const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	return seccomp_rule_add_array(ctx, action, nr, n, cmp);
}

/* libseccomp's SCMP_A* macros leave fields out, which clang's -Wextra refuses */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, uint64_t a, uint64_t b)
{
	struct scmp_arg_cmp c = { arg, op, a, b };
	return c;
}

static int filter_rules(scmp_filter_ctx ctx)
{
	int rc = 0;
	for (size_t i = 0; i < scfilter_ndenied && !rc; i++)
		rc = filter_add(ctx, SCMP_ACT_ERRNO(EPERM), scfilter_denied[i], 0, NULL);
	/* clone3 passes its flags in memory a filter cannot read: make libc fall back to clone */
	if (!rc)
		rc = filter_add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	for (size_t i = 0; i < scfilter_nclone_flags && !rc; i++) {
		uint64_t f = scfilter_clone_flags[i];
		struct scmp_arg_cmp c = arg_cmp(0, SCMP_CMP_MASKED_EQ, f, f);
		rc = filter_add(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &c);
	}
	if (!rc) {
		struct scmp_arg_cmp c = arg_cmp(0, SCMP_CMP_NE, AF_UNIX, 0);
		rc = filter_add(ctx, SCMP_ACT_ERRNO(EPERM), "socket", 1, &c);
	}
	if (!rc) {
		struct scmp_arg_cmp c = arg_cmp(1, SCMP_CMP_EQ, TIOCSTI, 0);
		rc = filter_add(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, &c);
	}
	return rc;
}

int scfilter_build(struct buf *out)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -1;
	int rc = filter_rules(ctx);
	/* libseccomp exports to a file descriptor only */
	int fd = rc ? -1 : memfd_create("cp-humaneval-bpf", MFD_CLOEXEC);
	rc = -1;
	if (fd >= 0 && !seccomp_export_bpf(ctx, fd)) {
		off_t n = lseek(fd, 0, SEEK_END);
		if (n > 0 && n % 8 == 0) {
			size_t at = out->len;
			buf_grow(out, (size_t)n);
			if (pread(fd, out->p + at, (size_t)n, 0) == n) {
				out->len = at + (size_t)n;
				rc = 0;
			}
		}
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return rc;
}

int scfilter_install(struct sandbox *sb)
{
	struct buf b = { 0 };
	int rc = scfilter_build(&b);
	if (!rc)
		sbx_set_filter(sb, b.p, b.len / 8);
	buf_free(&b);
	return rc;
}
