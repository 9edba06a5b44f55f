"""bench/torch_threads.py: run a PyTorch program as its own main (its arguments after ours) and
then write to OUT what a benchmark checks the peer by: the threads torch had at the end
(torch.get_num_threads(), which the program sets as its users do) and the CPUs the process kept
busy over its whole run, as "THREADS CPUS".

usage: torch_threads.py OUT PROGRAM [ARG...]"""
import resource
import runpy
import sys
import time

out = sys.argv[1]
sys.argv = sys.argv[2:]
t0 = time.perf_counter()
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    import torch
    r = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "w") as f:
        f.write("%d %.2f\n" % (torch.get_num_threads(),
                               (r.ru_utime + r.ru_stime) / (time.perf_counter() - t0)))
