/* scratch.h: paths in a unit test's scratch directory (header-only, beside tap.h). A test makes
 * its directory with mkdtemp, names files in it with scratch_path (the last eight returned
 * stay valid, so a call may take several) and removes it whole with scratch_remove. */
#ifndef CP_SCRATCH_H
#define CP_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>

#include "tap.h"

static inline char *scratch_path(const char *dir, const char *name)
{
	static char p[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

static inline void scratch_remove(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd))
		diag("cannot remove %s", dir);
}

#endif
