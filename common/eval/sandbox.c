/* sandbox.c: the process sandbox behind cp-humaneval (see sandbox.h).
 *
 * Namespace mode, per candidate:
 *   parent --fork--> C: own process group, unshare(user, pid, net, mount, ipc, uts); the parent
 *                       writes C's uid/gid maps (one unprivileged uid: nobody when we are root,
 *                       else our own uid); C takes that uid and forks
 *   C --fork--> G: pid 1 of the new pid namespace: builds the candidate's root and pivots into
 *                  it (below), forks P, reaps, exits with P; when G dies the kernel kills
 *                  everything left in the namespace
 *   G --fork--> P: own process group, rlimits, no_new_privs, no capabilities, seccomp, exec.
 * The parent kills C's process group (C and G) at the deadline, which takes the namespace down.
 * A session (warm mode) is the same sandbox with the program itself as G: a server that is
 * pid 1, forks one child per request and kills everything else in the namespace after each;
 * C's death takes it down through its parent-death signal.
 * The children run between fork and exec in a multi-threaded parent, so they only make system
 * calls: every string and table they need is prepared before the fork.
 *
 * The candidate's root: nothing of the host is visible but what the caller binds (the
 * interpreter, its libraries and standard library), because whatever is visible can be read
 * and every UNIX socket in it connected to, read-only mount or not. G mounts a small tmpfs on
 * SBX_STAGE and pivots into it, so the host's tree hangs at SBX_OLDROOT, whole again (the
 * staging mount no longer covers its SBX_STAGE); it builds the new root in a second tmpfs at
 * SBX_NEWROOT from a plan made in sbx_new (directories, the host's symbolic links on the way,
 * read-only recursive binds of the host paths), adds /dev/null, zero and urandom, a fresh
 * /proc of the new pid namespace and the scratch tmpfs on /tmp, makes the root read-only,
 * pivots into it and detaches the host's tree. There is no /sys, no devpts and no /dev/shm.
 * G also clears the copy of our command line and environment it was forked with and makes
 * itself non-dumpable, since it is the candidate's /proc/1. */
#include "eval/sandbox.h"
#include "base/xalloc.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef MOUNT_ATTR_NOEXEC
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* the unprivileged identity candidates get when we are root (nobody/nogroup) */
#define SBX_NOBODY 65534
#define SBX_SCRATCH "/tmp"
#define SBX_STAGE "/tmp" /* any host directory: the first pivot uncovers it again */
#define SBX_NEWROOT "/newroot"
#define SBX_OLDROOT "/oldroot"
#define SBX_LINK_DEPTH 16 /* symbolic links followed in a row while planning the root */
#define SBX_GRACE_S 2.0 /* after the kill, how long to wait for the pipes to close */

/* fixed descriptor layout inside the children */
enum { FD_INPUT = 3, FD_REPORT = 4, FD_ERR = 5, FD_SYNC_R = 6, FD_SYNC_W = 7, FD_FIRST_FREE = 8 };

/* where a child failed, sent to the parent on the error pipe */
enum step {
	ST_FDS, ST_SETPGID, ST_UNSHARE, ST_SYNC, ST_SETGROUPS, ST_SETGID, ST_SETUID, ST_FORK,
	ST_MNT_PRIVATE, ST_MNT_RDONLY, ST_MNT_SCRATCH, ST_MNT_PROC, ST_CHDIR, ST_RLIMIT, ST_NNP,
	ST_CAPS, ST_SECCOMP, ST_EXEC, ST_SIGNALS, ST_STAGE, ST_PIVOT, ST_ROOT_DIR, ST_ROOT_LINK,
	ST_ROOT_BIND, ST_ROOT_DEV, ST_ROOT_RDONLY, ST_OLDROOT,
};
static const char *const step_name[] = {
	"descriptors", "setpgid/setsid", "unshare namespaces", "uid map handshake", "setgroups",
	"setresgid", "setresuid", "fork", "private mounts", "read-only remount (mount_setattr)",
	"scratch tmpfs", "/proc", "chdir to scratch", "setrlimit", "no_new_privs",
	"dropping capabilities", "seccomp", "exec", "signal mask", "staging tmpfs", "pivot_root",
	"making a directory of the root", "making a symbolic link of the root", "binding",
	"binding /dev", "read-only root", "detaching the host's tree",
};

struct child_err {
	int step, err, op; /* op: the root_op it failed on, or -1 */
};

/* One step of building the candidate's root (see the top): dst under SBX_NEWROOT, src under
 * SBX_OLDROOT (a bind) or the target (a link); path the host path, for messages. */
enum root_kind { RK_DIR, RK_LINK, RK_FILE, RK_TREE };
struct root_op {
	enum root_kind kind;
	char *path, *dst, *src;
};

struct sandbox {
	struct sbx_config cfg;
	unsigned prot;
	int root;
	uid_t uid_out, uid_in;
	gid_t gid_out, gid_in;
	char uid_map[64], gid_map[64];
	char tmpfs_opts[96];
	struct sock_fprog prog;
	struct sock_filter *filter;
	char *scratch_base; /* plain mode: where scratch directories go */
	struct root_op *ops; /* namespace mode: the candidate's root, in order */
	size_t nops, aops, nbinds;
	/* where our command line and environment lie, cleared in G (0: unknown) */
	unsigned long arg_start, arg_end, env_start, env_end;
};

