/* ompwait.h: OpenMP threads that wait without spinning, for the stage tools that share the
 * machine with the other end of their pipes. */
#ifndef CP_OMPWAIT_H
#define CP_OMPWAIT_H

/* Unless OMP_WAIT_POLICY is set, set it to "passive" and restart the program with ARGV, as
 * libgomp reads it once, when it loads. Returns (going on as before) where that fails. */
void ompwait_passive(char **argv);

#endif
