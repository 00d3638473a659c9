"""Automatic discovery: which proposed masks are new objects (after SAM-Track's rule)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class DiscoveryConfig:
    """A proposal becomes a new object when at least ``min_new_fraction`` of its area lies on
    untracked background and that part covers at least ``min_area`` pixels (SAM-Track: 0.8, 200)."""

    min_new_fraction: float = 0.8
    min_area: int = 200


def new_objects(
    proposals: np.ndarray, labels: np.ndarray, known_ids: Sequence[int], cfg: DiscoveryConfig
) -> Optional[np.ndarray]:
    """``proposals [H,W]`` (ids of proposed regions) vs tracked ``labels [H,W]`` -> new-object mask.

    Returns an id map whose ids are the next free ones (never reused: above every id ever
    tracked), covering only the untracked part of each accepted proposal; ``None`` if none.
    """
    if proposals.shape != labels.shape:
        raise ValueError(f"proposals {proposals.shape} and labels {labels.shape} differ in size")
    background = labels == 0
    out = np.zeros(labels.shape, dtype=np.int64)
    next_id = max(known_ids, default=0) + 1
    for pid in np.unique(proposals):
        if pid == 0:
            continue
        region = proposals == pid
        area = int(region.sum())
        fresh = region & background & (out == 0)
        n_fresh = int(fresh.sum())
        if n_fresh < cfg.min_area or n_fresh < cfg.min_new_fraction * area:
            continue
        out[fresh] = next_id
        next_id += 1
    return out if out.any() else None