/* arguments a child needs, all ready before fork */
struct spawn {
	const struct sandbox *sb;
	const char *const *argv;
	const char *scratch; /* plain mode */
	int in_fd, out_w, rep_w, err_w, sync_r, sync_w;
	int session; /* the program is a long-lived server: pid 1 itself, no CPU limit */
};

void sbx_config_default(struct sbx_config *c)
{
	static const char *const env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" SBX_SCRATCH,
					   "LC_ALL=C.UTF-8", NULL };
	memset(c, 0, sizeof *c);
	c->mode = SBX_NAMESPACES;
	c->timeout = 3.0;
	c->cpu_seconds = 4;
	c->mem_bytes = 1ULL << 30;
	c->fsize_bytes = 16ULL << 20;
	c->scratch_bytes = 64ULL << 20;
	c->nproc = 64;
	c->nofile = 64;
	c->output_max = 64 << 10;
	c->report_max = 1 << 20;
	c->env = env;
}

/* ---- planning the candidate's root (in the parent, before any fork) ---- */

static int root_has(const struct sandbox *sb, const char *path, int but_dirs)
{
	for (size_t i = 0; i < sb->nops; i++)
		if (!strcmp(sb->ops[i].path, path) && !(but_dirs && sb->ops[i].kind == RK_DIR))
			return 1;
	return 0;
}

/* PATH lies in a directory already bound whole */
static int root_covered(const struct sandbox *sb, const char *path)
{
	for (size_t i = 0; i < sb->nops; i++) {
		const struct root_op *o = &sb->ops[i];
		size_t n = strlen(o->path);
		if (o->kind == RK_TREE && !strncmp(path, o->path, n) && (!path[n] || path[n] == '/'))
			return 1;
	}
	return 0;
}

static void root_add(struct sandbox *sb, enum root_kind kind, const char *path, const char *target)
{
	/* a directory made for what lies in it may still be bound whole later, over it */
	if (root_has(sb, path, kind == RK_TREE))
		return;
	if (sb->nops == sb->aops) {
		sb->aops = sb->aops ? 2 * sb->aops : 32;
		sb->ops = xrealloc(sb->ops, sb->aops * sizeof *sb->ops);
	}
	struct root_op *o = &sb->ops[sb->nops++];
	o->kind = kind;
	o->path = xstrdup(path);
	o->dst = xasprintf(SBX_NEWROOT "%s", path);
	o->src = kind == RK_LINK ? xstrdup(target) : kind == RK_DIR ? NULL
						      : xasprintf(SBX_OLDROOT "%s", path);
	sb->nbinds += kind == RK_FILE || kind == RK_TREE;
}

/* the component of PATH at *P appended to CUR (a path free of symbolic links), "." and ".."
 * taken lexically, which is right since CUR holds no links; 0 when it is one of those */
static int root_step(char *cur, size_t size, const char **p)
{
	while (**p == '/')
		(*p)++;
	size_t len = strcspn(*p, "/"), n = strlen(cur);
	const char *c = *p;
	*p += len;
	if (len == 1 && c[0] == '.')
		return 0;
	if (len == 2 && c[0] == '.' && c[1] == '.') {
		char *slash = strrchr(cur, '/');
		if (slash)
			*slash = 0;
		return 0;
	}
	if (n + 1 + len >= size)
		return -1;
	cur[n] = '/';
	memcpy(cur + n + 1, c, len);
	cur[n + 1 + len] = 0;
	return 1;
}

/* Plan PATH (absolute) into the root as the host has it: its directories, the symbolic links
 * on the way (followed), and the file or directory it names bound read-only. What is not
 * there is left out: the interpreter then fails to start, and says so. */
static void root_plan(struct sandbox *sb, const char *path, int depth)
{
	char cur[PATH_MAX] = "";
	const char *p = path;
	if (depth > SBX_LINK_DEPTH || path[0] != '/')
		return;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			return;
		int r = root_step(cur, sizeof cur, &p);
		if (r < 0)
			return;
		if (!r)
			continue;
		int last = !p[strspn(p, "/")];
		struct stat st;
		if (root_covered(sb, cur) || lstat(cur, &st))
			return;
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t t = readlink(cur, target, sizeof target - 1);
			if (t <= 0)
				return;
			target[t] = 0;
			root_add(sb, RK_LINK, cur, target);
			int dir = (int)(strrchr(cur, '/') - cur);
			char *next = target[0] == '/' ? xasprintf("%s%s", target, p)
						      : xasprintf("%.*s/%s%s", dir, cur, target, p);
			root_plan(sb, next, depth + 1);
			free(next);
			return;
		}
		if (S_ISDIR(st.st_mode))
			root_add(sb, last ? RK_TREE : RK_DIR, cur, NULL);
		else if (last && S_ISREG(st.st_mode))
			root_add(sb, RK_FILE, cur, NULL);
		if (last || !S_ISDIR(st.st_mode))
			return;
	}
}

/* The root's own symbolic links (/lib -> usr/lib on a merged /usr), which the dynamic loader's
 * paths go through; their targets are planned only where a bind needs them. */
