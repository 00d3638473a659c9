"""Run summaries: frames, seconds, fps, per-stage time and peak memory (RAM and GPU)."""
from __future__ import annotations

import json
import resource
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
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


@dataclass
class RunReport:
    """Accumulates per-stage seconds; ``summary()`` gives the figures printed and saved."""

    frames: int = 0
    stages: Dict[str, float] = field(default_factory=lambda: defaultdict(float))
    start: float = field(default_factory=time.perf_counter)

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage] += seconds

    def summary(self) -> dict:
        seconds = time.perf_counter() - self.start
        return {
            "frames": self.frames,
            "seconds": round(seconds, 3),
            "fps": round(self.frames / seconds, 3) if seconds > 0 else 0.0,
            "stage_seconds": {k: round(v, 3) for k, v in self.stages.items()},
            "peak_ram_mb": round(peak_rss_mb(), 1),
            "peak_gpu_mb": round(peak_gpu_mb(), 1),
        }

    def line(self) -> str:
        s = self.summary()
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in s["stage_seconds"].items())
        gpu = f", peak GPU {s['peak_gpu_mb']:.0f} MiB" if s["peak_gpu_mb"] else ""
        return (
            f"{s['frames']} frames in {s['seconds']:.2f}s ({s['fps']:.2f} fps); {stages}; "
            f"peak RAM {s['peak_ram_mb']:.0f} MiB{gpu}"
        )

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.summary(), f, indent=2)


class Progress:
    """A one-line progress bar on stderr (no dependency); silent when disabled."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.start = total, time.perf_counter()
        self.enabled = enabled and sys.stderr.isatty()  # a bar in a log file is noise

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        width = 30
        filled = int(width * done / self.total) if self.total else width
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {rate:.2f} fps")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
