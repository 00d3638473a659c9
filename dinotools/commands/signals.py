"""SIGTERM and SIGHUP handled as Ctrl-C (``errors.Interrupted``), so a stopped run finishes the frame
being written, keeps its run record and says how to resume; for command lines (main thread only)."""
from __future__ import annotations

import contextlib
import signal
import threading

from dinotools.errors import Interrupted

NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


def _raise(signum, frame) -> None:
    raise Interrupted(f"interrupted by {NAMES.get(signum, signum)}", signum)


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block SIGTERM and SIGHUP raise ``Interrupted`` in the main thread (signals a parent
    set to be ignored, as ``nohup`` does for SIGHUP, stay ignored); the old handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        old = signal.getsignal(signum)
        if old is not signal.SIG_IGN:
            saved[signum] = old
            signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, old in saved.items():
            signal.signal(signum, old)
