"""TAP-Vid point-tracking metrics (occlusion accuracy, < delta^x, Jaccard), as the TAP-Vid paper defines them.

Same definitions as the reference evaluation (deepmind/tapnet ``evaluation_datasets.compute_tapvid_metrics``):

- evaluated frames: ``query_mode="first"`` evaluates the frames strictly after each query's frame
  (earlier frames are assumed occluded and the query frame is given, so neither counts);
  ``"strided"`` evaluates every frame except the query frame. The query frame is rounded.
- occlusion accuracy: evaluated frames where the predicted occlusion equals the ground truth.
- ``< delta^x`` (x in 1, 2, 4, 8, 16 pixels): among evaluated frames where the ground truth is
  visible, the fraction with ``squared distance < x**2`` (strict), whatever the predicted occlusion.
- Jaccard at x: ``TP / (GT visible + FP)`` with TP = GT visible, predicted visible and within x;
  FP = predicted visible and (GT occluded or not within x).
- ``average_pts_within_thresh`` (delta_avg) and ``average_jaccard`` (AJ) are the plain means over the
  five thresholds.

Every count is per video; a benchmark's figure is the mean of its videos' figures. Coordinates are
compared in pixels of a 256x256 frame: ``scale_to_256`` rescales from a frame's own size (x by
256/W, y by 256/H, with (0, 0) the top-left corner of the top-left pixel, so a plain product).
Unlike the reference, queries here are ``(t, x, y)``, as everywhere in dinotools.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

THRESHOLDS = (1, 2, 4, 8, 16)
QUERY_MODES = ("first", "strided")
TAPVID_SIZE = 256


def scale_to_256(xy: np.ndarray, frame_size: Sequence[int]) -> np.ndarray:
    """``xy [..., 2]`` (x, y) pixels of an ``(H, W)`` frame -> the same points in a 256x256 frame."""
    h, w = frame_size
    return np.asarray(xy, dtype=np.float64) * np.array([TAPVID_SIZE / w, TAPVID_SIZE / h])


def evaluation_frames(query_t: np.ndarray, num_frames: int, query_mode: str = "first") -> np.ndarray:
    """``query_t [..., N]`` query frame indices -> bool ``[..., N, T]``: which frames are scored."""
    if query_mode not in QUERY_MODES:
        raise ValueError(f"query_mode must be one of {QUERY_MODES}, got {query_mode!r}")
    q = np.round(np.asarray(query_t)).astype(np.int64)[..., None]  # [..., N, 1]
    t = np.arange(num_frames)
    return t > q if query_mode == "first" else t != q


def tapvid_metrics(
    queries: np.ndarray,
    gt_tracks: np.ndarray,
    gt_occluded: np.ndarray,
    pred_tracks: np.ndarray,
    pred_occluded: np.ndarray,
    *,
    query_mode: str = "first",
    per_track: bool = False,
) -> Dict[str, np.ndarray]:
    """TAP-Vid metrics of one or a batch of videos, all coordinates already in 256x256 pixels.

    Args:
        queries: ``[B,N,3]`` or ``[N,3]``: ``(t, x, y)`` per query (only ``t`` is used).
        gt_tracks, pred_tracks: ``[B,N,T,2]`` or ``[N,T,2]``, ``(x, y)``. Predictions on frames
            that are not evaluated may be anything (NaN included).
        gt_occluded, pred_occluded: bool ``[B,N,T]`` or ``[N,T]``, True = occluded.
        query_mode: ``first`` (TAP-Vid "query first") or ``strided``.
        per_track: one value per track (``[B,N]``) instead of per video (``[B]``).

    Returns the reference's keys ``occlusion_accuracy``, ``pts_within_{x}`` and ``jaccard_{x}`` for x
    in THRESHOLDS, ``average_pts_within_thresh`` (delta_avg) and ``average_jaccard`` (AJ), each
    ``[B]`` (``[B,N]`` with ``per_track``; no batch dimension when the inputs had none). A video (or
    track) with nothing to score gets NaN.
    """
    batched = np.ndim(gt_occluded) == 3
    q, gt, occ, pred, pocc = (np.asarray(a) if batched else np.asarray(a)[None]
                              for a in (queries, gt_tracks, gt_occluded, pred_tracks, pred_occluded))
    if gt.shape != pred.shape or gt.shape[-1] != 2 or gt.ndim != 4:
        raise ValueError(f"gt_tracks {gt.shape} and pred_tracks {pred.shape} must both be [B,N,T,2]")
    if occ.shape != gt.shape[:3] or pocc.shape != occ.shape:
        raise ValueError(f"gt_occluded {occ.shape} and pred_occluded {pocc.shape} must be {gt.shape[:3]}")
    if q.shape != gt.shape[:2] + (3,):
        raise ValueError(f"queries {q.shape} must be {gt.shape[:2] + (3,)}")
    occ, pocc = occ.astype(bool), pocc.astype(bool)
    axes = (2,) if per_track else (1, 2)
    scored = evaluation_frames(q[..., 0], gt.shape[2], query_mode)  # [B,N,T]
    visible, pred_visible = ~occ, ~pocc

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sum(num, axis=axes) / np.sum(den, axis=axes)

    out = {"occlusion_accuracy": ratio((occ == pocc) & scored, scored)}
    with np.errstate(invalid="ignore"):  # NaN predictions on unscored frames compare False
        sq_dist = np.sum(np.square(pred.astype(np.float64) - gt), axis=-1)  # [B,N,T]
    gt_positives = visible & scored
    within_all, jaccard_all = [], []
    for x in THRESHOLDS:
        within = sq_dist < x * x
        correct = within & visible
        out[f"pts_within_{x}"] = ratio(correct & scored, gt_positives)
        true_pos = correct & pred_visible & scored
        false_pos = pred_visible & (~visible | ~within) & scored
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"jaccard_{x}"] = np.sum(true_pos, axis=axes) / (
                np.sum(gt_positives, axis=axes) + np.sum(false_pos, axis=axes))
        within_all.append(out[f"pts_within_{x}"])
        jaccard_all.append(out[f"jaccard_{x}"])
    out["average_pts_within_thresh"] = np.mean(within_all, axis=0)  # delta_avg
    out["average_jaccard"] = np.mean(jaccard_all, axis=0)
    return out if batched else {k: v[0] for k, v in out.items()}


def mean_over_videos(per_video: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """The benchmark figure: each metric averaged over videos (as the TAP-Vid paper reports)."""
    keys = per_video[0].keys()
    return {k: float(np.mean([float(m[k]) for m in per_video])) for k in keys}


def evaluate_video(
    queries: np.ndarray,
    gt_tracks: np.ndarray,
    gt_occluded: np.ndarray,
    pred_tracks: np.ndarray,
    pred_occluded: np.ndarray,
    frame_size: Sequence[int],
    *,
    query_mode: str = "first",
) -> Dict[str, float]:
    """One video in its own pixels (``[N,3]``, ``[N,T,2]``, ``[N,T]``, frame ``(H, W)``): scales to 256x256
    and returns each metric as a float."""
    m = tapvid_metrics(
        queries, scale_to_256(gt_tracks, frame_size), gt_occluded,
        scale_to_256(pred_tracks, frame_size), pred_occluded, query_mode=query_mode,
    )
    return {k: float(v) for k, v in m.items()}
