"""The single per-frame loop: every caller (Python API, CLI, evaluation) tracks through here."""
from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Mapping, Optional

import numpy as np

from .errors import ConfigError, InputError
from .io.frames import open_frames
from .io.masks import check_mask, fit_mask, read_mask
from .trackers.discovery import DiscoveryConfig, new_objects
from .trackers.state import FrameResult

log = logging.getLogger(__name__)


def _load_masks(masks: Mapping[int, object]) -> Dict[int, tuple]:
    """``{index: array or path}`` -> ``{index: (array, description for messages)}``."""
    out = {}
    for index, m in masks.items():
        if not isinstance(index, (int, np.integer)) or index < 0:
            raise ConfigError(f"mask keys must be frame indices >= 0, got {index!r}")
        if isinstance(m, (str, Path)):
            out[int(index)] = (read_mask(m), f"mask {m}")
        else:
            arr = np.asarray(m)
            if arr.ndim != 2:
                raise InputError(f"mask for frame {index} must be a 2-D id map, got shape {arr.shape}")
            out[int(index)] = (arr, f"mask for frame {index}")
    return out


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
) -> Iterator[FrameResult]:
    """Track ``frames`` (arrays or a folder/video path), yielding one result per frame.

    ``masks`` maps frame indices to id maps (arrays or mask files); each becomes an anchor.
    ``initializer(index, frame) -> id map | None`` is asked for masks until the first objects
    exist, then (when ``discover_every`` is set) every ``discover_every`` frames for proposals:
    a proposal lying mostly on untracked background becomes a new object with the next free id.
    Features are computed ``batch_size`` frames at a time; propagation stays sequential.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if discover_every is not None and (discover_every < 1 or initializer is None):
        raise ConfigError("discover_every needs an initializer and must be >= 1")
    if isinstance(frames, (str, Path)):
        frames = open_frames(frames)
    given = _load_masks(masks or {})
    if not given and initializer is None:
        raise ConfigError("nothing to track: give a first mask, masks={index: mask}, or an initializer")
    discovery = discovery or DiscoveryConfig()
    state = tracker.new_state()
    frame_iter = iter(frames)
    index = 0
    while True:
        batch = list(itertools.islice(frame_iter, batch_size))
        if not batch:
            break
        feats = tracker.encode(batch)  # [B,h,w,D]
        for frame, f in zip(batch, feats):
            mask = None
            if index in given:
                arr, where = given.pop(index)
                check_mask(arr, where)
                mask = fit_mask(arr, frame.shape[:2], where)
            elif initializer is not None and not state.started:
                mask = initializer(index, frame)
            result = tracker.step(state, f, frame.shape[:2], mask, return_probs=return_probs)
            due = discover_every is not None and state.started and index % discover_every == 0 and mask is None
            if due and index > 0:
                proposals = initializer(index, frame)
                new = new_objects(proposals, result.labels, state.ids, discovery) if proposals is not None else None
                if new is not None:
                    result = tracker.amend(state, result, new, return_probs=return_probs)
            yield result
            index += 1
    if given:
        later = ", ".join(str(i) for i in sorted(given))
        raise InputError(f"masks were given for frame(s) {later}, but the video has only {index} frames")
