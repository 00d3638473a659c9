"""Explicit per-video state of the point tracker, and its per-frame result."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch


@dataclass
class PointResult:
    """One frame's answer for every query.

    ``xy [N,2]`` float32 (x, y) in pixels of the input frame, (0, 0) the top-left corner of the
    top-left pixel (so pixel (row r, col c) has its centre at (c + 0.5, r + 0.5)); NaN for a
    query whose frame has not come yet. ``visible [N]`` bool (False before the query frame).
    """

    index: int
    xy: np.ndarray
    visible: np.ndarray


@dataclass
class PointState:
    """Everything that changes while one video is tracked; its size depends on N, never on the video length.

    Positions are in grid units (``dinotools.ops.local_match``; a cell is a patch, or a fraction of
    one with sub-patch shifts). ``anchor`` holds each query's feature from its query frame,
    ``template`` what is matched (the anchor, or the anchor blended with the feature at the last
    visible position). ``pos`` is the position reported for the last frame (the match, or where the
    scene carried an occluded point); ``centre`` is where the next search is centred (``pos`` moved
    on by the scene's latest motion, or ``pos`` itself without ``predict``). ``prev_features`` (the
    last frame's features) serve the forward-backward check.
    """

    queries: torch.Tensor  # [N,3] float64 (t, x, y) in pixels
    device: torch.device
    frame_size: Optional[Tuple[int, int]] = None  # (H, W) of the input frames
    grid: Optional[Tuple[int, int]] = None  # (h, w) feature grid
    offset: float = 0.5  # u = x * w / W - offset: half a patch, in grid cells (shifts / 2 for a denser grid)
    anchor: Optional[torch.Tensor] = None  # [N,D]
    template: Optional[torch.Tensor] = None  # [N,D]
    pos: Optional[torch.Tensor] = None  # [N,2] (u, v) found in the last frame
    centre: Optional[torch.Tensor] = None  # [N,2] (u, v) where the next search is centred
    visible: Optional[torch.Tensor] = None  # [N] bool, last frame
    active: Optional[torch.Tensor] = None  # [N] bool: the query frame has been reached
    prev_features: Optional[torch.Tensor] = None  # [h,w,D]
    next_index: int = 0

    @property
    def num_queries(self) -> int:
        return int(self.queries.shape[0])

    @property
    def started(self) -> bool:
        return self.prev_features is not None

    def inside(self, uv: torch.Tensor) -> torch.Tensor:
        """``uv [n,2]`` grid units -> ``[n]`` bool: inside the frame (``0 <= x < W``, ``0 <= y < H``)."""
        h, w = self.grid
        u, v = uv[:, 0] + self.offset, uv[:, 1] + self.offset
        return (u >= 0) & (u < w) & (v >= 0) & (v < h)

    def to_grid(self, xy: torch.Tensor) -> torch.Tensor:
        """``xy [n,2]`` pixels -> ``[n,2]`` grid units (the patches cover the whole resized frame)."""
        (hh, ww), (h, w) = self.frame_size, self.grid
        scale = torch.tensor([w / ww, h / hh], dtype=torch.float64, device=xy.device)
        return (xy.double() * scale - self.offset).float()

    def to_pixels(self, uv: torch.Tensor) -> torch.Tensor:
        """``uv [n,2]`` grid units -> ``[n,2]`` pixels."""
        (hh, ww), (h, w) = self.frame_size, self.grid
        scale = torch.tensor([ww / w, hh / h], dtype=torch.float64, device=uv.device)
        return ((uv.double() + self.offset) * scale).float()
