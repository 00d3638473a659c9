"""The per-frame loop of point tracking (the point tracker's counterpart of ``loop.track_video``)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from dinotools.errors import ConfigError, InputError
from dinotools.io.frames import open_frames
from dinotools.pipeline.engine import feature_batches
from dinotools.pipeline.stages import NoStats, guarded
from dinotools.trackers.point_state import PointResult


def track_points(
    tracker,
    frames: Iterable[np.ndarray],
    queries,
    *,
    batch_size: int = 1,
    prefetch: int = 0,
    workers: Optional[int] = None,
    stats=None,
    state=None,
    with_frames: bool = False,
) -> Iterator[PointResult]:
    """Track ``queries [N,3]`` (t, x, y) through ``frames`` (arrays or a folder/video path).

    Yields one ``PointResult`` per frame. Features are computed ``batch_size`` frames at a time
    (``prefetch > 0``: decoded and encoded ahead in background threads, see ``dinotools.pipeline.engine``);
    matching is sequential. ``stats.add(stage, seconds)`` receives decode/backbone/propagate
    times; ``state`` continues a prepared ``PointState``; ``with_frames`` yields ``(frame, result)``
    pairs (for overlays). Raises ``InputError`` at the end when a query's frame never came.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(frames, (str, Path)):
        frames = open_frames(frames)
    state = state if state is not None else tracker.new_state(queries)
    stats = stats or NoStats()
    index = state.next_index
    batches, close = feature_batches(tracker, frames, batch_size, stats, prefetch=prefetch, start=index,
                                     workers=workers)
    try:
        for batch, feats in batches:
            for frame, f in zip(batch, feats):
                t0 = time.perf_counter()
                result = guarded("propagate", index, tracker.step, state, f, frame.shape[:2])
                stats.add("propagate", time.perf_counter() - t0)
                yield (frame, result) if with_frames else result
                index += 1
    finally:
        close()
    late = np.unique(state.queries[:, 0].numpy()[state.queries[:, 0].numpy() >= index]).astype(int)
    if late.size:
        shown = ", ".join(str(t) for t in late[:5]) + (", ..." if late.size > 5 else "")
        raise InputError(f"queries were given for frame(s) {shown}, but the video has only {index} frames")
