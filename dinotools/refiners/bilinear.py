"""``bilinear``: bilinear upsampling of the patch-grid probabilities (the paper's J&F protocol), min-max stretched."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dinotools.refiners.base import Frame, check_raw, frame_size, stretch


class BilinearRefiner:
    """``scores [M,H,W] = stretch(interpolate(raw, (H, W), mode="bilinear", align_corners=False))``.

    What ``upsample="bilinear"`` always did. Smoother than ``nearest`` but blind to the image:
    boundaries still fall where the patch grid puts them, only less blocky.
    """

    name = "bilinear"
    needs_frame = False  # reads the frame's size only

    def __call__(self, frame: Frame, raw: torch.Tensor) -> torch.Tensor:
        """``frame [H,W,3]`` uint8 (or its (H, W)), ``raw [h,w,M]`` -> ``scores [M,H,W]`` float in [0, 1]."""
        raw = check_raw(raw)
        up = F.interpolate(raw.permute(2, 0, 1)[None], size=frame_size(frame), mode="bilinear")[0]  # [M,H,W]
        return stretch(up, inplace=True)
