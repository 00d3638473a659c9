"""``--engine local``: videos in turn in this process, or on N spawned worker processes, one tracker each."""
from __future__ import annotations

import _thread
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import List, Optional, Sequence

from dinotools.batch.scheduler import Events, WorkerSetupError, schedule
from dinotools.batch.worker import Task, VideoRunner, throttled, worker_id

log = logging.getLogger(__name__)

STOP_WAIT_S = 60  # how long a stopping batch waits for workers to close the video they hold


class InProcessEngine:
    """Videos one after another in this process, with one tracker (``tracker``: a prebuilt one)."""

    def __init__(self, settings, tracker=None, factory=None) -> None:
        self.settings, self.tracker, self.factory = settings, tracker, factory

    def describe(self) -> dict:
        return {"engine": "local", "workers": 1, "pid": os.getpid()}

    def run(self, tasks: Sequence[Task], events: Events) -> None:
        runner = VideoRunner(self.settings, self.tracker, self.factory)
        on_frames = lambda name, done, total: events.message("frames", name, done, total)  # noqa: E731
        for task in tasks:
            events.submitted(task)
            events.message("start", task.video.name, {"worker": worker_id()})
            result = runner.run(task, on_frames)
            if result["status"] == "fatal":
                events.requeued(task, "not run: the batch stopped")
                raise WorkerSetupError(result["error"])
            events.finished(task, result)


class ProcessEngine:
    """``workers`` spawned processes (spawn: torch and CUDA are not fork-safe), each building its
    tracker once and running one video at a time with ``threads`` torch threads (default: an
    equal share of the cores). Each process has its own single-worker executor, so a process that
    dies is detected at once (no hang), takes down only the video it held, and is replaced."""

    def __init__(self, settings, workers: int, threads: Optional[int] = None, factory=None, *,
                 retries: int = 1) -> None:
        self.settings, self.workers, self.factory, self.retries = settings, workers, factory, retries
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)

    def describe(self) -> dict:
        return {"engine": "local", "workers": self.workers, "threads_per_worker": self.threads}

    def run(self, tasks: Sequence[Task], events: Events) -> None:
        ctx = multiprocessing.get_context("spawn")
        messages, stop = ctx.Queue(), ctx.Event()
        initargs = (self.settings, self.factory, self.threads, messages, stop, os.getpid())
        slots = [_ProcessSlot(ctx, initargs) for _ in range(self.workers)]

        def poll() -> None:
            while True:
                try:
                    events.message(*messages.get_nowait())
                except queue.Empty:
                    return

        try:
            schedule(tasks, slots, events, poll, self.retries)
        except BaseException:
            stop.set()  # each worker stops its video; the frames it wrote are complete
            raise
        finally:
            _close(slots)
            poll()
            messages.close()


def _close(slots: List["_ProcessSlot"]) -> None:
    pending = [s.current for s in slots if s.current is not None and not s.current.done()]
    if pending and not wait(pending, timeout=STOP_WAIT_S).done:
        log.warning("a worker did not stop within %d s; it ends when this process exits", STOP_WAIT_S)
    for s in slots:
        s.pool.shutdown(wait=not s.current or s.current.done(), cancel_futures=True)


class _ProcessSlot:
    death = (BrokenProcessPool,)

    def __init__(self, ctx, initargs) -> None:
        self.ctx, self.initargs = ctx, initargs
        self.current: Optional[Future] = None
        self._new()

    def _new(self) -> None:
        self.pool = ProcessPoolExecutor(1, mp_context=self.ctx, initializer=_child_init, initargs=self.initargs)

    def submit(self, task: Task) -> Future:
        self.current = self.pool.submit(_child_run, task)
        return self.current

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.current = None
        self._new()

    def died(self, exc: BaseException) -> str:
        return "the worker process ended abruptly: killed, out of memory, or a crash in native code"


# --- in the worker process ---------------------------------------------------------------------------------------

_RUNNER: Optional[VideoRunner] = None
_MESSAGES = None
_BUSY = threading.Event()


def _child_init(settings, factory, threads: int, messages, stop, parent: int) -> None:
    global _RUNNER, _MESSAGES
    # The watchdog first, with the batch's pid from the batch itself: a batch killed while this worker
    # still imports torch or builds its tracker (seconds) must end it too. os.getppid() read here
    # would already be the reaper's pid then, and the orphan would wait on its queue forever.
    threading.Thread(target=_watch, args=(parent, stop), name="dinotools-watchdog", daemon=True).start()
    import torch

    torch.set_num_threads(threads)
    _RUNNER, _MESSAGES = VideoRunner(settings, factory=factory, own_process=True), messages
    signal.signal(signal.SIGINT, _on_sigint)


def _on_sigint(signum, frame) -> None:
    # Ctrl-C reaches the whole process group: stop a video being tracked, but never the idle worker
    # loop, which would die with a traceback.
    if _BUSY.is_set():
        raise KeyboardInterrupt


def _watch(parent: int, stop) -> None:
    """Ends this worker when the batch process is gone (SIGKILL leaves no one to stop it: it must not
    write on beside a rerun), and interrupts its video when the batch stops."""
    interrupted = False
    while True:
        if os.getppid() != parent:
            os._exit(70)
        if stop.is_set() and _BUSY.is_set() and not interrupted:
            _thread.interrupt_main()  # KeyboardInterrupt in the video: it closes as on Ctrl-C
            interrupted = True
        time.sleep(0.2)


def _child_run(task: Task) -> dict:
    send = _MESSAGES.put
    send(("start", task.video.name, {"worker": worker_id()}))
    _BUSY.set()
    try:
        return _RUNNER.run(task, throttled(lambda *m: send(("frames", *m))))
    finally:
        _BUSY.clear()