static void root_plan_links(struct sandbox *sb)
{
	DIR *d = opendir("/");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300], target[PATH_MAX];
		snprintf(path, sizeof path, "/%s", e->d_name);
		ssize_t t = readlink(path, target, sizeof target - 1);
		if (t <= 0)
			continue;
		target[t] = 0;
		root_add(sb, RK_LINK, path, target);
	}
	if (d)
		closedir(d);
}

/* where /proc/self/stat says our command line and environment lie (fields 48 to 51) */
static void find_args(struct sandbox *sb)
{
	char buf[4096];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the name before it may hold anything */
	unsigned long v[4];
	for (int field = 2; p && field < 48; field++)
		p = strchr(p + 1, ' ');
	if (p && sscanf(p, " %lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3]) == 4 && v[0] <= v[1] &&
	    v[2] <= v[3]) {
		sb->arg_start = v[0], sb->arg_end = v[1], sb->env_start = v[2], sb->env_end = v[3];
	}
}

struct sandbox *sbx_new(const struct sbx_config *cfg, char **why)
{
	struct sandbox *sb = xcalloc(1, sizeof *sb);
	sb->cfg = *cfg;
	sb->root = geteuid() == 0;
	if (sb->root) {
		sb->uid_out = sb->uid_in = SBX_NOBODY;
		sb->gid_out = sb->gid_in = SBX_NOBODY;
	} else {
		sb->uid_out = sb->uid_in = geteuid();
		sb->gid_out = sb->gid_in = getegid();
	}
	snprintf(sb->uid_map, sizeof sb->uid_map, "%u %u 1\n", (unsigned)sb->uid_in,
		 (unsigned)sb->uid_out);
	snprintf(sb->gid_map, sizeof sb->gid_map, "%u %u 1\n", (unsigned)sb->gid_in,
		 (unsigned)sb->gid_out);
	snprintf(sb->tmpfs_opts, sizeof sb->tmpfs_opts, "size=%llu,nr_inodes=4096,mode=0700",
		 (unsigned long long)cfg->scratch_bytes);
	const char *tmp = getenv("TMPDIR");
	sb->scratch_base = xstrdup(tmp && *tmp ? tmp : "/tmp");
	sb->prot = SBX_P_RLIMITS | SBX_P_UIDDROP;
	if (cfg->mode == SBX_NAMESPACES) {
		sb->prot |= SBX_P_USERNS | SBX_P_PIDNS | SBX_P_NETNS | SBX_P_MNTNS | SBX_P_PROCFS;
		root_plan_links(sb);
		for (const char *const *b = cfg->binds; b && *b; b++)
			root_plan(sb, *b, 0);
		find_args(sb);
	}
	sb->cfg.binds = NULL; /* planned: the caller's list is not kept */
	/* a write to a pipe whose reader died must be an error here, not our death */
	signal(SIGPIPE, SIG_IGN);
	(void)why;
	return sb;
}

/* Install a ready seccomp BPF program (an array of struct sock_filter) for every candidate. */
void sbx_set_filter(struct sandbox *sb, const void *insns, size_t n)
{
	free(sb->filter);
	sb->filter = NULL;
	sb->prot &= ~(unsigned)SBX_P_SECCOMP;
	if (!insns || !n)
		return;
	sb->filter = xmalloc(n * sizeof *sb->filter);
	memcpy(sb->filter, insns, n * sizeof *sb->filter);
	sb->prog.len = (unsigned short)n;
	sb->prog.filter = sb->filter;
	sb->prot |= SBX_P_SECCOMP;
}

void sbx_free(struct sandbox *sb)
{
	if (!sb)
		return;
	free(sb->filter);
	free(sb->scratch_base);
	for (size_t i = 0; i < sb->nops; i++) {
		free(sb->ops[i].path);
		free(sb->ops[i].dst);
		free(sb->ops[i].src);
	}
	free(sb->ops);
	free(sb);
}

unsigned sbx_protections(const struct sandbox *sb)
{
	return sb->prot;
}

unsigned sbx_outer_uid(const struct sandbox *sb)
{
	return (unsigned)sb->uid_out;
}

static void human_bytes(struct buf *b, uint64_t v)
{
	if (v >= (1ULL << 30) && !(v % (1ULL << 30)))
		buf_printf(b, "%llu GiB", (unsigned long long)(v >> 30));
	else if (v >= (1ULL << 20) && !(v % (1ULL << 20)))
		buf_printf(b, "%llu MiB", (unsigned long long)(v >> 20));
	else
		buf_printf(b, "%llu bytes", (unsigned long long)v);
}

void sbx_describe(const struct sandbox *sb, struct buf *b)
{
	const struct sbx_config *c = &sb->cfg;
	unsigned p = sb->prot;
	buf_printf(b, "candidates run as uid %u%s", (unsigned)sb->uid_out,
		   sb->root ? " (nobody; we are root)" : "");
	if (p & SBX_P_USERNS)
		buf_printf(b, " mapped in a user namespace");
	if (p & SBX_P_PIDNS)
		buf_puts(b, "; pid namespace (nothing a candidate starts outlives it)");
	if (p & SBX_P_NETNS)
		buf_puts(b, "; network namespace (no network)");
	if (p & SBX_P_MNTNS) {
		buf_printf(b, "; mount namespace (a private root: of the host only %zu paths bound "
			   "read-only, the interpreter's, and /dev/null, zero and urandom; tmpfs "
			   "scratch " SBX_SCRATCH " of ", sb->nbinds);
		human_bytes(b, c->scratch_bytes);
		buf_puts(b, ", private /proc, no /sys)");
	}
	if (p & SBX_P_SECCOMP)
		buf_puts(b, "; seccomp filter");
	buf_printf(b, "; rlimits (cpu %u s, address space ", c->cpu_seconds);
	human_bytes(b, c->mem_bytes);
	buf_puts(b, ", file size ");
	human_bytes(b, c->fsize_bytes);
	buf_printf(b, ", %u processes, %u open files)", c->nproc, c->nofile);
	if (!(p & SBX_P_MNTNS))
		buf_puts(b, "; NO network or filesystem isolation");
}

/* ---- the children: system calls only ---- */

static void child_fail_at(int step, int op)
{
	struct child_err e = { step, errno, op };
	ssize_t w = write(FD_ERR, &e, sizeof e);
	(void)w;
	_exit(127);
}

static void child_fail(int step)
{
	child_fail_at(step, -1);
}

/* Put the descriptors the children need at fixed numbers and close every other one, so no
 * child holds another candidate's pipes open. */
static void child_fds(const struct spawn *sp)
{
	int src[] = { sp->in_fd, sp->rep_w, sp->err_w, sp->sync_r, sp->sync_w, sp->out_w };
	int tmp[6];
	for (int i = 0; i < 6; i++) {
		tmp[i] = src[i] < 0 ? -1 : fcntl(src[i], F_DUPFD_CLOEXEC, 32);
		if (src[i] >= 0 && tmp[i] < 0)
			_exit(126);
	}
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(tmp[5], 1) < 0 || dup2(tmp[5], 2) < 0)
		_exit(126);
	int dst[] = { FD_INPUT, FD_REPORT, FD_ERR, FD_SYNC_R, FD_SYNC_W };
	for (int i = 0; i < 5; i++)
		if (tmp[i] >= 0 && dup2(tmp[i], dst[i]) < 0)
			_exit(126);
	/* only the error pipe closes on exec: its EOF tells the parent that exec worked */
	if (fcntl(FD_ERR, F_SETFD, FD_CLOEXEC) < 0)
		_exit(126);
	if (syscall(SYS_close_range, FD_FIRST_FREE, ~0U, 0) < 0)
		for (int fd = FD_FIRST_FREE; fd < 1024; fd++)
			close(fd);
}

