"""The worker side of a batch: one tracker per worker, built once; runs one video at a time and measures it."""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from dinotools.batch.safety import Fence
from dinotools.batch.sources import Video
from dinotools.runs.report import peak_rss_mb, reset_peak_rss

log = logging.getLogger(__name__)

OnFrames = Callable[[str, int, int], None]  # (video name, frames written, total frames)


@dataclass(frozen=True)
class Task:
    """One video to run: ``output`` is ``OUTPUT/<name>``; ``resume`` continues partial outputs
    (``dinotools.run --resume``), ``overwrite`` starts again; ``attempt`` counts dead workers;
    ``fence``: the batch's generation, checked before every frame write (None: unchecked)."""

    video: Video
    output: Path
    resume: bool
    overwrite: bool
    attempt: int = 1
    fence: Optional[Fence] = None

    def retry(self) -> "Task":
        """The task again, after its worker died: it resumes from its written frames, unless it was to
        overwrite and its run had not yet replaced the earlier outputs (``run_video`` writes its run
        record only after removing them), which a resume would take for finished frames."""
        from dinotools.runs.record import MANIFEST

        started = not self.overwrite or (self.output / MANIFEST).exists()
        return replace(self, attempt=self.attempt + 1, resume=started, overwrite=not started)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _cuda():
    torch = sys.modules.get("torch")
    return torch if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized() else None


def describe_error(exc: BaseException, settings=None) -> str:
    """One line for a failed video (what ``dinotools.run`` prints after ``error:``)."""
    from dinotools.errors import UserError
    from dinotools.pipeline.stages import first_line
    from dinotools.registry import ComponentError
    from dinotools.runs.settings import describe_failure

    if isinstance(exc, (UserError, ComponentError)):
        return first_line(exc)
    from dinotools.runs.point_settings import PointSettings, describe_point_failure

    describe = describe_point_failure if isinstance(settings, PointSettings) else describe_failure
    known = describe(exc, settings) if settings is not None else None
    if known is not None:
        return known.replace(" (-vv shows the traceback)", "")
    if isinstance(exc, MemoryError):
        return "out of memory (MemoryError): lower --short-side, --max-context or --batch-size, or use fewer --workers"
    return f"{type(exc).__name__}: {first_line(exc)}"


