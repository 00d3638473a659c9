"""Region similarity J and boundary F, computed exactly as the official davis2017-evaluation does."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import cv2
import numpy as np

BOUND_TH = 0.008  # official boundary tolerance: a fraction of the image diagonal (or pixels when >= 1)


def disk(radius: float) -> np.ndarray:
    """``skimage.morphology.disk(radius)`` re-implemented: ``[2r+1, 2r+1]`` uint8, 1 where x²+y² <= r²."""
    axis = np.arange(-radius, radius + 1)  # same arange as skimage, so a fractional radius behaves alike
    x, y = np.meshgrid(axis, axis)
    return ((x**2 + y**2) <= radius**2).astype(np.uint8)


def boundary_tolerance(shape: Tuple[int, int], bound_th: float = BOUND_TH) -> float:
    """Dilation radius in pixels: ``bound_th`` itself when >= 1, else ``ceil(bound_th * diagonal)``."""
    if bound_th >= 1:
        return bound_th
    return float(np.ceil(bound_th * np.linalg.norm(shape[-2:])))  # 480x854 -> ceil(7.84) = 8


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary map of ``seg [..., H, W]`` (any leading dims) -> bool ``[..., H, W]``.

    A pixel is on the boundary when it differs from its east, south or south-east neighbour; the
    last row compares only east, the last column only south, and the bottom-right pixel is never
    a boundary (Martin's seg2bmap, as the official tool). So the image edge itself is no boundary:
    a mask covering the whole image has none.
    """
    seg = np.asarray(seg, dtype=bool)
    core = seg[..., :-1, :-1]
    bmap = np.zeros_like(seg)
    # interior: differs from east, south or south-east (the zero-filled shifts only reach the
    # last row/column, which are overwritten below, so slices give the same map with less memory)
    bmap[..., :-1, :-1] = (core ^ seg[..., :-1, 1:]) | (core ^ seg[..., 1:, :-1]) | (core ^ seg[..., 1:, 1:])
    bmap[..., -1, :-1] = seg[..., -1, :-1] ^ seg[..., -1, 1:]  # last row: east only
    bmap[..., :-1, -1] = seg[..., :-1, -1] ^ seg[..., 1:, -1]  # last column: south only
    return bmap


def count_per_mask(masks: np.ndarray) -> np.ndarray:
    """True pixels per mask: bool ``[..., H, W]`` -> int64 ``[...]``.

    Loops over masks on purpose: ``np.count_nonzero`` without ``axis`` is a fast popcount,
    while its ``axis=`` form casts to integers first and is several times slower.
    """
    flat = masks.reshape(-1, *masks.shape[-2:])
    counts = np.fromiter((np.count_nonzero(m) for m in flat), dtype=np.int64, count=flat.shape[0])
    return counts.reshape(masks.shape[:-2])


def _check_pair(gt: np.ndarray, pred: np.ndarray, void: Optional[np.ndarray]) -> None:
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    if void is not None and void.shape != gt.shape:
        raise ValueError(f"void map {void.shape} and ground truth {gt.shape} differ in shape")
    if gt.ndim < 2:
        raise ValueError(f"masks need at least 2 dims [..., H, W], got {gt.shape}")


def region_similarity(gt: np.ndarray, pred: np.ndarray, void: Optional[np.ndarray] = None) -> np.ndarray:
    """J = |P ∧ G| / |P ∨ G| per mask: ``[..., H, W]`` binary masks -> float64 ``[...]``.

    Void pixels (when given) are removed from both counts; an empty union (both masks empty) gives 1.
    """
    _check_pair(gt, pred, void)
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)  # no copy when already bool
    if void is None:
        inter, union = count_per_mask(gt & pred), count_per_mask(gt | pred)
    else:
        keep = ~np.asarray(void, dtype=bool)
        inter, union = count_per_mask(gt & pred & keep), count_per_mask((gt | pred) & keep)
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def j_per_object(gt: np.ndarray, pred: np.ndarray) -> Dict[int, float]:
    """J (``region_similarity``) of each object of ``gt``: two ``[H,W]`` id maps (0: background) ->
    ``{id: J}`` over the non-zero ids of ``gt``."""
    ids = np.unique(gt)
    ids = ids[ids != 0]
    j = region_similarity(gt[None] == ids[:, None, None], pred[None] == ids[:, None, None])  # [O]
    return {int(i): float(v) for i, v in zip(ids, j)}


def _f_from_counts(n_pred: int, n_gt: int, pred_match: int, gt_match: int) -> float:
    """F from boundary pixel counts, with the official empty-boundary conventions."""
    if n_pred == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_pred > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision, recall = pred_match / float(n_pred), gt_match / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _matches(b_gt: np.ndarray, b_pred: np.ndarray, kernel: np.ndarray) -> Tuple[int, int]:
    """(predicted boundary pixels near the GT boundary, GT boundary pixels near the predicted one).

    Both are read only at boundary pixels, and every boundary pixel lies in the bounding box of
    the two maps, so dilating that box alone gives the full-image counts exactly (the dilation
    border adds nothing) at a fraction of the cost.
    """
    rows = np.flatnonzero(b_gt.any(axis=1) | b_pred.any(axis=1))
    cols = np.flatnonzero(b_gt.any(axis=0) | b_pred.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    g, p = np.ascontiguousarray(b_gt[box]), np.ascontiguousarray(b_pred[box])
    gt_dil = cv2.dilate(g.view(np.uint8), kernel).view(bool)
    pred_dil = cv2.dilate(p.view(np.uint8), kernel).view(bool)
    return int(np.count_nonzero(p & gt_dil)), int(np.count_nonzero(g & pred_dil))


def boundary_f(
    gt: np.ndarray, pred: np.ndarray, void: Optional[np.ndarray] = None, bound_th: float = BOUND_TH
) -> np.ndarray:
    """Boundary F-measure per mask: ``[..., H, W]`` binary masks -> float64 ``[...]``.

    Precision = predicted boundary pixels within ``r`` (disk dilation) of the GT boundary over all
    predicted boundary pixels; recall the converse; r = ``boundary_tolerance((H, W), bound_th)``.
    """
    _check_pair(gt, pred, void)
    lead = gt.shape[:-2]
    h, w = gt.shape[-2:]
    gt = np.asarray(gt, dtype=bool).reshape(-1, h, w)
    pred = np.asarray(pred, dtype=bool).reshape(-1, h, w)
    keep = None if void is None else ~np.asarray(void, dtype=bool).reshape(-1, h, w)
    kernel = disk(boundary_tolerance((h, w), bound_th))
    out = np.empty(gt.shape[0], dtype=np.float64)
    # One mask at a time: the working set stays in cache, unlike whole-stack temporaries.
    for i in range(gt.shape[0]):
        g, p = (gt[i], pred[i]) if keep is None else (gt[i] & keep[i], pred[i] & keep[i])
        b_gt, b_pred = seg2bmap(g), seg2bmap(p)
        n_gt, n_pred = np.count_nonzero(b_gt), np.count_nonzero(b_pred)
        pred_match = gt_match = 0
        if n_gt > 0 and n_pred > 0:  # dilation only matters when both boundaries exist
            pred_match, gt_match = _matches(b_gt, b_pred, kernel)
        out[i] = _f_from_counts(n_pred, n_gt, pred_match, gt_match)
    return out.reshape(lead)
