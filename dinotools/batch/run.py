"""``run_batch``: check every video, skip finished ones, run the rest on an engine, keep ``batch.json`` current."""
from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from dinotools.batch.points import check_finished_tracks, check_queries, is_points, locate_tracks
from dinotools.batch.progress import BatchBars
from dinotools.batch.record import RECORD, BatchRecord
from dinotools.batch.safety import GENERATION, BatchLock, Fence, check_apart
from dinotools.batch.sources import Video, validate
from dinotools.batch.worker import Task
from dinotools.errors import ConfigError, InputError
from dinotools.io.frames import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
BATCH_RECORDED = ("max_frames", "init", "init_args")  # decide outputs too (per video, the frame count covers them)


@dataclass
class BatchResult:
    """What a batch did: ``videos`` (this run's ``batch.json`` entries, in order) and ``summary``."""

    output: Path
    videos: Dict[str, dict]
    summary: dict

    @property
    def failed(self) -> List[Tuple[str, str]]:
        return [(n, e.get("error") or "failed") for n, e in self.videos.items() if e["status"] == "failed"]

    @property
    def exit_code(self) -> int:
        """0 when every video is done (or was already), 3 when some failed."""
        return 3 if self.failed else 0

    def line(self) -> str:
        s = self.summary
        resumed = f" ({s['resumed']} resumed)" if s.get("resumed") else ""
        return (f"{s['videos']} video(s): {s['done']} done{resumed}, {s['skipped']} skipped (finished earlier), "
                f"{s['failed']} failed; {s['frames']} frames in {s['seconds']:.1f} s wall "
                f"({s['fps']:.2f} frames/s overall, {s['videos_per_minute']:.2f} videos/min)")


def recorded_settings(settings, factory=None) -> dict:
    """The settings that decide every video's outputs, as ``batch.json`` keeps them: a rerun with
    other values is refused instead of mixing two runs' outputs in one folder."""
    from dinotools.runs.settings import recorded_fields

    values = dataclasses.asdict(settings)
    plain = lambda v: str(v) if isinstance(v, Path) else v  # noqa: E731 - JSON holds paths as text
    out = {k: plain(values.get(k)) for k in [*recorded_fields(type(settings)), *BATCH_RECORDED]}
    if factory is not None:
        out["tracker_factory"] = repr(factory)
    return out


def make_engine(engine: str, settings, *, workers: int = 1, tracker=None, tracker_factory=None,
                ray_address: Optional[str] = None, cpus_per_worker: Optional[float] = None, gpus_per_worker: float = 0,
                retries: int = 1):
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers < 1 or retries < 0:
        raise ConfigError(f"--workers must be >= 1 and --retries >= 0, got {workers} and {retries}")
    if tracker is not None and (engine != "local" or workers != 1):
        raise ConfigError("a prebuilt tracker can only be used by engine 'local' with 1 worker (it lives in this "
                          "process); the other engines build one tracker per worker from the settings")
    if engine == "ray":
        from dinotools.batch.ray_engine import RayEngine

        return RayEngine(settings, workers, address=ray_address, cpus=cpus_per_worker, gpus=gpus_per_worker,
                         factory=tracker_factory, retries=retries)
    if gpus_per_worker:
        raise ConfigError("--gpus-per-worker is for --engine ray; local workers use --device")
    from dinotools.batch.local import InProcessEngine, ProcessEngine

    if workers == 1:
        return InProcessEngine(settings, tracker, tracker_factory)
    return ProcessEngine(settings, workers, int(cpus_per_worker) if cpus_per_worker else None, tracker_factory,
                         retries=retries)


def run_batch(settings, videos: Iterable[Video], output, *, engine: str = "local", workers: int = 1,
              overwrite: bool = False, progress: bool = True, ray_address: Optional[str] = None,
              cpus_per_worker: Optional[float] = None, gpus_per_worker: float = 0, retries: int = 1,
              tracker=None, tracker_factory=None, input_folders: Iterable[Path] = ()) -> BatchResult:
    """Track every video with ``settings`` (a ``dinotools.runs.job.RunSettings``, passed unchanged to
    ``run_video`` for each) into ``output/<name>/``, recording each in ``output/batch.json``.

    Every video is checked before any runs (``sources.validate``). Videos an earlier run of this
    batch finished are skipped; partial ones resume from their written frames (``dinotools.run
    --resume``); ``overwrite`` starts every video again. A video that fails is recorded and the
    others go on; a worker that dies is replaced and its video resumed, up to ``retries`` times.
    ``engine``: ``local`` (this process, or ``workers`` processes) or ``ray`` (``workers`` actors
    with ``cpus_per_worker``/``gpus_per_worker``, on ``ray_address`` or a Ray started here).
    ``tracker``: a prebuilt tracker for engine local with one worker (e.g. a shared backbone);
    ``tracker_factory``: a picklable callable building each worker's tracker in place of
    ``build_tracker(settings)`` (components configured beyond ``RunSettings``).
    ``input_folders``: folders holding inputs besides each video's own (a DAVIS root's
    ``JPEGImages``, ``Annotations``): the output may neither hold nor lie inside them, nor any
    video's frames or mask (``safety.check_apart``). One batch at a time writes into ``output``
    (``safety.BatchLock``); workers of an earlier, dead batch stop before their next write
    (``safety.Fence``). A video whose PNGs are not this run's (other settings or inputs) is
    refused unless ``overwrite``; with it, only this run's videos are tracked again and every
    other video's record is kept.
    """
    videos = validate(dataclasses.replace(v, frames=Path(v.frames).resolve(), mask=Path(v.mask).resolve())
                      for v in videos)
    settings.check()
    if is_points(settings):  # --points: tracks OUTPUT/<name>.npz from a grid or QUERIES/<name>.csv
        check_queries(settings, videos)
    runner = make_engine(engine, settings, workers=workers, tracker=tracker, tracker_factory=tracker_factory,
                         ray_address=ray_address, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
                         retries=retries)
    if str(output) == "":
        raise ConfigError("the output folder needs a name, got ''")
    output = Path(output).resolve()
    check_apart(output, videos, input_folders)  # before anything is created: nothing lands among the inputs
    if output.exists() and not output.is_dir():
        raise InputError(f"output {output} exists and is not a folder")
    output.mkdir(parents=True, exist_ok=True)
    lock = BatchLock(output)
    try:
        lock.remove_stale_temps(RECORD, GENERATION)  # a batch killed while replacing them left these
        return _run_locked(settings, videos, output, runner, overwrite, progress, tracker_factory)
    finally:
        lock.release()


