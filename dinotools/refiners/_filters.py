"""Small image filters for the refiners: box means, area downsampling, 3x3 solves, bilinear source indices."""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of ``x [C,h,w]`` over the ``(2r+1)^2`` window around each pixel, clipped at the borders
    (each pixel divided by the number of pixels its window holds, as He et al.'s ``boxfilter / N``).

    On the CPU, OpenCV's box filter per plane (zero border, un-normalised, then divided by the
    counts): 3x faster than torch there. Elsewhere separable sums of shifted slices of the
    zero-padded input: for the small radii a refiner uses this is cheaper than running sums
    (cumsum is a serial scan per row) and as exact.
    """
    c, h, w = x.shape
    k = 2 * radius + 1
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        planes = x.contiguous().numpy()
        sums = np.stack([cv2.boxFilter(plane, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
                         for plane in planes])
        return torch.from_numpy(sums).mul_(_inverse_counts(h, w, radius, x.device, x.dtype))
    return box_mean_torch(x, radius)


def box_mean_torch(x: torch.Tensor, radius: int) -> torch.Tensor:
    """``box_mean`` in torch ops (any device)."""
    c, h, w = x.shape
    k = 2 * radius + 1
    xp = F.pad(x, (radius, radius, radius, radius))  # [C,h+2r,w+2r]
    rows = xp[:, :, 0:w] + xp[:, :, 1:1 + w]
    for d in range(2, k):
        rows += xp[:, :, d:d + w]
    out = rows[:, 0:h] + rows[:, 1:1 + h]
    for d in range(2, k):
        out += rows[:, d:d + h]
    return out.mul_(_inverse_counts(h, w, radius, x.device, x.dtype))


def _inverse_counts(h: int, w: int, radius: int, device, dtype) -> torch.Tensor:
    """``[h,w]``: 1 / the number of in-frame pixels in each pixel's window."""
    def count(n):
        i = torch.arange(n, device=device)
        return ((i + radius).clamp(max=n - 1) - (i - radius).clamp(min=0) + 1).to(dtype)

    return 1.0 / (count(h)[:, None] * count(w)[None, :])


def downsample(frame, image: torch.Tensor, size) -> torch.Tensor:
    """The frame averaged over areas: ``[3,h,w]`` float in [0, 1] on ``image``'s device.

    ``frame [H,W,3]`` uint8 (numpy on the CPU: OpenCV's ``INTER_AREA``, 3x faster than torch there,
    weights pixels by their overlap) or ``image [3,H,W]`` (elsewhere: torch's ``area``, bins of
    whole pixels). The two differ slightly where the ratio is not an integer.
    """
    if isinstance(frame, np.ndarray) and image.device.type == "cpu":
        small = cv2.resize(frame.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(small).permute(2, 0, 1).mul_(1 / 255.0)
    return F.interpolate(image[None], size=size, mode="area")[0]


def solve3(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``s [6,h,w]`` (symmetric 3x3: xx, xy, xz, yy, yz, zz), ``v [M,3,h,w]`` -> ``s^-1 v`` ``[M,3,h,w]``.

    Cofactors, vectorised over pixels: a batched ``torch.linalg.solve`` on thousands of 3x3
    systems costs more in dispatch than the arithmetic.
    """
    a, b, c, d, e, f = s
    i00, i01, i02 = d * f - e * e, c * e - b * f, b * e - c * d
    i11, i12, i22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * i00 + b * i01 + c * i02
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    return torch.stack([i00 * x + i01 * y + i02 * z, i01 * x + i11 * y + i12 * z,
                        i02 * x + i12 * y + i22 * z], dim=1) / det


def bilinear_source(n_in: int, n_out: int, device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(i0, i1 [n_out] long, lam [n_out] float)``: the two inputs and the weight of the second that
    ``interpolate(mode="bilinear", align_corners=False)`` uses for each output index (half-pixel
    centres, clamped at the borders): ``out = (1 - lam) * x[i0] + lam * x[i1]``."""
    src = ((torch.arange(n_out, device=device, dtype=torch.float32) + 0.5) * (n_in / n_out) - 0.5).clamp_(min=0)
    i0 = src.long().clamp_(max=n_in - 1)
    lam = (src - i0).clamp_(0, 1)
    return i0, (i0 + 1).clamp_(max=n_in - 1), lam
