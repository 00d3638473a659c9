"""A tracking job: frames + masks in, one indexed PNG per frame out (DAVIS layout), with a report."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from .errors import InputError
from .io.frames import FrameSource
from .io.masks import MAX_PNG_ID, write_mask
from .io.overlay import OverlayWriter
from .report import Progress, RunReport

log = logging.getLogger(__name__)


def prepare_output(output: Path, overwrite: bool) -> None:
    """Create ``output``; refuse a non-empty folder unless ``overwrite`` (finished work is kept)."""
    if output.exists() and not output.is_dir():
        raise InputError(f"output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise InputError(f"output folder {output} is not empty; pass --overwrite to replace its files")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {output}: {exc.strerror}") from None


def run_job(
    tracker,
    source: FrameSource,
    masks: dict,
    output: Path,
    *,
    overlay: Optional[Path] = None,
    batch_size: int = 1,
    initializer=None,
    discover_every: Optional[int] = None,
    progress: bool = True,
) -> RunReport:
    """Track ``source`` from ``masks`` ({index: array or path}) and write ``output/<name>.png``."""
    report = RunReport()
    bar = Progress(len(source), enabled=progress)
    writer = OverlayWriter(overlay) if overlay else None
    frames = _KeepFrames(source, keep=writer is not None)
    try:
        results = tracker.track(
            frames, masks=masks, batch_size=batch_size, initializer=initializer, discover_every=discover_every
        )
        tick = time.perf_counter()
        for res in results:
            now = time.perf_counter()
            report.add("track", now - tick)
            if res.labels.size and res.labels.max() > MAX_PNG_ID:
                raise InputError(
                    f"frame {res.index} has object id {int(res.labels.max())}; indexed PNG outputs hold ids up to "
                    f"{MAX_PNG_ID}: renumber the mask's objects"
                )
            name = source.names[res.index]
            try:
                write_mask(output / f"{name}.png", res.labels)
                if writer is not None:
                    writer.write(frames.take(res.index), res.labels)
            except OSError as exc:
                raise InputError(f"cannot write {output / (name + '.png')}: {exc.strerror or exc}") from None
            tick = time.perf_counter()
            report.add("write", tick - now)
            report.frames += 1
            bar.update(report.frames)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    return report


class _KeepFrames:
    """Iterates a frame source, keeping frames read but not yet written (for the overlay)."""

    def __init__(self, source, keep: bool) -> None:
        self.source, self.keep, self.pending = source, keep, {}

    def __iter__(self):
        for i, frame in enumerate(self.source):
            if self.keep:
                self.pending[i] = frame
            yield frame

    def take(self, index: int):
        return self.pending.pop(index)