def _run_locked(settings, videos: List[Video], output: Path, runner, overwrite: bool, progress: bool,
                tracker_factory) -> BatchResult:
    record = BatchRecord(output, recorded_settings(settings, tracker_factory), overwrite=overwrite)
    record.check_outputs(videos, output)
    if is_points(settings):
        check_finished_tracks(videos, output, record)
    fence = Fence.take_over(output)  # from here on, a dead batch's workers stop before their next write
    record.start(videos, runner.describe(), fence.generation)
    tasks, skipped = _plan(videos, output, record, overwrite, fence,
                           locate_tracks if is_points(settings) else _locate_folder)
    bars = BatchBars(len(videos), len(skipped),
                     {t.video.name: _count_frames(t.video.frames, settings.max_frames) for t in tasks},
                     enabled=progress)
    driver = _Driver(record, bars)
    start = time.perf_counter()
    try:
        runner.run(tasks, driver)
    except BaseException:
        driver.stopped()
        raise
    finally:
        bars.close()
        driver.counts["skipped"] += len(skipped)
        summary = driver.summary(len(videos), time.perf_counter() - start)
        record.finish(summary)
    return BatchResult(output, record.entries(), summary)


def _locate_folder(output: Path, name: str):
    """``(the video's PNG folder, whether it is there, whether an unfinished-run record lies in it)``."""
    from dinotools.runs.record import MANIFEST

    out = output / name
    return out, out.is_dir(), (out / MANIFEST).exists()


def _plan(videos: List[Video], output: Path, record: BatchRecord, overwrite: bool, fence: Fence, locate):
    """(tasks, skipped names): a video finished by an earlier run (recorded done, its outputs there and
    without an unfinished-run record; ``locate(output, name)`` says where and which) is skipped; any other
    runs, resuming what it has written."""
    tasks, skipped = [], []
    for v in videos:
        (out, there, unfinished), prev = locate(output, v.name), record.previous(v.name) or {}
        finished = prev.get("status") in ("done", "skipped") and there and not unfinished
        if finished and not overwrite:
            record.update(v.name, status="skipped")
            skipped.append(v.name)
        else:
            tasks.append(Task(v, out, resume=not overwrite, overwrite=overwrite, fence=fence))
    return tasks, skipped


def _count_frames(frames: Path, limit: Optional[int]) -> Optional[int]:
    """Frames in a folder, at most ``limit`` (a video file's count arrives with its first progress message)."""
    if not frames.is_dir():
        return None
    n = sum(1 for p in frames.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return min(n, limit) if limit else n


class _Driver:
    """The engine's events, in the driver: the record and the bars follow every video."""

    def __init__(self, record: BatchRecord, bars: BatchBars) -> None:
        self.record, self.bars = record, bars
        self.counts: Counter = Counter()
        self.frames = 0

    def submitted(self, task: Task) -> None:
        self.record.update(task.video.name, status="running", attempts=task.attempt, note=None)

    def message(self, kind: str, name: str, *payload) -> None:
        if kind == "start":
            self.record.update(name, **payload[0])
        elif kind == "frames":
            self.bars.frame(name, *payload)

    def requeued(self, task: Task, reason: str) -> None:
        self.record.update(task.video.name, status="pending", note=reason)

    def finished(self, task: Task, result: dict) -> None:
        name, status = task.video.name, result["status"]
        keep = ("frames_path", "mask_path", "where", "worker", "actor", "settings")
        keep += ("replacing",) if status == "failed" else ()  # it may have failed before replacing the old PNGs
        if status == "skipped":  # complete on disk already: the figures of the run that made it stay
            self.record.update(name, status="skipped", note=None, worker=result.get("worker"))
        else:
            entry = {k: v for k, v in (self.record.previous(name) or {}).items() if k in keep}
            self.record.replace(name, {**entry, **result})
        self.counts[status] += 1
        self.counts["resumed"] += bool(status == "done" and result.get("resumed_from"))
        self.frames += int(result.get("tracked") or 0)
        self.bars.video(name, status, result.get("frames"))

    def stopped(self) -> None:
        """The batch was interrupted: videos left running are marked so (a rerun resumes them)."""
        for name, entry in self.record.entries().items():
            if entry.get("status") == "running":
                self.record.update(name, status="interrupted")

    def summary(self, videos: int, seconds: float) -> dict:
        c = self.counts
        return {
            "videos": videos, "done": c["done"], "resumed": c["resumed"], "skipped": c["skipped"], "failed": c["failed"],
            "not_run": videos - c["done"] - c["skipped"] - c["failed"],
            "frames": self.frames, "seconds": round(seconds, 3),
            "fps": round(self.frames / seconds, 3) if seconds > 0 else 0.0,
            "videos_per_minute": round(60 * (c["done"] + c["failed"]) / seconds, 3) if seconds > 0 else 0.0,
        }
