"""Two trivial point trackers that any real one must beat: zero motion, and one global motion per frame.

``global_motion`` estimates, without ground truth, one translation per pair of consecutive frames
by phase correlation (OpenCV's ``phaseCorrelate`` on the greyscale frames, Hann window) and moves
every point by the accumulated translation since its query frame. Both predict every point
visible inside the frame (``global_motion``: occluded once pushed outside it).
"""
from __future__ import annotations

from typing import Iterable, Tuple

import cv2
import numpy as np


def zero_motion(queries: np.ndarray, num_frames: int) -> Tuple[np.ndarray, np.ndarray]:
    """``queries [N,3]`` (t, x, y) -> (``tracks [N,T,2]``: the query point on every frame, ``occluded [N,T]``:
    all False)."""
    q = np.asarray(queries, dtype=np.float64)
    tracks = np.broadcast_to(q[:, None, 1:], (len(q), num_frames, 2)).copy()
    return tracks, np.zeros((len(q), num_frames), bool)


def frame_shifts(frames: Iterable[np.ndarray]) -> np.ndarray:
    """``T`` frames ``[H,W,3]`` -> ``[T,2]`` accumulated translation (x, y) of each frame since frame 0."""
    shifts, prev, window = [np.zeros(2)], None, None
    for frame in frames:
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float64)
        if prev is None:
            window = cv2.createHanningWindow(grey.shape[::-1], cv2.CV_64F)
        else:
            (dx, dy), _ = cv2.phaseCorrelate(prev, grey, window)  # content of `grey` moved by (dx, dy)
            shifts.append(shifts[-1] + np.array([dx, dy]))
        prev = grey
    return np.stack(shifts)


def global_motion(queries: np.ndarray, frames, frame_size) -> Tuple[np.ndarray, np.ndarray]:
    """``queries [N,3]``, frames (``[T,H,W,3]`` or an iterable) -> (``tracks [N,T,2]``, ``occluded [N,T]``)."""
    q = np.asarray(queries, dtype=np.float64)
    shift = frame_shifts(frames)  # [T,2]
    t0 = np.round(q[:, 0]).astype(int)
    tracks = q[:, None, 1:] + shift[None] - shift[t0][:, None]
    h, w = frame_size
    outside = (tracks[..., 0] < 0) | (tracks[..., 0] >= w) | (tracks[..., 1] < 0) | (tracks[..., 1] >= h)
    return tracks, outside