class VideoRunner:
    """Runs videos one after another with one tracker, built on first use (``build_tracker(settings)``,
    or ``factory()``) and reused: a tracker keeps no state between videos (each run starts a new
    ``TrackState``). ``own_process``: this runner is a worker process or actor of its own, which
    exits when its batch is replaced (``Fence.check_or_exit``); else a stale task fails."""

    def __init__(self, settings, tracker=None, factory: Optional[Callable[[], object]] = None, *,
                 own_process: bool = False) -> None:
        self.settings, self.factory, self.own_process = settings, factory, own_process
        self._tracker = tracker
        self.loads = 0
        self.load_seconds = 0.0

    def tracker(self):
        if self._tracker is None:
            from dinotools.runs.point_settings import PointSettings, build_point_tracker
            from dinotools.runs.settings import build_tracker

            build = build_point_tracker if isinstance(self.settings, PointSettings) else build_tracker
            t0 = time.perf_counter()
            self._tracker = self.factory() if self.factory is not None else build(self.settings)
            self.loads += 1
            self.load_seconds = time.perf_counter() - t0
        return self._tracker

    def run(self, task: Task, on_frames: Optional[OnFrames] = None) -> dict:
        """Track ``task.video`` into ``task.output``; a result dict, never an exception (except
        KeyboardInterrupt): ``status`` done/skipped/failed, or ``fatal`` when the tracker cannot be built."""
        base = {"worker": worker_id(), "attempts": task.attempt}
        guard = None
        if task.fence is not None:
            guard = task.fence.check_or_exit if self.own_process else task.fence.check
            try:
                guard()  # a replaced batch's worker starts nothing, not even its tracker
            except Exception as exc:  # noqa: BLE001 - recorded like any failure
                return {**base, "status": "failed", "error": describe_error(exc)}
        loading = self._tracker is None
        try:
            tracker = self.tracker()
        except Exception as exc:  # noqa: BLE001 - any component error stops the whole batch
            log.debug("building the tracker failed", exc_info=True)
            return {**base, "status": "fatal", "error": describe_error(exc, self.settings)}
        base.update(loads=self.loads)
        if loading:  # this video waited for the backbone to load (not counted in its seconds)
            base.update(load_seconds=round(self.load_seconds, 3))
        reset_peak_rss()
        cuda = _cuda()
        if cuda is not None:
            cuda.cuda.reset_peak_memory_stats()
        t0, cpu0 = time.perf_counter(), time.process_time()
        try:
            report = _run_video(self.settings, task, tracker, on_frames, guard)
        except Exception as exc:  # noqa: BLE001 - recorded; the other videos go on
            log.debug("video %s failed", task.video.name, exc_info=True)
            if cuda is not None:
                cuda.cuda.empty_cache()  # an out-of-memory video must not starve the next one
            return {**base, "status": "failed", "error": describe_error(exc, self.settings),
                    "seconds": round(time.perf_counter() - t0, 3)}
        seconds = time.perf_counter() - t0
        summary = report.summary()
        tracked = int(summary.get("frames", 0))
        start = int(summary.get("resumed_from") or 0)
        total = start + tracked
        gpu = _cuda()
        return {
            **base,
            "status": "skipped" if summary.get("nothing_to_resume") else "done",
            "frames": total,
            "tracked": tracked,
            "resumed_from": start or None,
            "seconds": round(seconds, 3),
            "fps": round(tracked / seconds, 3) if seconds > 0 else 0.0,
            "cpu_seconds": round(time.process_time() - cpu0, 3),
            "stage_seconds": summary.get("stage_seconds", {}),
            "peak_ram_mb": round(peak_rss_mb(), 1),
            "peak_gpu_mb": round(gpu.cuda.max_memory_allocated() / 2**20, 1) if gpu is not None else None,
        }


def _run_video(settings, task: Task, tracker, on_frames: Optional[OnFrames], guard: Optional[Callable[[], None]]):
    """``job.run_video`` for one task (the one place the batch calls the single-video job); ``guard`` runs
    before each frame's files are written."""
    from dinotools.runs.job import run_video
    from dinotools.runs.point_settings import PointSettings

    name = task.video.name
    progress = (lambda total, initial: _FrameCount(on_frames, name, total, initial)) if on_frames else False
    if isinstance(settings, PointSettings):  # batch --points: OUTPUT/<name>.npz
        from dinotools.runs.points import run_points_video

        return run_points_video(settings, task.video.frames, settings.queries_file(name), task.output,
                                resume=task.resume, overwrite=task.overwrite, progress=progress, tracker=tracker,
                                before_write=guard)[1]
    return run_video(settings, task.video.frames, task.video.mask, task.output, resume=task.resume,
                     overwrite=task.overwrite, progress=progress, tracker=tracker, before_write=guard)


class _FrameCount:
    """The frames "bar" ``run_video`` updates: reports ``(name, done, total)`` to the batch's bars."""

    def __init__(self, on_frames: OnFrames, name: str, total: int, initial: int) -> None:
        self.on_frames, self.name, self.total, self.done = on_frames, name, total, initial

    def update(self, k: int = 1) -> None:
        self.done += k
        self.on_frames(self.name, self.done, self.total)

    def close(self) -> None:
        pass


def throttled(send: OnFrames, every: float = 0.25) -> OnFrames:
    """``send`` at most every ``every`` seconds (and always for a video's last frame): progress
    messages cross processes or the network."""
    last = [0.0]

    def on_frames(name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= every:
            last[0] = now
            send(name, done, total)

    return on_frames
