"""Drop-in replacements for the DINOv3 notebook's ``make_neighborhood_mask`` and ``propagate``.

Same signatures, shapes and results (including the ">= k-th value keeps ties" rule), so a
notebook user can swap the import. ``propagate`` is the dense formulation: it builds an
``[h*w, t*h*w]`` similarity matrix and is kept as the oracle (``propagator="reference"``).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

SHAPES = {"circle": 2.0, "square": float("inf")}  # shape -> p of the p-norm distance


def check_shape(shape: str) -> float:
    if shape not in SHAPES:
        raise ValueError(f"neighbourhood shape must be one of {sorted(SHAPES)}, got {shape!r}")
    return SHAPES[shape]


@functools.lru_cache(maxsize=8)
def make_neighborhood_mask(h: int, w: int, size: float, shape: str, device="cpu") -> torch.Tensor:
    """``[h,w,h,w]`` bool: True where cell (u,v) lies within ``size`` of cell (i,j).

    ``size`` is a radius: circle uses the Euclidean distance, square the Chebyshev one.
    """
    p = check_shape(shape)
    ij = torch.stack(
        torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"),
        dim=-1,
    )  # [h,w,2]
    dist = torch.linalg.vector_norm(ij[:, :, None, None, :] - ij[None, None, :, :, :], ord=p, dim=-1)
    return (dist <= size).to(device)  # [h,w,h,w]


def propagate(
    current_features: torch.Tensor,
    context_features: torch.Tensor,
    context_probs: torch.Tensor,
    neighborhood_mask: torch.Tensor,
    topk: int,
    temperature: float,
) -> torch.Tensor:
    """Dense label propagation.

    Args:
        current_features: ``[h,w,D]``, L2-normalised.
        context_features: ``[t,h,w,D]``, L2-normalised.
        context_probs: ``[t,h,w,M]``.
        neighborhood_mask: ``[h,w,h,w]`` bool from ``make_neighborhood_mask``.
    Returns:
        ``[h,w,M]`` float32 probabilities (not clamped).
    """
    t, h, w, m = context_probs.shape
    dot = torch.einsum("ijd,tuvd->ijtuv", current_features, context_features)  # [h,w,t,h,w]
    dot = torch.where(neighborhood_mask[:, :, None, :, :], dot, -torch.inf)
    dot = dot.flatten(2, -1).flatten(0, 1)  # [hw, thw], columns ordered (t, u, v)
    # The notebook's topk raises when k exceeds the t*h*w columns; keeping all of them is the
    # only meaningful reading, and it changes nothing where the notebook works.
    k_th_largest = torch.topk(dot, dim=1, k=min(topk, dot.shape[1])).values[:, -1:]  # [hw, 1]
    # ">=" keeps every candidate tied with the k-th value, as the notebook does.
    dot = torch.where(dot >= k_th_largest, dot, -torch.inf)
    weights = F.softmax(dot / temperature, dim=1)  # [hw, thw]
    current_probs = torch.mm(weights, context_probs.flatten(0, 2))  # [hw, M]
    current_probs = current_probs / current_probs.sum(dim=1, keepdim=True)
    return current_probs.unflatten(0, (h, w))
