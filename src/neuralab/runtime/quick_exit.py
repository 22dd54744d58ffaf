"""The console scripts end without the interpreter's teardown.

A Python process that imported torch and Lightning takes about a second to exit after
its last line: `python -c "import lightning"` exits 1.1 s after it (the interpreter's
teardown of its modules and native libraries; measured on 2 CPU cores, torch 2.13,
lightning 2.6). A sweep of quick jobs pays that after its results are
written. Nothing a command writes depends on it, so once the command has ended the
process does what a normal exit does that matters -- stops executors and joins the
threads that are not daemons, runs the atexit handlers (logging's flush,
multiprocessing's children, temp files), flushes stdout and stderr -- and leaves with
`os._exit`, its exit code kept.

Only the console scripts (`neuralab-train`, `neuralab-eval`, `python -m neuralab.train`)
end this way; the functions they call (`neuralab.train.main`), run in-process by tests
and scripts, return as usual. An uncaught exception takes Python's usual way out (its
traceback printed by the interpreter).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from typing import Any


def quick_exit(main: Callable[[], Any]) -> Callable[[], None]:
    """`main` as a console script that leaves without the teardown."""

    def run() -> None:
        try:
            main()
            code: Any = 0
        except SystemExit as stop:
            code = stop.code
        _leave(code)

    run.__name__, run.__doc__ = main.__name__, main.__doc__
    return run


def _leave(code: Any) -> None:
    if code is None:
        code = 0
    elif not isinstance(code, int):  # as Python does with sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    # What Python's own exit runs first, in its order: the threading atexit calls (they
    # stop executors' worker threads: joblib's, concurrent.futures'), then the join of
    # every non-daemon thread; then the atexit handlers.
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe: nothing left to save
            pass
    os._exit(code)