static void child_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* fails harmlessly for SIGKILL, SIGSTOP, RT internals */
	if (sigprocmask(SIG_SETMASK, &none, NULL))
		child_fail(ST_SIGNALS);
}

static void set_limit(int res, rlim_t soft, rlim_t hard)
{
	struct rlimit r = { soft, hard };
	if (setrlimit(res, &r))
		child_fail(ST_RLIMIT);
}

/* the candidate itself: limits, no privileges, filter, exec */
static void child_exec(const struct spawn *sp, const char *dir)
{
	const struct sbx_config *c = &sp->sb->cfg;
	/* a new session: its own process group and no controlling terminal to inject into */
	if (setsid() < 0)
		child_fail(ST_SETPGID);
	if (chdir(dir))
		child_fail(ST_CHDIR);
	if (sp->session)
		set_limit(RLIMIT_CPU, RLIM_INFINITY, RLIM_INFINITY); /* it limits each child */
	else
		set_limit(RLIMIT_CPU, c->cpu_seconds, c->cpu_seconds + 1);
	set_limit(RLIMIT_AS, c->mem_bytes, c->mem_bytes);
	set_limit(RLIMIT_FSIZE, c->fsize_bytes, c->fsize_bytes);
	set_limit(RLIMIT_NPROC, c->nproc, c->nproc);
	set_limit(RLIMIT_NOFILE, c->nofile, c->nofile);
	set_limit(RLIMIT_CORE, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		child_fail(ST_NNP);
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &hdr, data))
		child_fail(ST_CAPS);
	if (sp->sb->filter &&
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &sp->sb->prog))
		child_fail(ST_SECCOMP);
	execve(sp->argv[0], (char *const *)sp->argv, (char *const *)c->env);
	child_fail(ST_EXEC);
}

/* a read-only bind of SRC (under SBX_OLDROOT) on DST, made first (a directory or an empty file) */
static int bind_ro(const char *src, const char *dst, int dir, uint64_t attrs)
{
	if (dir ? mkdir(dst, 0755) && errno != EEXIST : 0)
		return -1;
	if (!dir) {
		int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
		if (fd < 0)
			return -1;
		close(fd);
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL))
		return -1;
	struct { uint64_t set, clr, propagation, userns_fd; } attr = {
		MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | attrs, 0, 0, 0
	};
	return (int)syscall(SYS_mount_setattr, -1, dst, AT_RECURSIVE, &attr, sizeof attr);
}

/* the planned directories, links and binds under SBX_NEWROOT */
static void root_build(const struct sandbox *sb)
{
	for (size_t i = 0; i < sb->nops; i++) {
		const struct root_op *o = &sb->ops[i];
		int bad = 0, step = ST_ROOT_BIND;
		if (o->kind == RK_DIR)
			bad = mkdir(o->dst, 0755) && errno != EEXIST, step = ST_ROOT_DIR;
		else if (o->kind == RK_LINK)
			bad = symlink(o->src, o->dst) && errno != EEXIST, step = ST_ROOT_LINK;
		else
			bad = bind_ro(o->src, o->dst, o->kind == RK_TREE, MOUNT_ATTR_NODEV) != 0;
		if (bad)
			child_fail_at(step, (int)i);
	}
}

