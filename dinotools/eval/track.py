"""Run a tracker over every sequence of a DAVIS-style dataset through the batch runner, timing it."""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from dinotools.errors import InputError
from dinotools.io.datasets import VOID_ID, DavisDataset
from dinotools.runs.settings import RunSettings

log = logging.getLogger(__name__)


@dataclass
class TrackRun:
    """Speed and memory of one pass over the dataset (from the batch record of each sequence).

    ``seconds`` sums each sequence's tracking time: reading frames, features, propagation and
    writing its PNGs (the backbone's loading excluded). ``peak_rss_mb`` is the largest resident
    memory of a worker while it tracked a sequence; ``peak_gpu_mb`` torch's peak allocation on CUDA.
    """

    frames: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the workers over the same spans: wall >> cpu/threads means a busy machine
    per_sequence: Dict[str, Dict[str, float]] = field(default_factory=dict)
    stages: Dict[str, float] = field(default_factory=dict)  # seconds per stage (decode/backbone/propagate/write)
    peak_rss_mb: float = 0.0
    peak_gpu_mb: Optional[float] = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> Dict[str, Any]:
        return {"frames": self.frames, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "fps": self.fps,
                "peak_rss_mb": self.peak_rss_mb, "peak_gpu_mb": self.peak_gpu_mb,
                "stages": self.stages, "per_sequence": self.per_sequence}

    def add_sequence(self, name: str, entry: dict) -> None:
        """Add one sequence's ``batch.json`` entry."""
        frames, seconds = int(entry.get("tracked") or 0), float(entry.get("seconds") or 0.0)
        self.frames += frames
        self.seconds += seconds
        self.cpu_seconds += float(entry.get("cpu_seconds") or 0.0)
        self.per_sequence[name] = {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds else 0.0}
        for stage, s in (entry.get("stage_seconds") or {}).items():
            self.stages[stage] = self.stages.get(stage, 0.0) + s
        self.peak_rss_mb = max(self.peak_rss_mb, float(entry.get("peak_ram_mb") or 0.0))
        if entry.get("peak_gpu_mb") is not None:
            self.peak_gpu_mb = max(self.peak_gpu_mb or 0.0, float(entry["peak_gpu_mb"]))


def eval_settings(base: Optional[RunSettings] = None, **values) -> RunSettings:
    """``RunSettings`` for an evaluation: ``values`` that are settings fields are set (others belong to
    the tracker factory); DAVIS void (255) is background, as the scoring reads it."""
    names = {f.name for f in dataclasses.fields(RunSettings)}
    settings = dataclasses.replace(base or RunSettings(), **{k: v for k, v in values.items() if k in names})
    settings.init_args = {**settings.init_args, "void": VOID_ID}
    return settings


def build_eval_tracker(tracker: str, backbone: str, backbone_kwargs: dict, tracker_kwargs: dict):
    """The tracker ``dinotools.eval --track`` describes (``EvalTrackerFactory`` builds it in each batch worker)."""
    from dinotools import create_backbone, create_tracker

    device = tracker_kwargs.get("device", "cpu")
    return create_tracker(tracker, backbone=create_backbone(backbone, device=device, **backbone_kwargs),
                          **tracker_kwargs)


@dataclass
class EvalTrackerFactory:
    """Builds ``dinotools.eval --track``'s tracker when called: picklable, so each batch worker builds its own.

    The batch record keeps the factory to refuse a rerun with other settings, so the factory is
    recorded as data: ``record()`` (and ``repr``, its sorted JSON). A ``functools.partial`` was
    recorded by its repr, which holds memory addresses: ``--resume`` never matched and was refused.
    """

    tracker: str
    backbone: str
    backbone_kwargs: Dict[str, Any]
    tracker_kwargs: Dict[str, Any]

    def __call__(self):
        return build_eval_tracker(self.tracker, self.backbone, self.backbone_kwargs, self.tracker_kwargs)

    def record(self) -> Dict[str, Any]:
        """The factory's settings, as JSON reads them back (paths and other values as text)."""
        return json.loads(json.dumps(dataclasses.asdict(self), sort_keys=True, default=str))

    def __repr__(self) -> str:
        return f"EvalTrackerFactory({json.dumps(self.record(), sort_keys=True)})"


def track_dataset(tracker, dataset: DavisDataset, out_dir, *, batch_size: int = 1, prefetch: int = 0,
                  workers: Optional[int] = None, settings: Optional[RunSettings] = None,
                  tracker_factory: Optional[Callable[[], Any]] = None, resume: bool = False, progress: bool = False,
                  batch: Optional[Dict[str, Any]] = None) -> TrackRun:
    """Track each sequence of ``dataset`` from its first annotation; write ``out_dir/<seq>/<frame>.png``.

    Runs ``dinotools.batch.run_batch`` (so ``out_dir/batch.json`` records each sequence): with
    ``tracker`` (a built tracker) in this process; with ``tracker_factory`` on the engine that
    ``batch`` names (``run_batch`` keywords: ``engine``, ``workers``, ``ray_address``,
    ``cpus_per_worker``, ``gpus_per_worker``), each worker building its own. The first mask is the first annotation with
    void (255) cleared; the frame files must start at the first annotation's frame. ``batch_size``,
    ``prefetch`` and ``workers`` (backbone threads) go to the engine. ``resume``: keep sequences an
    interrupted run finished and continue partial ones (default: track every sequence again).
    """
    from dinotools.batch import run_batch
    from dinotools.batch.sources import dataset_videos

    videos = []
    for video in dataset_videos(dataset):
        if not dataset.first_annotation(video.name)[0].any():
            log.warning("sequence %s: first annotation has no object; not tracked", video.name)
            continue
        videos.append(video)
    if not videos:
        raise InputError("no sequence was tracked: every first annotation is empty")
    settings = eval_settings(settings, batch_size=batch_size, prefetch=prefetch, backbone_workers=workers,
                             max_frames=dataset.max_frames)
    result = run_batch(settings, videos, out_dir, tracker=tracker, tracker_factory=tracker_factory,
                       overwrite=not resume, progress=progress, **(batch or {}))
    if result.failed:
        (name, error), more = result.failed[0], len(result.failed) - 1
        raise InputError(f"sequence {name}: {error}" + (f" (and {more} more failed sequence(s))" if more else "")
                         + f"; the others are tracked: see {result.output / 'batch.json'}")
    run = TrackRun()
    for name, entry in result.videos.items():
        run.add_sequence(name, entry)
    return run


def describe(run: TrackRun) -> List[str]:
    """Human-readable speed and memory lines."""
    lines = [f"tracked {run.frames} frames in {run.seconds:.1f} s: {run.fps:.2f} fps "
             f"(frame reading + features + propagation + PNG writing; {run.cpu_seconds:.1f} s CPU)",
             f"peak RAM (largest worker max RSS while tracking a sequence): {run.peak_rss_mb:.0f} MiB"]
    if run.stages:
        lines.append("time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in run.stages.items()))
    if run.peak_gpu_mb is not None:
        lines.append(f"peak GPU memory (torch max_memory_allocated): {run.peak_gpu_mb:.0f} MiB")
    return lines
