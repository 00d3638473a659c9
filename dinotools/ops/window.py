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
import torch.nn.functional as F

from ..tracking import check_shape

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


@functools.lru_cache(maxsize=32)
def _tile_index(block: int, ry: int, rx: int, offsets_key: Tuple[Tuple[int, int], ...]) -> torch.Tensor:
    """``[block*block, K]`` flat index of each query's candidates inside its tile's padded patch."""
    pw = block + 2 * rx
    qy, qx = torch.meshgrid(torch.arange(block), torch.arange(block), indexing="ij")  # [B,B]
    off = torch.tensor(offsets_key)  # [K,2]
    cy = qy.flatten()[:, None] + ry + off[None, :, 0]  # [B*B, K]
    cx = qx.flatten()[:, None] + rx + off[None, :, 1]
    return cy * pw + cx


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
    offsets, ry, rx = window_offsets(h, w, float(size), shape)
    index = _tile_index(block, ry, rx, tuple(map(tuple, offsets.tolist()))).to(current.device)  # [B*B, K]
    k_cand = index.shape[1]
    nby, nbx = -(-h // block), -(-w // block)
    ph, pw = block + 2 * ry, block + 2 * rx

    # Zero-pad features/probs to whole tiles plus the window margin; padding is marked invalid.
    pad = (0, 0, rx, nbx * block - w + rx, ry, nby * block - h + ry)
    ctx = F.pad(context, pad)  # [t, Hp, Wp, D]
    probs = F.pad(context_probs, pad)  # [t, Hp, Wp, M]
    valid = F.pad(torch.ones(h, w, dtype=torch.bool, device=current.device), pad[2:])  # [Hp, Wp]
    cur = F.pad(current, (0, 0, 0, nbx * block - w, 0, nby * block - h))  # [nby*B, nbx*B, D]
    kk = min(topk, t * k_cand)

    out = current.new_empty(nby * block, nbx * block, m)
    for by in range(nby):
        y0 = by * block
        for bx in range(nbx):
            x0 = bx * block
            q = cur[y0 : y0 + block, x0 : x0 + block].reshape(block * block, d)  # [Q, D]
            c = ctx[:, y0 : y0 + ph, x0 : x0 + pw].reshape(t * ph * pw, d)  # [t*P, D]
            sim = (q @ c.T).view(block * block, t, ph * pw)  # [Q, t, P]
            ok = valid[y0 : y0 + ph, x0 : x0 + pw].reshape(ph * pw)[index]  # [Q, K]
            cand = sim.gather(2, index[:, None, :].expand(-1, t, -1))  # [Q, t, K]
            cand = cand.masked_fill(~ok[:, None, :], -torch.inf).view(block * block, t * k_cand)
            kth = torch.topk(cand, kk, dim=1).values[:, -1:]  # [Q, 1]
            cand = cand.masked_fill(cand < kth, -torch.inf)  # ties with the k-th value survive
            wts = torch.softmax(cand / temperature, dim=1).view(block * block, t, k_cand)
            dense = sim.new_zeros(block * block, t, ph * pw).scatter_(2, index[:, None, :].expand(-1, t, -1), wts)
            p = probs[:, y0 : y0 + ph, x0 : x0 + pw].reshape(t * ph * pw, m)  # [t*P, M]
            res = dense.view(block * block, t * ph * pw) @ p  # [Q, M]
            out[y0 : y0 + block, x0 : x0 + block] = res.view(block, block, m)
    out = out[:h, :w]
    return out / out.sum(dim=-1, keepdim=True)
