"""Per-object statistics (mean, recall, decay) and the global DAVIS figures averaged over objects."""
from __future__ import annotations

import warnings
from typing import Dict, Iterable, NamedTuple

import numpy as np

N_BINS = 4  # decay compares the first and the last of four temporal bins
GLOBAL_KEYS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


class Statistics(NamedTuple):
    """Summary of one object's per-frame values."""

    mean: float
    recall: float
    decay: float


def decay_bins(n: int, *, uint8_indices: bool = False) -> np.ndarray:
    """Bin edges ``[5]`` (int64): ``round(linspace(1, n, 5)) - 1``, rounding halves up as the official tool.

    The official tool casts the edges to uint8, which wraps (mod 256) once ``n > 256``; that is a
    bug, so the default keeps the true indices. ``uint8_indices=True`` reproduces the wrap.
    """
    edges = (np.round(np.linspace(1, n, N_BINS + 1) + 1e-10) - 1).astype(np.int64)
    return edges % 256 if uint8_indices else edges


def _nanmean(values: np.ndarray) -> float:
    with warnings.catch_warnings():  # an empty or all-nan slice is nan, as in the official tool
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return float(np.nanmean(values))


def db_statistics(per_frame: np.ndarray, *, uint8_indices: bool = False) -> Statistics:
    """Mean (nanmean), recall (fraction of frames > 0.5) and decay of ``per_frame [N]`` float values.

    Decay = mean(first bin) - mean(last bin); bins include both of their edges.
    """
    per_frame = np.asarray(per_frame, dtype=np.float64)
    mean = _nanmean(per_frame)
    recall = _nanmean(per_frame > 0.5)
    if per_frame.size == 0:
        return Statistics(mean, recall, float("nan"))
    ids = decay_bins(per_frame.size, uint8_indices=uint8_indices)
    bins = [per_frame[ids[i] : ids[i + 1] + 1] for i in range(N_BINS)]
    return Statistics(mean, recall, _nanmean(bins[0]) - _nanmean(bins[N_BINS - 1]))


def global_metrics(j_stats: Iterable[Statistics], f_stats: Iterable[Statistics]) -> Dict[str, float]:
    """``{"J&F-Mean", "J-Mean", ...}``: each an unweighted mean over ALL objects of all sequences."""
    j = np.array(list(j_stats), dtype=np.float64).reshape(-1, 3)
    f = np.array(list(f_stats), dtype=np.float64).reshape(-1, 3)
    if j.shape[0] == 0:
        return {key: float("nan") for key in GLOBAL_KEYS}
    j_mean, j_recall, j_decay = j.mean(axis=0)
    f_mean, f_recall, f_decay = f.mean(axis=0)
    return {
        "J&F-Mean": float((j_mean + f_mean) / 2.0),
        "J-Mean": float(j_mean),
        "J-Recall": float(j_recall),
        "J-Decay": float(j_decay),
        "F-Mean": float(f_mean),
        "F-Recall": float(f_recall),
        "F-Decay": float(f_decay),
    }
