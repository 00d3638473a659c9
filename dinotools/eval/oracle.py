"""The refiner ceiling: ground truth downsampled to the patch grid, refined back, scored with J and F.

A perfect propagation would hand the refiner the ground truth itself at the patch grid (one-hot,
downsampled with ``nearest-exact`` as the tracker downsamples its first mask). What the refiner
makes of that bounds any tracker's J and F, however good its features; comparing refiners on
it isolates the upsampling from the propagation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from dinotools.errors import InputError
from dinotools.eval.metrics import boundary_f, region_similarity
from dinotools.io.datasets import DavisDataset
from dinotools.io.frames import open_frames
from dinotools.io.masks import read_mask
from dinotools.ops.preprocess import target_size
from dinotools.refiners.base import first_argmax


@dataclass
class Sample:
    """One scored frame: ``frame [H,W,3]`` uint8 RGB, ``gt [H,W]`` ids (void already 0), the ids scored."""

    sequence: str
    name: str
    frame: np.ndarray
    gt: np.ndarray
    objects: Tuple[int, ...]


def davis_samples(dataset: DavisDataset, every: int = 5) -> Iterator[Sample]:
    """Every ``every``-th annotated frame (0, every, ...) of each sequence; objects 1..K of its first annotation."""
    for seq in dataset.sequences:
        gt = dataset.load(seq)
        frames = open_frames(dataset.frame_dir(seq))
        index = {n: i for i, n in enumerate(frames.names)}
        for t in range(0, len(gt.frames), every):
            if gt.frames[t] not in index:
                raise InputError(f"sequence {seq}: annotation {gt.frames[t]}.png has no frame in {frames.path}")
            objects = tuple(range(1, gt.num_objects + 1))
            yield Sample(seq, gt.frames[t], frames.read(index[gt.frames[t]]), gt.ids[t], objects)


def folder_samples(frames_dir, masks_dir, name: Optional[str] = None) -> Iterator[Sample]:
    """Each mask file of ``masks_dir`` with the frame of the same name; the ids present in that mask.

    A mask whose size differs from its frame's (judo's ``00005.png``) is skipped: it is no ground truth.
    """
    frames = open_frames(frames_dir)
    index = {n: i for i, n in enumerate(frames.names)}
    masks = sorted(p for p in Path(masks_dir).iterdir() if p.suffix.lower() in (".png", ".npy"))
    if not masks:
        raise InputError(f"no mask files (.png, .npy) in {masks_dir}")
    for path in masks:
        if path.stem not in index:
            raise InputError(f"mask {path} has no frame of the same name in {frames_dir}")
        frame, gt = frames.read(index[path.stem]), read_mask(path)
        if gt.shape != frame.shape[:2]:
            continue
        objects = tuple(int(i) for i in np.unique(gt) if i != 0)
        yield Sample(name or Path(frames_dir).parent.name, path.stem, frame, gt, objects)


def grid_probs(gt: np.ndarray, objects: Tuple[int, ...], grid: Tuple[int, int], device="cpu") -> torch.Tensor:
    """``gt [H,W]`` ids -> ``[h,w,K+1]`` one-hot at the patch grid (``nearest-exact``, as the tracker
    downsamples its masks); channel c is ``objects[c-1]``, other ids are background."""
    lut = np.zeros(max(int(gt.max(initial=0)), *objects) + 1, dtype=np.int64)
    lut[list(objects)] = np.arange(1, len(objects) + 1)
    channels = torch.from_numpy(lut[gt]).float()[None, None]
    cells = F.interpolate(channels, size=grid, mode="nearest-exact")[0, 0].long()
    return F.one_hot(cells, len(objects) + 1).float().to(device)


@dataclass
class OracleResult:
    """J and F per object (means over its frames), the global means, and refiner time per frame:
    ``seconds`` for the labels as the tracker gets them without probabilities, ``scores_seconds``
    for the full-resolution scores and their argmax (the same when the refiner has no label path)."""

    name: str
    J: Dict[str, float] = field(default_factory=dict)
    F: Dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    scores_seconds: float = 0.0
    frames: int = 0

    @property
    def j_mean(self) -> float:
        return float(np.mean(list(self.J.values())))

    @property
    def f_mean(self) -> float:
        return float(np.mean(list(self.F.values())))

    @property
    def jf(self) -> float:
        return (self.j_mean + self.f_mean) / 2

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self.seconds / max(self.frames, 1)

    @property
    def scores_ms_per_frame(self) -> float:
        return 1000 * self.scores_seconds / max(self.frames, 1)


def labels(refiner, frame, raw: torch.Tensor) -> torch.Tensor:
    """``[H,W]`` channel indices as the tracker decodes without probabilities (``channels`` when offered)."""
    fast = getattr(refiner, "channels", None)
    return fast(frame, raw) if fast is not None else first_argmax(refiner(frame, raw))


def evaluate_oracle(refiner, samples: Iterable[Sample], *, name: str = "refiner", short_side: Optional[int] = 960,
                    patch_size: int = 16, device="cpu") -> OracleResult:
    """Refine the grid-downsampled ground truth of each sample with ``refiner``; J and F per object.

    The grid is the tracker's: ``target_size(H, W, short_side, patch_size) / patch_size``. Time
    covers the refiner and the argmax (frame upload included, scoring excluded), synchronised on
    CUDA, wall clock; the labels are scored (the scores path is only timed).
    """
    result = OracleResult(name)
    per_object: Dict[str, List[Tuple[float, float]]] = {}
    for s in samples:
        H, W = s.gt.shape
        grid = tuple(n // patch_size for n in target_size(H, W, short_side, patch_size))
        raw = grid_probs(s.gt, s.objects, grid, device)
        seconds, channel = _timed(lambda: labels(refiner, s.frame, raw), device)
        result.seconds += seconds
        if getattr(refiner, "channels", None) is not None:
            result.scores_seconds += _timed(lambda: first_argmax(refiner(s.frame, raw)), device)[0]
        else:
            result.scores_seconds += seconds
        result.frames += 1
        channel = channel.cpu().numpy()
        for c, k in enumerate(s.objects, start=1):
            g, p = s.gt == k, channel == c
            j = float(region_similarity(g, p))
            f = float(boundary_f(g[None], p[None])[0])
            per_object.setdefault(f"{s.sequence}_{k}", []).append((j, f))
    if not per_object:
        raise InputError("no frame with objects to score")
    for key, values in per_object.items():
        result.J[key] = float(np.mean([v[0] for v in values]))
        result.F[key] = float(np.mean([v[1] for v in values]))
    return result


def _timed(fn, device) -> Tuple[float, object]:
    """``(seconds, fn())``, synchronised before and after on CUDA."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def format_oracle(results: List[OracleResult], title: str = "") -> str:
    """One row per refiner: J, F, J&F (means over objects), ms per frame for labels and for scores."""
    width = max([len(r.name) for r in results] + [7]) + 2
    lines = [title] if title else []
    lines.append(f"{'refiner':<{width}}{'J':>8}{'F':>8}{'J&F':>8}{'ms/frame':>10}{'ms scores':>11}{'frames':>8}")
    for r in results:
        lines.append(f"{r.name:<{width}}{r.j_mean:>8.4f}{r.f_mean:>8.4f}{r.jf:>8.4f}{r.ms_per_frame:>10.2f}"
                     f"{r.scores_ms_per_frame:>11.2f}{r.frames:>8}")
    return "\n".join(lines)