/* the devices a program may need; on a mount that keeps them working (not nodev) */
static void root_dev(void)
{
	static const char *const src[] = { SBX_OLDROOT "/dev/null", SBX_OLDROOT "/dev/zero",
					   SBX_OLDROOT "/dev/urandom" };
	static const char *const dst[] = { SBX_NEWROOT "/dev/null", SBX_NEWROOT "/dev/zero",
					   SBX_NEWROOT "/dev/urandom" };
	if (mkdir(SBX_NEWROOT "/dev", 0755))
		child_fail(ST_ROOT_DEV);
	for (int i = 0; i < 3; i++)
		if (bind_ro(src[i], dst[i], 0, MOUNT_ATTR_NOEXEC))
			child_fail(ST_ROOT_DEV);
}

static void init_root(const struct sandbox *sb)
{
	struct { uint64_t set, clr, propagation, userns_fd; } ro = {
		MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0
	};
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		child_fail(ST_MNT_PRIVATE);
	if (mount("tmpfs", SBX_STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=16,mode=0700"))
		child_fail(ST_STAGE);
	if (mkdir(SBX_STAGE SBX_NEWROOT, 0755) || mkdir(SBX_STAGE SBX_OLDROOT, 0700))
		child_fail(ST_STAGE);
	if (syscall(SYS_pivot_root, SBX_STAGE, SBX_STAGE SBX_OLDROOT) || chdir("/"))
		child_fail(ST_PIVOT);
	if (mount("tmpfs", SBX_NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=4m,nr_inodes=8192,mode=0755"))
		child_fail(ST_STAGE);
	root_build(sb);
	root_dev();
	/* a /proc of this pid namespace only (while the host's is still in sight, which the kernel
	 * wants); where it refuses one, the directory stays empty */
	if (mkdir(SBX_NEWROOT "/proc", 0555) || mkdir(SBX_NEWROOT SBX_SCRATCH, 0755))
		child_fail(ST_ROOT_DIR);
	mount("proc", SBX_NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	if (mount("tmpfs", SBX_NEWROOT SBX_SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV, sb->tmpfs_opts))
		child_fail(ST_MNT_SCRATCH);
	if (syscall(SYS_mount_setattr, -1, SBX_NEWROOT, 0, &ro, sizeof ro))
		child_fail(ST_ROOT_RDONLY);
	/* the host's tree, stacked on the new root by pivot_root(".", "."), goes whole */
	if (chdir(SBX_NEWROOT) || syscall(SYS_pivot_root, ".", "."))
		child_fail(ST_PIVOT);
	if (umount2(".", MNT_DETACH) || chdir("/"))
		child_fail(ST_OLDROOT);
}

/* G is the candidate's /proc/1: no copy of our command line, environment or memory to read */
static void init_hide(const struct sandbox *sb)
{
	if (sb->arg_end > sb->arg_start)
		memset((void *)sb->arg_start, 0, sb->arg_end - sb->arg_start);
	if (sb->env_end > sb->env_start)
		memset((void *)sb->env_start, 0, sb->env_end - sb->env_start);
	prctl(PR_SET_NAME, "sandbox-init", 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* G: pid 1 of the candidate's pid namespace */
static void child_init(const struct spawn *sp)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	init_hide(sp->sb);
	init_root(sp->sb);
	if (sp->session)
		child_exec(sp, SBX_SCRATCH); /* the server is init: it reaps and kills itself */
	pid_t p = fork();
	if (p < 0)
		child_fail(ST_FORK);
	if (p == 0)
		child_exec(sp, SBX_SCRATCH);
	close(FD_ERR);
	close(FD_INPUT);
	close(FD_REPORT);
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, 0);
		if (w == p)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		if (w < 0 && errno != EINTR)
			_exit(125);
	}
}

static void child_ids(const struct sandbox *sb)
{
	if (sb->root && setgroups(0, NULL))
		child_fail(ST_SETGROUPS);
	if (setresgid(sb->gid_in, sb->gid_in, sb->gid_in))
		child_fail(ST_SETGID);
	if (setresuid(sb->uid_in, sb->uid_in, sb->uid_in))
		child_fail(ST_SETUID);
}

/* C: the namespaces' creator */
static void child_main(const struct spawn *sp)
{
	const struct sandbox *sb = sp->sb;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	child_fds(sp);
	child_signals();
	if (sb->cfg.mode == SBX_PLAIN) {
		child_ids(sb);
		close(FD_SYNC_R);
		close(FD_SYNC_W);
		child_exec(sp, sp->scratch);
	}
	if (setpgid(0, 0))
		child_fail(ST_SETPGID);
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
		    CLONE_NEWUTS))
		child_fail(ST_UNSHARE);
	char c = 'u';
	if (write(FD_SYNC_W, &c, 1) != 1 || read(FD_SYNC_R, &c, 1) != 1) {
		errno = EPIPE;
		child_fail(ST_SYNC);
	}
	close(FD_SYNC_R);
	close(FD_SYNC_W);
	child_ids(sb);
	pid_t g = fork();
	if (g < 0)
		child_fail(ST_FORK);
	if (g == 0)
		child_init(sp);
	close(FD_ERR);
	close(FD_INPUT);
	close(FD_REPORT);
	close(1);
	close(2);
	int st;
	while (waitpid(g, &st, 0) < 0)
		if (errno != EINTR)
			_exit(125);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* ---- the parent ---- */

static int write_proc(pid_t pid, const char *what, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = (ssize_t)strlen(text);
	int ret = write(fd, text, (size_t)n) == n ? 0 : -1;
	int e = errno;
	close(fd);
	errno = e;
	return ret;
}

static int write_maps(const struct sandbox *sb, pid_t pid, char **why)
{
	if (!sb->root && write_proc(pid, "setgroups", "deny")) {
		*why = xasprintf("cannot write /proc/%d/setgroups: %s", (int)pid, strerror(errno));
		return -1;
	}
	if (write_proc(pid, "uid_map", sb->uid_map) || write_proc(pid, "gid_map", sb->gid_map)) {
		*why = xasprintf("cannot write the uid/gid map of the sandbox: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* read what is there into b (keeping at most max bytes); 0 on EOF, 1 while open */
static int drain(int fd, struct buf *b, size_t max, uint64_t *total)
{
	char tmp[65536];
	ssize_t r = read(fd, tmp, sizeof tmp);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (r == 0)
		return 0;
	if (total)
		*total += (uint64_t)r;
	if (b->len < max)
		buf_put(b, tmp, (size_t)r < max - b->len ? (size_t)r : max - b->len);
	return 1;
}

/* Plain mode: remove a scratch directory. Processes of the candidate may still be alive and
 * swap a directory for a symbolic link under a walk by path, so the walk runs as the
 * candidate's uid (rm in a child that dropped to it): it can only remove what the candidate
 * could have removed itself. */
static void remove_scratch(const struct sandbox *sb, const char *dir)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (sb->root && (setgroups(0, NULL) || setresgid(sb->gid_out, sb->gid_out, sb->gid_out) ||
				 setresuid(sb->uid_out, sb->uid_out, sb->uid_out)))
			_exit(126);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		char *const argv[] = { "rm", "-rf", "--", (char *)dir, NULL }, *const envp[] = { NULL };
		execve("/bin/rm", argv, envp);
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	rmdir(dir); /* left when its parent is not writable by the candidate's uid */
}

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

struct fds {
	int out[2], rep[2], err[2], p2c[2], c2p[2], in, pidfd;
};

static void fds_close(struct fds *f)
{
	int *all[] = { &f->out[0], &f->out[1], &f->rep[0], &f->rep[1], &f->err[0], &f->err[1],
		       &f->p2c[0], &f->p2c[1], &f->c2p[0], &f->c2p[1], &f->in, &f->pidfd };
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		closep(all[i]);
}

static int fds_open(struct fds *f, const void *input, size_t len, char **why)
{
	memset(f, -1, sizeof *f);
	if (pipe2(f->out, O_CLOEXEC) || pipe2(f->rep, O_CLOEXEC) || pipe2(f->err, O_CLOEXEC) ||
	    pipe2(f->p2c, O_CLOEXEC) || pipe2(f->c2p, O_CLOEXEC)) {
		*why = xasprintf("cannot make pipes: %s", strerror(errno));
		return -1;
	}
	f->in = memfd_create("cp-sandbox-input", MFD_CLOEXEC);
	if (f->in < 0) {
		*why = xasprintf("memfd_create: %s", strerror(errno));
		return -1;
	}
	const char *p = input;
	size_t left = len;
	while (left) {
		ssize_t w = write(f->in, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*why = xasprintf("cannot write the program: %s", strerror(errno));
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	if (lseek(f->in, 0, SEEK_SET) < 0) {
		*why = xasprintf("lseek: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* wait for the error pipe to close (exec happened) or carry a failure; -1 with *why */
static int await_exec(const struct sandbox *sb, struct fds *f, double deadline, char **why)
{
	struct child_err e;
	size_t got = 0;
	while (got < sizeof e) {
		struct pollfd pf = { f->err[0], POLLIN, 0 };
		int ms = (int)((deadline - mono_now()) * 1000);
		if (ms <= 0) {
			*why = xasprintf("the sandbox did not start in time");
			return -1;
		}
		if (poll(&pf, 1, ms) < 0 && errno != EINTR) {
			*why = xasprintf("poll: %s", strerror(errno));
			return -1;
		}
		ssize_t r = read(f->err[0], (char *)&e + got, sizeof e - got);
		if (r == 0 && !got)
			return 0;
		if (r == 0) {
			*why = xasprintf("sandbox setup: garbled status");
			return -1;
		}
		if (r > 0)
			got += (size_t)r;
		else if (errno != EINTR && errno != EAGAIN) {
			*why = xasprintf("read: %s", strerror(errno));
			return -1;
		}
	}
	const char *what = e.step >= 0 && (size_t)e.step < sizeof step_name / sizeof *step_name
				   ? step_name[e.step] : "?";
	if (e.op >= 0 && (size_t)e.op < sb->nops)
		*why = xasprintf("sandbox setup failed at %s '%s': %s", what, sb->ops[e.op].path,
				 strerror(e.err));
	else
		*why = xasprintf("sandbox setup failed at %s: %s", what, strerror(e.err));
	return -1;
}

/* the parent's half of the uid map handshake; -1 with *why */
static int handshake(const struct sandbox *sb, struct fds *f, pid_t pid, char **why)
{
	char c;
	ssize_t r;
	while ((r = read(f->c2p[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1)
		return 1; /* the child failed before; the error pipe says why */
	if (write_maps(sb, pid, why))
		return -1;
	if (write(f->p2c[1], "m", 1) != 1) {
		*why = xasprintf("sandbox handshake: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Watch the pipes until the top child exits or the deadline passes. */
static void supervise(const struct sandbox *sb, struct fds *f, pid_t pid, double deadline,
		      struct sbx_result *res)
{
	int out_open = 1, rep_open = 1, reaped = 0;
	for (;;) {
		struct pollfd pf[3] = { { f->out[0], POLLIN, 0 }, { f->rep[0], POLLIN, 0 },
					{ f->pidfd, POLLIN, 0 } };
		int ms = (int)((deadline - mono_now()) * 1000);
		if (ms <= 0) {
			res->killed = 1;
			break;
		}
		if (f->pidfd < 0 && ms > 10)
			ms = 10; /* no pidfd: look at the child now and then */
		pf[0].fd = out_open ? f->out[0] : -1;
		pf[1].fd = rep_open ? f->rep[0] : -1;
		if (poll(pf, 3, ms) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			out_open = drain(f->out[0], &res->output, sb->cfg.output_max, &res->output_total);
		if (pf[1].revents)
			rep_open = drain(f->rep[0], &res->report, sb->cfg.report_max, NULL);
		if (f->pidfd >= 0 ? pf[2].revents != 0 : waitpid(pid, &res->status, WNOHANG) == pid) {
			reaped = f->pidfd < 0;
			break;
		}
	}
	/* the group holds C and G; G's death empties the pid namespace */
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	if (!reaped)
		while (waitpid(pid, &res->status, 0) < 0 && errno == EINTR)
			;
	/* what was written before the end still counts; stop waiting once nothing holds the
	 * pipes (in namespace mode they close as the kernel kills the namespace) */
	double until = mono_now() + SBX_GRACE_S;
	while (out_open || rep_open) {
		struct pollfd pf[2] = { { out_open ? f->out[0] : -1, POLLIN, 0 },
					{ rep_open ? f->rep[0] : -1, POLLIN, 0 } };
		int ms = (int)((until - mono_now()) * 1000);
		if (ms <= 0 || poll(pf, 2, ms) <= 0)
			break;
		if (pf[0].revents)
			out_open = drain(f->out[0], &res->output, sb->cfg.output_max, &res->output_total);
		if (pf[1].revents)
			rep_open = drain(f->rep[0], &res->report, sb->cfg.report_max, NULL);
	}
}

/* Fork the sandbox around argv with the pipes in f; the child ends of f are closed here.
 * Returns the top child's pid, or -1 (with *why) after killing what was started. */
static pid_t spawn(struct sandbox *sb, const char *const *argv, struct fds *f, const char *scratch,
		   int session, double deadline, char **why)
{
	struct spawn sp = { sb, argv, scratch, f->in, f->out[1], f->rep[1], f->err[1], f->p2c[0],
			    f->c2p[1], session };
	pid_t pid = fork();
	if (pid < 0) {
		*why = xasprintf("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		child_main(&sp);
	f->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int *mine[] = { &f->out[1], &f->rep[1], &f->err[1], &f->p2c[0], &f->c2p[1], &f->in };
	for (size_t i = 0; i < sizeof mine / sizeof *mine; i++)
		closep(mine[i]);
	int ret = 0;
	if (sb->cfg.mode == SBX_NAMESPACES)
		ret = handshake(sb, f, pid, why);
	if (ret >= 0 && await_exec(sb, f, deadline, why))
		ret = -1;
	else if (ret == 1) {
		*why = xasprintf("the sandbox's first process died during setup");
		ret = -1;
	}
	if (ret < 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	return pid;
}

int sbx_run(struct sandbox *sb, const char *const *argv, const void *input, size_t input_len,
	    struct sbx_result *res, char **why)
{
	double t0 = mono_now();
	struct fds f;
	char *scratch = NULL;
	*why = NULL;
	if (fds_open(&f, input, input_len, why)) {
		fds_close(&f);
		return -1;
	}
	if (sb->cfg.mode == SBX_PLAIN) {
		scratch = xasprintf("%s/cp-sandbox.XXXXXX", sb->scratch_base);
		if (!mkdtemp(scratch) || (sb->root && chown(scratch, sb->uid_out, sb->gid_out))) {
			*why = xasprintf("cannot make a scratch directory in '%s': %s",
					 sb->scratch_base, strerror(errno));
			free(scratch);
			fds_close(&f);
			return -1;
		}
	}
	pid_t pid = spawn(sb, argv, &f, scratch, 0, t0 + sb->cfg.timeout + 10, why);
	if (pid > 0)
		supervise(sb, &f, pid, t0 + sb->cfg.timeout, res);
	fds_close(&f);
	if (scratch) {
		remove_scratch(sb, scratch);
		free(scratch);
	}
	res->wall = mono_now() - t0;
	return pid > 0 ? 0 : -1;
}

/* ---- sessions: one long-lived server per worker (namespace mode only) ---- */

struct sbx_session {
	struct sandbox *sb;
	struct fds f;
	int req_w;
	pid_t pid;
	uint64_t seq;
};

struct sbx_session *sbx_session_open(struct sandbox *sb, const char *const *argv, char **why)
{
	*why = NULL;
	if (sb->cfg.mode != SBX_NAMESPACES) {
		*why = xasprintf("a warm server needs the namespace sandbox (its pid 1 kills all)");
		return NULL;
	}
	struct sbx_session *s = xcalloc(1, sizeof *s);
	s->sb = sb;
	int req[2];
	if (fds_open(&s->f, NULL, 0, why) || pipe2(req, O_CLOEXEC)) {
		if (!*why)
			*why = xasprintf("cannot make pipes: %s", strerror(errno));
		fds_close(&s->f);
		free(s);
		return NULL;
	}
	closep(&s->f.in); /* the request pipe takes the input's place */
	s->f.in = req[0];
	s->req_w = req[1];
	s->pid = spawn(sb, argv, &s->f, NULL, 1, mono_now() + 30, why);
	if (s->pid < 0) {
		close(s->req_w);
		fds_close(&s->f);
		free(s);
		return NULL;
	}
	fcntl(s->req_w, F_SETFL, O_NONBLOCK);
	return s;
}

void sbx_session_close(struct sbx_session *s)
{
	if (!s)
		return;
	close(s->req_w);
	kill(-s->pid, SIGKILL);
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
		;
	fds_close(&s->f);
	free(s);
}

/* the reply header: seq, tainted, verdict bytes, output bytes kept, output bytes seen */
#define SBX_REPLY_HEAD 40
#define SBX_REPLY_MAX ((uint64_t)64 << 20)

int sbx_session_call(struct sbx_session *s, const void *req, size_t len, double timeout,
		     struct sbx_result *res)
{
	struct sandbox *sb = s->sb;
	double t0 = mono_now(), deadline = t0 + timeout;
	unsigned char head[16];
	wr_u64le(head, ++s->seq);
	wr_u64le(head + 8, len);
	size_t sent = 0, total = sizeof head + len;
	struct buf in = { 0 };
	uint64_t want = SBX_REPLY_HEAD;
	int ret = -1, have_head = 0;
	memset(res, 0, sizeof *res);
	for (;;) {
		struct pollfd pf[4] = { { s->f.rep[0], POLLIN, 0 }, { s->f.out[0], POLLIN, 0 },
					{ s->f.pidfd, POLLIN, 0 },
					{ sent < total ? s->req_w : -1, POLLOUT, 0 } };
		int ms = (int)((deadline - mono_now()) * 1000);
		if (ms <= 0) {
			res->killed = 1;
			break;
		}
		if (poll(pf, 4, ms) < 0 && errno != EINTR)
			break;
		if (pf[3].revents) {
			const unsigned char *p = sent < sizeof head ? head + sent
								   : (const unsigned char *)req + (sent - sizeof head);
			size_t n = sent < sizeof head ? sizeof head - sent : total - sent;
			ssize_t w = write(s->req_w, p, n);
			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				ret = sent ? -1 : -2;
				break;
			}
			if (w > 0)
				sent += (size_t)w;
		}
		if (pf[1].revents) /* the server's own output: only tracebacks; keep them bounded */
			drain(s->f.out[0], &res->output, sb->cfg.output_max, NULL);
		if (pf[0].revents) {
			char tmp[65536];
			ssize_t r = read(s->f.rep[0], tmp, sizeof tmp);
			if (r <= 0 && !(r < 0 && (errno == EINTR || errno == EAGAIN)))
				break;
			if (r > 0)
				buf_put(&in, tmp, (size_t)r);
			if (!have_head && in.len >= SBX_REPLY_HEAD) {
				uint64_t vlen = rd_u64le(in.p + 16), olen = rd_u64le(in.p + 24);
				if (rd_u64le(in.p) != s->seq || vlen > SBX_REPLY_MAX || olen > SBX_REPLY_MAX)
					break; /* not an answer to this request: the session is no good */
				want = SBX_REPLY_HEAD + vlen + olen;
				have_head = 1;
			}
			if (have_head && in.len >= want) {
				if (in.len > want)
					break; /* more than was asked for */
				uint64_t vlen = rd_u64le(in.p + 16), olen = rd_u64le(in.p + 24);
				size_t keep = vlen < sb->cfg.report_max ? vlen : sb->cfg.report_max;
				buf_reset(&res->output);
				buf_put(&res->report, in.p + SBX_REPLY_HEAD, keep);
				buf_put(&res->output, in.p + SBX_REPLY_HEAD + vlen, olen);
				res->output_total = rd_u64le(in.p + 32);
				ret = rd_u64le(in.p + 8) ? 1 : 0;
				break;
			}
		}
		if (pf[2].revents && !(pf[0].revents & POLLIN)) {
			ret = sent ? -1 : -2;
			break;
		}
	}
	buf_free(&in);
	res->wall = mono_now() - t0;
	return ret;
}

void sbx_result_free(struct sbx_result *r)
{
	buf_free(&r->report);
	buf_free(&r->output);
}
