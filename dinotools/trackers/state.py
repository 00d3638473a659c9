"""Explicit per-video tracking state and per-frame results."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Deque, List, Optional, Tuple

import numpy as np
import torch


@dataclass
class FrameResult:
    """One output frame.

    ``labels [H,W]``: object ids exactly as given in the input masks (0 = background).
    ``probs [M,H,W]`` (on request): post-processed (min-max stretched) probabilities, channel 0
    background and channel c the object ``ids[c-1]``.
    """

    index: int
    labels: np.ndarray
    ids: Tuple[int, ...]
    probs: Optional[torch.Tensor] = None
    raw_probs: Optional[torch.Tensor] = None  # [h,w,M] low-resolution propagation output, on request


@dataclass
class ContextFrame:
    """A frame in the context: features ``[h,w,D]`` and label probabilities ``[h,w,M]``."""

    features: torch.Tensor
    probs: torch.Tensor


@dataclass
class TrackState:
    """Everything that changes while one video is tracked (one state per video).

    ``anchors`` are permanent context frames (the first mask frame and any later mask frame);
    ``recent`` holds the last ``max_context`` raw predictions, as the notebook's queue.
    """

    max_context: int
    frame_size: Optional[Tuple[int, int]] = None  # (H, W) of the outputs
    grid: Optional[Tuple[int, int]] = None  # (h, w) patch grid
    ids: List[int] = field(default_factory=list)  # channel c (>= 1) <-> object id ids[c-1]
    anchors: List[ContextFrame] = field(default_factory=list)
    recent: Deque[ContextFrame] = field(default_factory=deque)
    next_index: int = 0  # index of the next frame to be stepped
    last: Optional[ContextFrame] = None  # the latest propagated frame, until amended or superseded

    @property
    def started(self) -> bool:
        return bool(self.anchors)

    @property
    def num_channels(self) -> int:
        return 1 + len(self.ids)

    def context(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``([t,h,w,D], [t,h,w,M])``: anchors first, then recent frames oldest first."""
        frames = list(self.anchors) + list(self.recent)
        return torch.stack([f.features for f in frames]), torch.stack([f.probs for f in frames])

    def push_recent(self, frame: ContextFrame) -> None:
        self.recent.append(frame)
        while len(self.recent) > self.max_context:
            self.recent.popleft()

    def add_ids(self, new_ids: List[int]) -> None:
        """Append channels for ``new_ids``; every stored context frame gets probability 0 for them."""
        if not new_ids:
            return
        self.ids.extend(new_ids)
        for f in list(self.anchors) + list(self.recent):
            f.probs = torch.nn.functional.pad(f.probs, (0, len(new_ids)))
