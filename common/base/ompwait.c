/* ompwait.c: see ompwait.h.
 *
 * Why: an idle OpenMP thread spins (GOMP_SPINCOUNT: 300,000 pauses, milliseconds) before it
 * sleeps, each time a team waits at a barrier or for the next parallel region. cp-hash's
 * workers wait so for the thread walking the directories, and cp-dedup's for its single
 * reader of a pipe; on a machine whose cores all run a stage of the pipeline the spinning
 * takes CPU the other stage needs (measured on 2 cores: cp-hash | cp-dedup -n, 1.03 s CPU
 * and 0.57 s wall with spinning, 0.87 s and 0.47 s without). Compute-bound tools with many
 * short parallel regions (cp-train) keep the default. */
#include "base/ompwait.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

void ompwait_passive(char **argv)
{
	if (getenv("OMP_WAIT_POLICY"))
		return;	/* the user's choice, or ours after the restart */
	/* the file itself, not /proc/self/exe, whose name would become the process's (ps) */
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0 || (size_t)n >= sizeof self - 1)
		return;	/* no /proc: spinning is slower, not wrong */
	self[n] = 0;
	if (setenv("OMP_WAIT_POLICY", "passive", 1))
		return;
	execv(self, argv);
	unsetenv("OMP_WAIT_POLICY");	/* as it was: children see the user's environment */
}
