"""The single per-frame loop: every caller (Python API, CLI, evaluation) tracks through here."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Mapping, Optional

import numpy as np

from dinotools.errors import ConfigError, InputError
from dinotools.io.frames import open_frames
from dinotools.io.masks import check_mask, fit_mask, read_mask
from dinotools.pipeline.engine import feature_batches
from dinotools.pipeline.stages import NoStats, guarded
from dinotools.trackers.discovery import DiscoveryConfig, new_objects
from dinotools.trackers.state import FrameResult

log = logging.getLogger(__name__)


def load_masks(masks: Mapping[int, object]) -> Dict[int, tuple]:
    """``{index: array or path}`` -> ``{index: (array, description for messages)}``."""
    return {index: load_mask(index, m) for index, m in index_masks(masks).items()}


def index_masks(masks: Mapping[int, object]) -> Dict[int, object]:
    """``masks`` with its keys checked (frame indices >= 0) and made ints; files are not read yet."""
    out = {}
    for index, m in masks.items():
        if not isinstance(index, (int, np.integer)) or index < 0:
            raise ConfigError(f"mask keys must be frame indices >= 0, got {index!r}")
        out[int(index)] = m
    return out


def load_mask(index: int, m) -> tuple:
    """One mask (array or file) -> ``(array [H,W], description for messages)``."""
    if isinstance(m, (str, Path)):
        return read_mask(m), f"mask {m}"
    arr = np.asarray(m)
    if arr.ndim != 2:
        raise InputError(f"mask for frame {index} must be a 2-D id map, got shape {arr.shape}")
    return arr, f"mask for frame {index}"


def track_video(
    tracker,
    frames: Iterable[np.ndarray],
    masks: Optional[Mapping[int, object]] = None,
    *,
    return_probs: bool = False,
    batch_size: int = 1,
    initializer: Optional[Callable] = None,
    discover_every: Optional[int] = None,
    discovery: Optional[DiscoveryConfig] = None,
    prefetch: int = 0,
    workers: Optional[int] = None,
    stats=None,
    state=None,
) -> Iterator[FrameResult]:
    """Track ``frames`` (arrays or a folder/video path), yielding one result per frame.

    ``masks`` maps frame indices to id maps (arrays or mask files); each becomes an anchor. A
    single id map (or mask file) stands for ``{0: mask}``.
    ``initializer(index, frame) -> id map | None`` is asked for masks until the first objects
    exist, then (when ``discover_every`` is set) every ``discover_every`` frames for proposals:
    a proposal lying mostly on untracked background becomes a new object with the next free id.
    Features are computed ``batch_size`` frames at a time; propagation stays sequential.

    ``prefetch > 0`` decodes and encodes that many batches ahead in background threads (see
    ``dinotools.pipeline.engine``) with ``workers`` backbone threads (default: 2 on CPU, 1 on
    CUDA); ``stats.add(stage, seconds)`` receives decode/backbone/propagate
    times; ``state`` continues a prepared ``TrackState`` (resume): ``frames`` then start at
    frame ``state.next_index``. Close the generator to stop the background threads early.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if discover_every is not None and (discover_every < 1 or initializer is None):
        raise ConfigError("discover_every needs an initializer and must be >= 1")
    if isinstance(frames, (str, Path)):
        frames = open_frames(frames)
    if masks is not None and not isinstance(masks, Mapping):
        masks = {0: masks}  # one mask (array or file): frame 0's
    given = index_masks(masks or {})  # read when their frame comes: a folder of masks is never all in memory
    if not given and initializer is None and (state is None or not state.started):
        raise ConfigError("nothing to track: give a first mask, masks={index: mask}, or an initializer")
    discovery = discovery or DiscoveryConfig()
    stats = stats or NoStats()
    state = state if state is not None else tracker.new_state()
    index = state.next_index
    # Trackers whose refiner reads pixels get the frame too (older trackers' step has no frame=).
    takes_frames = getattr(tracker, "takes_frames", False)
    batches, close = feature_batches(tracker, frames, batch_size, stats, prefetch=prefetch, start=index,
                                     workers=workers)
    try:
        for batch, feats in batches:
            for frame, f in zip(batch, feats):
                t0 = time.perf_counter()
                mask = None
                if index in given:
                    arr, where = load_mask(index, given.pop(index))
                    check_mask(arr, where)
                    mask = fit_mask(arr, frame.shape[:2], where)
                elif initializer is not None and not state.started:
                    mask = guarded("initializer", index, initializer, index, frame)
                pixels = {"frame": frame} if takes_frames else {}
                result = guarded("propagate", index, tracker.step, state, f, frame.shape[:2], mask,
                                  return_probs=return_probs, **pixels)
                due = discover_every is not None and state.started and index % discover_every == 0 and mask is None
                if due and index > 0:
                    proposals = guarded("initializer", index, initializer, index, frame)
                    new = new_objects(proposals, result.labels, state.ids, discovery) if proposals is not None else None
                    if new is not None:
                        result = guarded("propagate", index, tracker.amend, state, result, new,
                                          return_probs=return_probs, **pixels)
                stats.add("propagate", time.perf_counter() - t0)
                yield result
                index += 1
    finally:
        close()
    if given:
        later = ", ".join(str(i) for i in sorted(given))
        raise InputError(f"masks were given for frame(s) {later}, but the video has only {index} frames")
