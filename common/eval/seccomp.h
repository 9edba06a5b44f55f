/* seccomp.h: the seccomp filter every HumanEval candidate runs under, built with libseccomp and
 * handed to the sandbox (sandbox.h) as a BPF program.
 *
 * Everything is allowed but what a test program never needs and a sandbox escape would:
 * namespaces and mounts, tracing, kernel interfaces with a history of holes, new namespaces
 * through clone's flags, sockets other than AF_UNIX and TIOCSTI (typing into the terminal),
 * all refused with EPERM; clone3 answers ENOSYS so that libc falls back to clone, whose flags
 * a filter can read. */
#ifndef CP_EVAL_SECCOMP_H
#define CP_EVAL_SECCOMP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct sandbox;

/* the system calls refused whatever their arguments */
extern const char *const scfilter_denied[];
extern const size_t scfilter_ndenied;
/* clone flags that make clone refused (any one of them) */
extern const uint64_t scfilter_clone_flags[];
extern const size_t scfilter_nclone_flags;

/* The filter as BPF (an array of struct sock_filter) appended to OUT. 0, or -1 when
 * libseccomp cannot build it. */
int scfilter_build(struct buf *out);
/* Build the filter and give it to SB; 0, or -1 (SB then has none). */
int scfilter_install(struct sandbox *sb);

#endif
