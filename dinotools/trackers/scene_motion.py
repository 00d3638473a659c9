"""The scene's motion between two frames, estimated from the points tracked in both: a coarse field of medians.

Occluded points have no match to follow; they move with the visible points around them, and a
point whose predicted position leaves the frame is out of view.
"""
from __future__ import annotations

import torch

MIN_POINTS = 3  # a bin with fewer visible points falls back to the median over the whole frame


def _median_per_bin(values: torch.Tensor, bins: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Lower median of ``values [m]`` within each bin (``bins [m]`` long, ``count [B]``) -> ``[B]`` (0 if empty)."""
    order = values.argsort()
    order = order[bins[order].argsort(stable=True)]  # by bin, and by value within a bin
    start = torch.cumsum(count, 0) - count
    pick = (start + (count - 1).clamp(min=0) // 2).clamp(max=max(values.numel() - 1, 0))
    return torch.where(count > 0, values[order][pick], values.new_zeros(()))


def scene_motion(points: torch.Tensor, motion: torch.Tensor, grid, bins: int = 4):
    """A motion field from ``points [m,2]`` (u, v) that moved by ``motion [m,2]``.

    Returns ``field(at [k,2]) -> [k,2]``: the median motion of the points in the same cell of a
    ``bins x bins`` partition of the ``grid`` (h, w), or the median over all points where a cell
    holds fewer than ``MIN_POINTS``; zero motion when there are no points at all.
    """
    h, w = grid
    if points.shape[0] == 0:
        return lambda at: at.new_zeros(at.shape)
    overall = motion.median(dim=0).values  # [2]

    def cell(p: torch.Tensor) -> torch.Tensor:
        bx = (p[:, 0] * bins / w).floor().clamp(0, bins - 1).long()
        by = (p[:, 1] * bins / h).floor().clamp(0, bins - 1).long()
        return by * bins + bx

    b = cell(points)
    count = torch.bincount(b, minlength=bins * bins)
    per_bin = torch.stack([_median_per_bin(motion[:, i], b, count) for i in range(2)], dim=1)  # [B,2]
    per_bin = torch.where((count >= MIN_POINTS)[:, None], per_bin, overall)
    return lambda at: per_bin[cell(at)]
