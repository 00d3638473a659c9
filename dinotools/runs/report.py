"""Run summaries: frames, seconds, fps, per-stage time and peak memory (RAM and GPU)."""
from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Optional


def reset_peak_rss() -> None:
    """Start a new peak-memory window: Linux resets the process's VmHWM on writing 5 to clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # elsewhere the peak is the process's peak so far (ru_maxrss never decreases)


def peak_rss_mb() -> float:
    """Peak resident memory in MiB since ``reset_peak_rss`` (Linux VmHWM), else of the process so far
    (ru_maxrss: KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def current_rss_mb() -> float:
    """Current resident memory in MiB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / (1024 * 1024)
    except OSError:
        return peak_rss_mb()


def peak_gpu_mb() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / (1024 * 1024) if torch.cuda.is_available() else 0.0


STAGES = ("decode", "backbone", "propagate", "write")


def _checkpoints():
    """Frame counts at which resident memory is sampled: 1, 2, 5, 10, 20, 50, ... (a few per decade)."""
    scale = 1
    while True:
        for m in (1, 2, 5):
            yield m * scale
        scale *= 10


@dataclass
class RunReport:
    """Accumulates per-stage seconds (thread-safe); ``summary()`` gives the figures printed and saved.

    Stage seconds are the busy time of each stage. In the pipelined engine the stages run in
    different threads at the same time, so their sum can exceed the wall-clock ``seconds``.
    ``rss_mb`` samples resident memory after 1, 2, 5, 10, 20, 50, ... frames (a few per decade:
    bounded however long the run), so growth over a long video can be read afterwards.
    """

    frames: int = 0
    stages: Dict[str, float] = field(default_factory=lambda: defaultdict(float))
    start: float = field(default_factory=time.perf_counter)
    rss_mb: Dict[int, float] = field(default_factory=dict)
    extra: Dict[str, object] = field(default_factory=dict)  # e.g. engine, resumed_from

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next = _checkpoints()
        self._sample_at = next(self._next)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.stages[stage] += seconds

    def frame_done(self) -> None:
        """Count a finished frame; sample resident memory at the checkpoints."""
        self.frames += 1
        if self.frames == self._sample_at:
            self.rss_mb[self.frames] = round(current_rss_mb(), 1)
            self._sample_at = next(self._next)

    def summary(self) -> dict:
        seconds = time.perf_counter() - self.start
        ordered = [k for k in STAGES if k in self.stages] + sorted(set(self.stages) - set(STAGES))
        rss = dict(self.rss_mb)
        if self.frames and self.frames not in rss:
            rss[self.frames] = round(current_rss_mb(), 1)
        return {
            "frames": self.frames,
            "seconds": round(seconds, 3),
            "fps": round(self.frames / seconds, 3) if seconds > 0 else 0.0,
            "stage_seconds": {k: round(self.stages[k], 3) for k in ordered},
            "peak_ram_mb": round(peak_rss_mb(), 1),
            "peak_gpu_mb": round(peak_gpu_mb(), 1),
            "rss_mb": {str(k): v for k, v in sorted(rss.items())},
            **self.extra,
        }

    def line(self) -> str:
        s = self.summary()
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in s["stage_seconds"].items())
        overlap = " (stages overlap)" if s.get("engine") == "pipelined" else ""
        gpu = f", peak GPU {s['peak_gpu_mb']:.0f} MiB" if s["peak_gpu_mb"] else ""
        device = f" on {s['device']}" if s.get("device") else ""
        return (
            f"{s['frames']} frames in {s['seconds']:.2f}s ({s['fps']:.2f} fps){device}; {stages}{overlap}; "
            f"peak RAM {s['peak_ram_mb']:.0f} MiB{gpu}"
        )

    def save(self, path) -> None:
        """Write ``summary()`` as JSON, atomically (a failed write leaves no partial file)."""
        from dinotools.errors import InputError
        from dinotools.io.masks import atomic_save

        text = json.dumps(self.summary(), indent=2) + "\n"
        try:
            atomic_save(path, lambda f: f.write(text.encode()))
        except OSError as exc:
            raise InputError(f"cannot write the report {path}: {exc.strerror or exc}") from None


def progress_bar(total: Optional[int], *, unit: str = "frame", desc: Optional[str] = None, enabled: bool = True,
                 initial: int = 0, leave: bool = True, position: Optional[int] = None):
    """A ``tqdm`` bar on stderr; silent when not ``enabled`` or when stderr is not a terminal.

    Frames use ``unit="frame"``; a batch runner nests one per video under a videos bar:
    ``progress_bar(len(videos), unit="video")`` outside, ``progress_bar(n, desc=name, leave=False,
    position=1)`` inside. Call ``update(k)`` per k items done and ``close()`` at the end.
    """
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, initial=initial, leave=leave, position=position,
                disable=None if enabled else True, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
