"""Weight-free baseline backbone: per-patch colour statistics.

For trying the pipeline without weights (tests, the demo, CI). It is NOT a DINOv3 substitute:
its features describe a patch's colour and texture only, so tracking quality is far below
DINOv3's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dinotools.errors import ConfigError
from dinotools.ops.devices import resolve_device
from dinotools.ops.preprocess import IMAGENET_MEAN, IMAGENET_STD
from dinotools.interfaces.params import Range, declare_params


@declare_params(
    "backbone baseline",
    patch_size=Range(2, 64, integer=True, doc="patch side in pixels; a 1-pixel patch has no standard deviation, "
                     "and beyond 64 a patch covers 16 DINOv3 patches: too coarse to follow an object"),
    grid=Range(1, 16, integer=True, doc="sub-cells per patch side (coarse layout); must divide patch_size"),
)
class ColorStatsBackbone:
    """``[B,3,H,W]`` normalised -> ``[B,H/p,W/p,D]`` with D = 3 (means) + 3 (stds) + 3*g*g (sub-cells).

    Each patch is described by its per-channel mean and standard deviation and by the channel
    means of a ``grid x grid`` split of the patch (coarse layout), each group rescaled so that
    no group dominates the cosine similarity.
    """

    def __init__(self, patch_size: int = 16, grid: int = 2, device="cpu", dtype=None) -> None:
        if patch_size % grid:
            raise ConfigError(f"backbone baseline's grid ({grid}) must divide its patch_size ({patch_size})")
        self.patch_size = patch_size
        self.grid = grid
        self.embed_dim = 6 + 3 * grid * grid
        self.mean = IMAGENET_MEAN
        self.std = IMAGENET_STD
        self.device = resolve_device(device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        p, g = self.patch_size, self.grid
        b, c, hh, ww = images.shape
        if hh % p or ww % p:
            raise ValueError(f"image size {hh}x{ww} is not a multiple of the patch size {p}")
        x = images.float()
        mean = F.avg_pool2d(x, p)  # [B,3,h,w]
        std = (F.avg_pool2d(x * x, p) - mean * mean).clamp_min(0).sqrt()  # [B,3,h,w]
        sub = F.avg_pool2d(x, p // g)  # [B,3,g*h,g*w]
        h, w = hh // p, ww // p
        sub = sub.view(b, c, h, g, w, g).permute(0, 1, 3, 5, 2, 4).reshape(b, c * g * g, h, w)
        # Centre the sub-cells on the patch mean: the layout term then encodes texture direction.
        sub = sub - mean.repeat_interleave(g * g, dim=1)
        feats = torch.cat([mean, 2.0 * std, 2.0 * sub], dim=1)  # [B,D,h,w]
        return feats.permute(0, 2, 3, 1)  # [B,h,w,D]
