"""asv: DINOv3 backbone forward (ViT-S/16, random weights, small frames so --quick stays fast)."""
import logging

import torch

from dinotools.backbones.dinov3.hub import create

logging.getLogger("dinotools").setLevel(logging.ERROR)  # random weights are intended here: no warning


class BackboneForward:
    """One forward of ``batch`` 112x112 frames (7x7 patches) through vits16."""

    params = (["fp32", "bf16"], [1, 4])
    param_names = ["dtype", "batch"]
    timeout = 120

    def setup(self, dtype, batch):
        torch.manual_seed(0)
        self.backbone = create("vits16", weights="random", dtype=dtype, device="cpu")
        self.x = torch.randn(batch, 3, 112, 112)
        self.backbone(self.x)  # warm-up: first-call allocations and kernel selection

    def time_forward(self, dtype, batch):
        self.backbone(self.x)

    def peakmem_forward(self, dtype, batch):
        self.backbone(self.x)


class BackboneLoad:
    """Building vitl16 on the meta device (what loading a checkpoint starts with)."""

    def time_build_meta_vitl16(self):
        from dinotools.backbones.dinov3.model import DinoVisionTransformer
        from dinotools.backbones.dinov3.variants import VARIANTS

        DinoVisionTransformer(**VARIANTS["vitl16"].config(), device="meta")
