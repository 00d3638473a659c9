"""Frame preprocessing in pure torch (runs on the GPU, no torchvision): resize, normalise.

Matches the notebook's ``ResizeToMultiple`` + ``ToTensor`` + ``Normalize``: PIL-style bicubic
(torch's antialiased bicubic uses PIL's a=-0.5 kernel), rounded back to uint8 levels as PIL does.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def target_size(height: int, width: int, short_side: Optional[int], multiple: int) -> Tuple[int, int]:
    """The notebook's size rule: short side -> round_up(short_side), long side scaled then rounded up.

    ``short_side=None`` keeps the frame size, rounded up to the multiple.
    """

    def round_up(s: float) -> int:
        return int(math.ceil(s / multiple) * multiple)

    if short_side is None:
        return round_up(height), round_up(width)
    if width > height:
        new_h = round_up(short_side)
        return new_h, round_up(width * new_h / height)
    new_w = round_up(short_side)
    return round_up(height * new_w / width), new_w


def to_tensor(frames, device=None) -> torch.Tensor:
    """``[B,H,W,3]`` or ``[H,W,3]`` uint8 (numpy or torch) -> ``[B,3,H,W]`` uint8 tensor."""
    if isinstance(frames, np.ndarray):
        frames = frames if frames.flags.writeable and frames.flags.c_contiguous else np.array(frames)
    x = torch.as_tensor(frames)
    if x.ndim == 3:
        x = x[None]
    return x.to(device).permute(0, 3, 1, 2)


def resize(images: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """``[B,3,H,W]`` uint8 -> ``[B,3,h,w]`` float in [0,1], bicubic, quantised like PIL."""
    x = images.float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
        x = x.round_().clamp_(0, 255)  # PIL resizes uint8 images and rounds to uint8
    return x / 255.0


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``[B,3,H,W]`` in [0,1] -> normalised with per-channel mean/std."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def preprocess(
    frames,
    *,
    short_side: Optional[int],
    multiple: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    device=None,
) -> torch.Tensor:
    """``[B,H,W,3]`` uint8 RGB frames -> ``[B,3,H',W']`` float32 normalised, H', W' multiples."""
    x = to_tensor(frames, device)
    size = target_size(x.shape[2], x.shape[3], short_side, multiple)
    return normalize(resize(x, size), mean, std)
