/* sandbox.h: run one untrusted program (an interpreter and its input) with the machine protected:
 * its own process group, a fresh scratch directory, a cleared environment, stdin from /dev/null,
 * bounded output capture, rlimits and a wall-clock deadline that kills everything it started;
 * where the kernel allows, new user, pid, network, mount, IPC and UTS namespaces (no network; a
 * private root holding only what the caller binds read-only, three /dev nodes, a fresh /proc and a
 * tmpfs scratch directory), an unprivileged uid and a seccomp filter.
 * Candidates never run as root. sbx_run is safe to call from many threads at once. */
#ifndef CP_SANDBOX_H
#define CP_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* How candidates are isolated. */
enum sbx_mode {
	SBX_NAMESPACES, /* user+pid+net+mount+ipc+uts namespaces (the safe mode) */
	SBX_PLAIN,	/* rlimits, own process group, uid drop when root: not isolation */
};

/* Protection bits, for reporting which ones are active. */
enum {
	SBX_P_USERNS = 1 << 0,
	SBX_P_PIDNS = 1 << 1,
	SBX_P_NETNS = 1 << 2,
	SBX_P_MNTNS = 1 << 3, /* a private root of read-only binds, tmpfs scratch */
	SBX_P_SECCOMP = 1 << 4,
	SBX_P_RLIMITS = 1 << 5,
	SBX_P_UIDDROP = 1 << 6, /* candidates run under an unprivileged uid */
	SBX_P_PROCFS = 1 << 7,	/* /proc shows only the candidate's own processes */
};

struct sbx_config {
	enum sbx_mode mode;
	int seccomp;		/* install the seccomp filter */
	double timeout;		/* wall-clock seconds before the whole group is killed */
	unsigned cpu_seconds;	/* RLIMIT_CPU */
	uint64_t mem_bytes;	/* RLIMIT_AS */
	uint64_t fsize_bytes;	/* RLIMIT_FSIZE */
	uint64_t scratch_bytes; /* size of the tmpfs scratch directory (namespace mode) */
	unsigned nproc;		/* RLIMIT_NPROC */
	unsigned nofile;	/* RLIMIT_NOFILE */
	size_t output_max;	/* bytes of stdout+stderr kept; the rest is read and dropped */
	size_t report_max;	/* bytes of the fd-4 report kept */
	const char *const *env; /* NULL-terminated environment for the candidate */
	/* namespace mode: the host paths (files or directories, NULL-terminated) that the candidate
	 * sees, read-only at the same place, with the symbolic links on the way to them; nothing
	 * else of the host is in its root but the root's own symbolic links (/lib -> usr/lib),
	 * /dev/null, /dev/zero and /dev/urandom. The program run must be among them. */
	const char *const *binds;
};

/* defaults: namespaces, seccomp, 3 s, 1 GiB, 16 MiB files, 64 MiB scratch, 64 processes, 64 files */
void sbx_config_default(struct sbx_config *c);

struct sandbox;

/* Prepare a sandbox (seccomp program, ids); NULL with a message in *why (free it) on failure. */
struct sandbox *sbx_new(const struct sbx_config *cfg, char **why);
void sbx_free(struct sandbox *sb);
/* Install a seccomp BPF program (an array of n struct sock_filter, built by the caller, e.g.
 * with libseccomp) that every candidate gets; NULL removes it. */
void sbx_set_filter(struct sandbox *sb, const void *insns, size_t n);
unsigned sbx_protections(const struct sandbox *sb);
/* one line naming the active protections and the limits */
void sbx_describe(const struct sandbox *sb, struct buf *out);
/* the uid the candidate has outside any namespace */
unsigned sbx_outer_uid(const struct sandbox *sb);

struct sbx_result {
	struct buf report;	/* what the program wrote to fd 4 (up to report_max) */
	struct buf output;	/* stdout+stderr (up to output_max) */
	uint64_t output_total;	/* all bytes of output seen */
	int killed;		/* the deadline passed and the group was killed */
	int status;		/* wait status of the sandbox's top process */
	double wall;		/* seconds from start to cleanup */
};

/* Run argv (argv[0] an absolute path) in the sandbox; the program reads `input` on fd 3 and
 * reports on fd 4. Returns 0 when it ran (whatever its fate); -1 when the sandbox could not be
 * set up, with the reason in *why (free it). Frees nothing in res on entry: start it zeroed. */
int sbx_run(struct sandbox *sb, const char *const *argv, const void *input, size_t input_len,
	    struct sbx_result *res, char **why);
void sbx_result_free(struct sbx_result *r);

/* A warm session (namespace mode only): argv is a server that reads requests (u64le seq, u64le
 * length, bytes) on fd 3 and answers each on fd 4 (u64le seq, tainted flag, verdict length,
 * output length, output total; the verdict; the output), running every request in a fresh
 * child, and as pid 1 of the namespaces killing everything else before it answers. */
struct sbx_session;
struct sbx_session *sbx_session_open(struct sandbox *sb, const char *const *argv, char **why);
/* One request, answered within timeout seconds: 0 with res->report and res->output filled;
 * 1 the same, but the server says it is no longer clean (close it before the next request);
 * -1 when the session died or timed out on this request (res->killed at the deadline);
 * -2 when it was dead before the request was sent. After a negative return close it. */
int sbx_session_call(struct sbx_session *s, const void *req, size_t len, double timeout,
		     struct sbx_result *res);
void sbx_session_close(struct sbx_session *s);

#endif
