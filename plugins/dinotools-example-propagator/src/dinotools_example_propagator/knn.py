"""Top-1 nearest-neighbour propagation: each patch copies the labels of its most similar context patch."""
from __future__ import annotations

import functools
import math
from typing import List, Tuple

import torch

# neighbourhood shape -> p of the p-norm distance, as documented by dinotools' Propagator contract
SHAPES = {"circle": 2.0, "square": math.inf}


@functools.lru_cache(maxsize=16)
def window_offsets(h: int, w: int, size: float, shape: str) -> List[Tuple[int, int]]:
    """Offsets (dy, dx), row-major, within ``size`` of a cell (p-norm of ``shape``) and inside an h x w frame."""
    if shape not in SHAPES:
        raise ValueError(f"neighbourhood shape must be one of {sorted(SHAPES)}, got {shape!r}")
    p = SHAPES[shape]
    r = math.floor(size) if math.isfinite(size) else max(h, w)
    ry, rx = min(r, h - 1), min(r, w - 1)

    def dist(dy: int, dx: int) -> float:
        return max(abs(dy), abs(dx)) if p == math.inf else math.hypot(dy, dx)

    return [(dy, dx) for dy in range(-ry, ry + 1) for dx in range(-rx, rx + 1) if dist(dy, dx) <= size]


def _span(n: int, d: int) -> Tuple[slice, slice]:
    """Query and candidate slices along one axis of length n for a shift d (candidate = query + d)."""
    return slice(max(0, -d), n - max(0, d)), slice(max(0, d), n - max(0, -d))


class NearestNeighbourPropagator:
    """dinotools ``Propagator`` (entry point ``example-knn``): plain top-1 nearest neighbour.

    ``current [h,w,D]``, ``context [t,h,w,D]`` (L2-normalised), ``context_probs [t,h,w,M]`` ->
    ``[h,w,M]``: each query patch takes the probabilities of the single candidate with the highest
    dot product among the cells of its neighbourhood (radius ``size``, ``shape`` circle or square)
    in all t context frames. Ties go to the earlier offset (row-major), then to the earlier frame.
    ``topk`` and ``temperature`` are accepted for the contract and ignored: this is top-1, hard.
    """

    name = "example-knn"

    def __call__(
        self,
        current: torch.Tensor,
        context: torch.Tensor,
        context_probs: torch.Tensor,
        *,
        size: float,
        shape: str,
        topk: int,
        temperature: float,
    ) -> torch.Tensor:
        t, h, w, m = context_probs.shape
        if current.shape[:2] != (h, w) or context.shape[:3] != (t, h, w) or context.shape[3] != current.shape[2]:
            raise ValueError(
                f"shapes do not match: current {tuple(current.shape)}, context {tuple(context.shape)}, "
                f"context_probs {tuple(context_probs.shape)}"
            )
        best = torch.full((h, w), -math.inf, dtype=current.dtype, device=current.device)  # [h,w]
        out = torch.zeros((h, w, m), dtype=torch.float32, device=current.device)  # [h,w,M]
        for dy, dx in window_offsets(h, w, float(size), shape):
            (qy, cy), (qx, cx) = _span(h, dy), _span(w, dx)
            sim = torch.einsum("thwd,hwd->thw", context[:, cy, cx], current[qy, qx])  # [t,hq,wq]
            # argmax + gather, not max(dim): on this strided tensor max(dim) is ~1000x slower on CPU
            frame = sim.argmax(dim=0)  # [hq,wq]: best frame for this offset, first on ties
            score = sim.gather(0, frame[None])[0]  # [hq,wq]
            better = score > best[qy, qx]  # strict: an earlier offset keeps a tie
            best[qy, qx] = torch.where(better, score, best[qy, qx])
            probs = context_probs[:, cy, cx]  # [t,hq,wq,M]
            index = frame[None, :, :, None].expand(1, -1, -1, m)  # [1,hq,wq,M]
            picked = probs.gather(0, index)[0].float()  # [hq,wq,M]
            out[qy, qx] = torch.where(better[..., None], picked, out[qy, qx])
        return out
