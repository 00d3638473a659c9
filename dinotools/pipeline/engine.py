"""Pipelined engine stages: decode and backbone run ahead in threads, writing runs behind; all queues bounded."""
from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Deque, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch

from dinotools.errors import UserError
from dinotools.pipeline.stages import StageError, passes_through

_POLL_S = 0.1  # how often a blocked producer checks whether the consumer has gone


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class Prefetch:
    """Iterates ``source`` in a daemon thread, at most ``depth`` items ahead of the consumer.

    An exception in the producer is re-raised, unchanged, by the consumer's ``next()``.
    ``close()`` stops the producer (it may finish the item it is computing) and is idempotent.
    """

    def __init__(self, source: Iterable, depth: int, name: str) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
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
        self._thread.join(timeout=5.0)  # the producer may be inside one last decode


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


def take(it: Iterator, n: int) -> Tuple[List, Optional[BaseException]]:
    """Up to ``n`` items of ``it`` and the error that stopped reading early, if one did: the frames
    decoded before a corrupt one are still tracked and written before the error is raised."""
    items: List = []
    try:
        for item in itertools.islice(it, n):
            items.append(item)
    except BaseException as exc:  # noqa: BLE001 - re-raised by the caller after these frames
        return items, exc
    return items, None


def encode(tracker, batch: List[np.ndarray], first: int, stats):
    """``tracker.encode(batch)`` -> features ``[B,h,w,D]``; a component error becomes a ``StageError``.

    On CUDA the calling thread waits for its own kernels (an event, not a device-wide sync) so
    that the backbone time is measured where it is spent and features are ready when handed over.
    """
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
    return feats


def encode_batches(tracker, frames: Iterable[np.ndarray], batch_size: int, stats, start: int = 0):
    """Yields ``(frames list, features [B,h,w,D])``, ``batch_size`` frames at a time, in this thread."""
    it, first = iter(frames), start
    while True:
        batch, error = take(it, batch_size)
        if batch:
            yield batch, encode(tracker, batch, first, stats)
            first += len(batch)
        if error is not None:
            raise error
        if len(batch) < batch_size:
            return


def _on_cpu(tracker) -> bool:
    return torch.device(getattr(tracker, "device", "cpu")).type == "cpu"


def default_workers(tracker) -> int:
    """Backbone workers for the pipelined engine: 1 on an accelerator (its queue already
    overlaps with the host), 2 on CPU when there are at least two intra-op threads."""
    return min(2, torch.get_num_threads()) if _on_cpu(tracker) else 1


class _Threads:
    """Splits the CPU between backbone workers: each worker gets ``n // workers`` intra-op threads
    and the consumer (propagation) thread 1, restored on ``restore()``.

    Why: one OpenMP team of all cores per op stalls at every op's barrier whenever another thread
    takes a core, so a backbone thread running beside propagation, decoding and writing got
    slower by about what it overlapped (pipelined/plain 0.91 with vits16 on 2 cores). Two
    single-team workers on alternate batches do not wait for each other: measured side by side
    in ``benchmarks/compare_engine.py``. ``torch.set_num_threads`` is per thread once a thread
    has initialised its pool (it also sets the default later threads start from).
    """

    def __init__(self, workers: int, cpu: bool) -> None:
        self.saved = torch.get_num_threads()
        self.active = cpu and workers > 1
        self.per_worker = max(1, self.saved // workers) if self.active else self.saved
        if self.active:
            torch.set_num_threads(1)

    def init_worker(self) -> None:
        torch.get_num_threads()  # initialise this thread's pool first, or it would reset to the default later
        torch.set_num_threads(self.per_worker)

    def restore(self) -> None:
        if self.active:
            self.active = False
            torch.set_num_threads(self.saved)


class ParallelEncoder:
    """Encodes batches read from ``frames`` in ``workers`` threads, at most ``depth`` batches ahead,
    and yields ``(frames list, features)`` in frame order. ``close()`` drops the batches not started."""

    def __init__(self, tracker, frames: Iterable[np.ndarray], batch_size: int, stats, *, depth: int,
                 workers: int, start: int = 0, on_close: Optional[Callable] = None) -> None:
        self._threads = _Threads(workers, _on_cpu(tracker))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="dinotools-backbone",
                                        initializer=self._threads.init_worker)
        self._args = (tracker, iter(frames), batch_size, stats)
        self._depth, self._first, self._on_close = max(depth, workers), start, on_close
        self._pending: Deque = deque()
        self._error: Optional[BaseException] = None
        self._done = False
        self._gen = self._run()

    def _refill(self) -> None:
        tracker, it, batch_size, stats = self._args
        while not self._done and len(self._pending) < self._depth:
            batch, self._error = take(it, batch_size)
            if batch:
                self._pending.append((batch, self._pool.submit(encode, tracker, batch, self._first, stats)))
                self._first += len(batch)
            self._done = self._error is not None or len(batch) < batch_size

    def _run(self) -> Iterator:
        self._refill()
        while self._pending:
            batch, future = self._pending.popleft()
            self._refill()  # the next batch is queued before waiting, so the workers never idle
            yield batch, future.result()
        if self._error is not None:
            raise self._error

    def __iter__(self) -> "ParallelEncoder":
        return self

    def __next__(self):
        try:
            return next(self._gen)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Idempotent; waits for at most the batches being encoded (not the queued ones)."""
        self._gen.close()
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._threads.restore()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()


def feature_batches(tracker, frames: Iterable[np.ndarray], batch_size: int, stats, *, prefetch: int = 0,
                    start: int = 0, workers: Optional[int] = None) -> Tuple[Iterator, Callable[[], None]]:
    """``(iterator of (frames, features), close)``; ``prefetch`` batches decoded and encoded ahead.

    ``prefetch=0``: everything runs in the caller's thread (the plain loop). ``prefetch=n``: a
    decode thread keeps ``n * batch_size`` frames ready and ``workers`` backbone threads (default
    ``default_workers``) encode up to ``max(n, workers)`` batches ahead (frames are resized on the
    tracker's device inside ``tracker.encode``).
    """
    decoded = timed(frames, stats, "decode")
    if prefetch <= 0:
        gen = encode_batches(tracker, decoded, batch_size, stats, start)
        return gen, gen.close
    workers = default_workers(tracker) if workers is None else workers
    if workers < 1:
        raise UserError(f"backbone workers must be >= 1, got {workers}")
    reader = Prefetch(decoded, prefetch * batch_size, "dinotools-decode")
    encoder = ParallelEncoder(tracker, reader, batch_size, stats, depth=prefetch, workers=workers, start=start,
                              on_close=reader.close)
    return encoder, encoder.close
