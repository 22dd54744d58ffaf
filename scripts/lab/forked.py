"""Run a Python function in a child forked from a warm parent, instead of a fresh process.

A fresh `python -m neuralab.train` spends ~7 s importing before its first job (lightning
alone ~6.5 s, `python -X importtime -c "import neuralab.train"`, 2 CPU cores). A parent
that imported it once forks a child per run, and each child starts with every module
loaded. scripts/lab/experiments.py runs its sweeps (and the notes checks) this way.

    pid = forked.start(body, log_file)      # body() runs in the child, fds 1 and 2 on log
    pid, code = forked.wait_any({pid})      # code as subprocess gives it (-N: signal N)

The child never returns into the parent's code: it leaves with `os._exit`, whatever
body does (returns, raises SystemExit or anything else, or calls os._exit itself).
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable, Collection
from pathlib import Path


def can_fork() -> bool:
    """Whether a fork here is safe; where not, run a fresh process instead.

    os.fork copies only the calling thread: a lock that another thread held at that moment
    (logging's, the allocator's, an executor's queue) stays locked in the child for good.
    And a CUDA context does not survive a fork: a child would fail at its first CUDA call.
    """
    if not hasattr(os, "fork"):  # Windows
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    if threading.active_count() > 1:
        return False
    torch = sys.modules.get("torch")
    return torch is None or not torch.cuda.is_initialized()


def start(
    body: Callable[[], object],
    out: Path | str,
    stderr_too: bool = True,
    cwd: Path | None = None,
) -> int:
    """Fork a child that runs body() with its stdout (and stderr, unless stderr_too is
    false) on the file `out`, from `cwd`; returns the child's pid to the parent. The
    child's exit status is body's return value or SystemExit code, 1 if it raised."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # else the child inherits what is still buffered and writes it again
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _redirect(out, stderr_too)
        if cwd is not None:
            os.chdir(cwd)
        code = _exit_code(body())
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:  # its traceback goes to the child's log, as Python's own would
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # closed or broken: nothing left to save
                pass
        os._exit(code)  # never back into the parent's loop, and no second parent teardown


def wait_any(children: Collection[int]) -> tuple[int, int]:
    """The next of `children` to end and its exit status (-N: killed by signal N).

    os.waitpid(-1) reaps whichever child of this process ends first: the callers here
    have no other children, so a pid that is not one of `children` is only skipped."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid in children:
            return pid, os.waitstatus_to_exitcode(status)


def _redirect(out: Path | str, stderr_too: bool) -> None:
    """fds 1 (and 2) onto `out`: what the child, and any process it starts, writes there.
    sys.stdout and sys.stderr stay the parent's objects; they write to fds 1 and 2."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    if stderr_too:
        os.dup2(fd, 2)
    os.close(fd)


def _exit_code(code: object) -> int:
    """As Python's own exit reads sys.exit's argument: None is 0, a message is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
