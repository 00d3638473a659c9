"""Pipelined engine stages: decode and backbone run ahead in threads, writing runs behind; all queues bounded."""
from __future__ import annotations

import itertools
import queue
import threading
import time
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch

from .errors import UserError

_POLL_S = 0.1  # how often a blocked producer checks whether the consumer has gone


class StageError(RuntimeError):
    """A component raised while running: ``stage`` (backbone/propagate/initializer) and the frames."""

    def __init__(self, stage: str, first: int, last: int, exc: BaseException) -> None:
        self.stage, self.first, self.last, self.original = stage, first, last, exc
        super().__init__(self.describe(stage))

    def describe(self, component: str) -> str:
        """One line: ``<component> failed on frame(s) ...: <error type>: <first line of its message>``."""
        frames = f"frame {self.first}" if self.first == self.last else f"frames {self.first}-{self.last}"
        return f"{component} failed on {frames}: {type(self.original).__name__}: {first_line(self.original)}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def passes_through(exc: BaseException) -> bool:
    """Errors that already speak to the user (or must reach the CLI unchanged) are never wrapped."""
    return isinstance(exc, (UserError, StageError, torch.OutOfMemoryError, MemoryError, KeyboardInterrupt))


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class Prefetch:
    """Iterates ``source`` in a daemon thread, at most ``depth`` items ahead of the consumer.

    An exception in the producer is re-raised, unchanged, by the consumer's ``next()``.
    ``close()`` stops the producer (it may finish the item it is computing) and is idempotent.
    """

    def __init__(self, source: Iterable, depth: int, name: str, on_close: Optional[Callable] = None) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._on_close = on_close
        self._thread = threading.Thread(target=self._run, args=(iter(source),), name=name, daemon=True)
        self._thread.start()

    def _run(self, it: Iterator) -> None:
        try:
            for item in it:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who decides
            self._put(_Raised(exc))

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> "Prefetch":
        return self

    def __next__(self):
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # later next() calls keep saying so
            raise StopIteration
        if isinstance(item, _Raised):
            self.close()
            raise item.exc
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)  # the producer may be inside one last decode/forward
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()


def timed(iterable: Iterable, stats, stage: str) -> Iterator:
    """Yields ``iterable``'s items, adding the time spent producing each to ``stats``' ``stage``."""
    it = iter(iterable)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        stats.add(stage, time.perf_counter() - t0)
        yield item


def encode_batches(tracker, frames: Iterable[np.ndarray], batch_size: int, stats, start: int = 0):
    """Yields ``(frames list, features [B,h,w,D])``: ``tracker.encode`` on ``batch_size`` frames at a time.

    Upcoming features do not depend on propagation, so this can run ahead in its own thread. On
    CUDA the thread waits for its own kernels (an event, not a device-wide sync) so that the
    backbone time is measured where it is spent and features are ready when handed over.
    """
    it = iter(frames)
    first = start
    while True:
        batch: List[np.ndarray] = list(itertools.islice(it, batch_size))
        if not batch:
            return
        t0 = time.perf_counter()
        try:
            feats = tracker.encode(batch)  # [B,h,w,D], on the tracker's device
            if isinstance(feats, torch.Tensor) and feats.is_cuda:
                done = torch.cuda.Event()
                done.record()
                done.synchronize()
        except BaseException as exc:
            if passes_through(exc):
                raise
            raise StageError("backbone", first, first + len(batch) - 1, exc) from exc
        stats.add("backbone", time.perf_counter() - t0)
        first += len(batch)
        yield batch, feats


def feature_batches(tracker, frames: Iterable[np.ndarray], batch_size: int, stats, *, prefetch: int = 0,
                    start: int = 0) -> Tuple[Iterator, Callable[[], None]]:
    """``(iterator of (frames, features), close)``; ``prefetch`` batches decoded and encoded ahead.

    ``prefetch=0``: everything runs in the caller's thread (the plain loop). ``prefetch=n``: a
    decode thread keeps ``n * batch_size`` frames ready and a backbone thread ``n`` feature
    batches (frames are resized on the tracker's device inside ``tracker.encode``).
    """
    decoded = timed(frames, stats, "decode")
    if prefetch <= 0:
        gen = encode_batches(tracker, decoded, batch_size, stats, start)
        return gen, gen.close
    reader = Prefetch(decoded, prefetch * batch_size, "dinotools-decode")
    encoder = Prefetch(encode_batches(tracker, reader, batch_size, stats, start), prefetch, "dinotools-backbone",
                       on_close=reader.close)
    return encoder, encoder.close


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
            item = self._queue.get()
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
            self._thread.join()
            self._queue = None
        self._raise()
