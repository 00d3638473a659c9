"""Run a tracker over every sequence of a DAVIS-style dataset, writing result PNGs and timing it."""
from __future__ import annotations

import logging
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..errors import InputError
from ..io.frames import open_frames
from ..io.masks import write_mask
from ..loop import track_video
from .dataset import DavisDataset

log = logging.getLogger(__name__)


@dataclass
class TrackRun:
    """Speed and memory of one pass over the dataset.

    ``seconds`` covers reading frames, features, propagation and decoding, not PNG writing.
    ``peak_rss_mb`` is the whole process's peak resident memory so far (getrusage), so it never
    decreases across runs in one process; ``peak_gpu_mb`` is torch's peak allocation on CUDA.
    """

    frames: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time over the same spans: wall >> cpu/threads means a busy machine
    per_sequence: Dict[str, Dict[str, float]] = field(default_factory=dict)
    stages: Dict[str, float] = field(default_factory=dict)  # seconds per loop stage (decode/backbone/propagate)
    peak_rss_mb: float = 0.0
    peak_gpu_mb: Optional[float] = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> Dict[str, Any]:
        return {"frames": self.frames, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "fps": self.fps,
                "peak_rss_mb": self.peak_rss_mb, "peak_gpu_mb": self.peak_gpu_mb,
                "stages": self.stages, "per_sequence": self.per_sequence}

    def add(self, stage: str, seconds: float) -> None:
        """``stats`` hook of ``track_video``: accumulates time per stage."""
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _results(tracker, frames, first_mask: np.ndarray, run: TrackRun, batch_size: int, prefetch: int,
             workers: Optional[int]):
    """Per-frame results through the single loop; trackers with only ``track()`` use that."""
    if all(hasattr(tracker, a) for a in ("new_state", "encode", "step")):
        return track_video(tracker, frames, {0: first_mask}, batch_size=batch_size, prefetch=prefetch,
                           workers=workers, stats=run)
    return tracker.track(frames, first_mask)  # a plugin tracker implementing only the Protocol


def _cuda_device(tracker) -> Optional[torch.device]:
    device = torch.device(getattr(tracker, "device", "cpu"))
    return device if device.type == "cuda" else None


def track_dataset(tracker, dataset: DavisDataset, out_dir, *, batch_size: int = 1, prefetch: int = 0,
                  workers: Optional[int] = None) -> TrackRun:
    """Track each sequence of ``dataset`` from its first annotation; write ``out_dir/<seq>/<frame>.png``.

    The first mask is the first annotation with void (255) cleared; result frames are named
    after the frame files, which must start at the first annotation's frame. ``batch_size``,
    ``prefetch`` and ``workers`` are passed to ``track_video``.
    """
    out_dir = Path(out_dir)
    run = TrackRun()
    cuda = _cuda_device(tracker)
    if cuda is not None:
        torch.cuda.reset_peak_memory_stats(cuda)
    for seq in dataset.sequences:
        first, first_name = dataset.first_annotation(seq)
        if not first.any():
            log.warning("sequence %s: first annotation has no object; not tracked", seq)
            continue
        frames = open_frames(dataset.frame_dir(seq))
        names = frames.names[: dataset.max_frames] if dataset.max_frames else frames.names
        if names[0] != first_name:
            raise InputError(
                f"sequence {seq}: the first frame is {names[0]} but the first annotation is {first_name}.png; "
                f"tracking starts from the first annotation, so they must be the same frame"
            )
        (out_dir / seq).mkdir(parents=True, exist_ok=True)
        seconds, count, start, cpu_start = 0.0, 0, time.perf_counter(), time.process_time()
        results = _results(tracker, _limit(frames, len(names)), first, run, batch_size, prefetch, workers)
        try:
            for result in results:
                if cuda is not None:
                    torch.cuda.synchronize(cuda)
                seconds += time.perf_counter() - start
                run.cpu_seconds += time.process_time() - cpu_start
                write_mask(out_dir / seq / f"{names[result.index]}.png", result.labels)
                count += 1
                start, cpu_start = time.perf_counter(), time.process_time()  # clocks restart after the write
        finally:
            if hasattr(results, "close"):  # stops track_video's prefetch threads on an early exit
                results.close()
        run.frames += count
        run.seconds += seconds
        run.per_sequence[seq] = {"frames": count, "seconds": seconds, "fps": count / seconds if seconds else 0.0}
        log.info("%s: %d frames, %.2f fps", seq, count, count / seconds if seconds else 0.0)
    run.peak_rss_mb = peak_rss_mb()
    if cuda is not None:
        run.peak_gpu_mb = torch.cuda.max_memory_allocated(cuda) / 2**20
    if run.frames == 0:
        raise InputError("no sequence was tracked: every first annotation is empty")
    return run


def _limit(frames, n: int):
    """The first ``n`` frames of ``frames`` (a lazy source)."""
    for i, frame in enumerate(frames):
        if i >= n:
            return
        yield frame


def describe(run: TrackRun) -> List[str]:
    """Human-readable speed and memory lines."""
    lines = [f"tracked {run.frames} frames in {run.seconds:.1f} s: {run.fps:.2f} fps "
             f"(frame reading + features + propagation; PNG writing excluded; {run.cpu_seconds:.1f} s CPU)",
             f"peak RAM (process max RSS): {run.peak_rss_mb:.0f} MiB"]
    if run.stages:
        lines.append("time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in run.stages.items()))
    if run.peak_gpu_mb is not None:
        lines.append(f"peak GPU memory (torch max_memory_allocated): {run.peak_gpu_mb:.0f} MiB")
    return lines
