"""Memory-efficient pure-PyTorch propagation: same results as the dense notebook ``propagate``.

The frame is cut into ``block x block`` tiles of queries. A tile's candidates all lie in one
``(block + 2*ry) x (block + 2*rx)`` patch of each context frame, so one matmul scores the tile
against that patch; each query then gathers its own window from it. Peak memory is
O(block^2 * t * patch) per tile, never O(h*w*t*h*w).
"""
from __future__ import annotations

import functools
import math
from typing import Tuple

import torch

from dinotools.ops.dense import check_shape

DEFAULT_BLOCK = 8  # queries per tile side: small keeps patch overhead low, large feeds the matmul


@functools.lru_cache(maxsize=32)
def window_offsets(h: int, w: int, size: float, shape: str) -> Tuple[torch.Tensor, int, int]:
    """Offsets ``[K,2]`` (dy, dx) of the neighbourhood, clipped to what an h x w frame can hold.

    Returns the offsets (row-major order) and the largest |dy|, |dx| used.
    """
    p = check_shape(shape)
    r = math.floor(size) if math.isfinite(size) else max(h, w)
    ry, rx = min(r, h - 1), min(r, w - 1)
    dy, dx = torch.meshgrid(torch.arange(-ry, ry + 1), torch.arange(-rx, rx + 1), indexing="ij")
    off = torch.stack([dy.flatten(), dx.flatten()], dim=1)  # [(2ry+1)(2rx+1), 2]
    keep = torch.linalg.vector_norm(off.float(), ord=p, dim=1) <= size
    off = off[keep]
    return off, int(off[:, 0].abs().max()), int(off[:, 1].abs().max())


def window_propagate(
    current: torch.Tensor,
    context: torch.Tensor,
    context_probs: torch.Tensor,
    *,
    size: float,
    shape: str,
    topk: int,
    temperature: float,
    block: int = DEFAULT_BLOCK,
) -> torch.Tensor:
    """``current [h,w,D]``, ``context [t,h,w,D]``, ``context_probs [t,h,w,M]`` -> ``[h,w,M]``.

    Equals ``tracking.propagate`` with ``make_neighborhood_mask(h, w, size, shape)`` up to
    float summation order (< 1e-6).
    """
    t, h, w, m = context_probs.shape
    d = current.shape[-1]
    dev = current.device
    offsets, ry, rx = window_offsets(h, w, float(size), shape)
    off_y, off_x = offsets[:, 0].to(dev), offsets[:, 1].to(dev)  # [K]
    k_cand = offsets.shape[0]
    kk = min(topk, t * k_cand)
    # bf16/fp16 features (CUDA --dtype) are scored in fp32, one tile at a time, so the context stays
    # half-size; .to() is free for fp32 and fp64.
    cdt = torch.promote_types(current.dtype, torch.float32)
    out = current.new_empty(h, w, m, dtype=cdt)
    # One buffer for every tile's similarities, then its dense weights: fresh multi-MB
    # allocations per tile cost more in page faults than the arithmetic.
    buf = current.new_empty(t * (block + 2 * ry) * (block + 2 * rx) * block * block, dtype=cdt)
    for y0 in range(0, h, block):
        y1 = min(y0 + block, h)
        py0, py1 = max(0, y0 - ry), min(h, y1 + ry)  # the tile's candidate patch, clipped to the frame
        for x0 in range(0, w, block):
            x1 = min(x0 + block, w)
            px0, px1 = max(0, x0 - rx), min(w, x1 + rx)
            ph, pw, qn = py1 - py0, px1 - px0, (y1 - y0) * (x1 - x0)
            qy, qx = torch.meshgrid(torch.arange(y0, y1, device=dev), torch.arange(x0, x1, device=dev), indexing="ij")
            cy = qy.reshape(1, qn) + off_y[:, None]  # [K, Q] absolute candidate rows
            cx = qx.reshape(1, qn) + off_x[:, None]
            ok = (cy >= 0) & (cy < h) & (cx >= 0) & (cx < w)  # [K, Q] candidates inside the frame
            index = ((cy - py0).clamp(0, ph - 1) * pw + (cx - px0).clamp(0, pw - 1))[None].expand(t, -1, -1)
            q_t = current[y0:y1, x0:x1].reshape(qn, d).T.to(cdt)  # [D, Q]
            sim = buf[: t * ph * pw * qn].view(t, ph, pw, qn)
            for tau in range(t):
                # [ph,pw,D] @ [D,Q] on a strided view: cheaper than copying the t-frame patch at once.
                torch.matmul(context[tau, py0:py1, px0:px1].to(cdt), q_t, out=sim[tau])
            flat = sim.view(t, ph * pw, qn)  # [t, P, Q]
            cand = flat.gather(1, index).masked_fill_(~ok, -torch.inf).view(t * k_cand, qn)  # [tK, Q]
            kth = torch.topk(cand, kk, dim=0).values[-1:]  # [1, Q]
            cand.masked_fill_(cand < kth, -torch.inf)  # ties with the k-th value survive
            wts = torch.softmax(cand / temperature, dim=0).view(t, k_cand, qn)
            # Out-of-frame candidates were clamped onto real cells with weight 0: scatter_add keeps them harmless.
            dense = flat.zero_().scatter_add_(1, index, wts)  # [t, P, Q]
            p = context_probs[:, py0:py1, px0:px1].reshape(t * ph * pw, m)  # [tP, M]
            res = p.T @ dense.view(t * ph * pw, qn)  # [M, Q]
            out[y0:y1, x0:x1] = res.T.reshape(y1 - y0, x1 - x0, m)
    return out / out.sum(dim=-1, keepdim=True)
