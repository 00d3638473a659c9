"""The writer thread: outputs are written in order, off the frame loop, errors raised in the caller."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Optional

_POLL_S = 0.1  # how often a blocked submit checks whether the writer thread has failed
_END = object()  # tells the thread to stop


class Writer:
    """Runs submitted calls in order, in one daemon thread with at most ``depth`` waiting (0: inline).

    After a call raises, later calls are skipped, and the error is raised by the next
    ``submit``/``close`` in the caller's thread: everything submitted before it is finished.
    """

    def __init__(self, depth: int, name: str = "dinotools-write") -> None:
        self.error: Optional[BaseException] = None  # the failed call's error, until raised
        self.failed = False  # stays True: every call after a failure is skipped
        self._queue: Optional[queue.Queue] = None
        if depth > 0:
            self._queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            # Polled, not a plain get(): a Ctrl-C/SIGTERM raised in the main thread inside its put() can land
            # between queuing an item and waking this thread, which a plain get() would then wait for forever
            # (seen: a run stopped by SIGHUP hung in close()).
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            if not self.failed:
                fn, args = item
                try:
                    fn(*args)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self.error, self.failed = exc, True

    def _raise(self) -> None:
        if self.error is not None:
            exc, self.error = self.error, None
            raise exc

    def submit(self, fn: Callable, *args) -> None:
        self._raise()
        if self._queue is None:
            try:
                fn(*args)
            except BaseException:
                self.failed = True
                raise
            return
        while True:  # blocks while the queue is full, but notices a failed write
            try:
                self._queue.put((fn, args), timeout=_POLL_S)
                return
            except queue.Full:
                self._raise()

    def close(self) -> None:
        """Finish the pending calls, stop the thread, and raise a call's error if one failed."""
        if self._queue is not None:
            self._queue.put(_END)
            while self._thread.is_alive():  # joined in steps: an interrupt may have cut an earlier close short
                self._thread.join(timeout=_POLL_S)
                if self._thread.is_alive() and self._queue.empty():
                    try:  # that close's _END was consumed or never queued: ask again
                        self._queue.put_nowait(_END)
                    except queue.Full:
                        pass
            self._queue = None
        self._raise()
