"""asv: labels of one 480x854 frame from 60x107 patch-grid probabilities (M=5), per refiner."""
import numpy as np
import torch
import torch.nn.functional as F

import dinotools
from dinotools.refiners import first_argmax


class Refine:
    """``labels`` as the tracker gets them without probabilities (``channels`` when a refiner has it)."""

    params = (["nearest", "bilinear", "guided"],)
    param_names = ["refiner"]
    timeout = 120

    def setup(self, name):
        g = torch.Generator().manual_seed(0)
        # five objects as blocks, softened at the grid as propagated probabilities are near boundaries
        cells = torch.randint(0, 5, (6, 11), generator=g).repeat_interleave(10, 0).repeat_interleave(10, 1)
        onehot = F.one_hot(cells[:60, :107], 5).float().permute(2, 0, 1)[None]
        soft = F.avg_pool2d(onehot, 3, 1, 1, count_include_pad=False)[0].permute(1, 2, 0)
        self.raw = soft / soft.sum(-1, keepdim=True)
        colours = torch.randint(0, 256, (5, 3), generator=g, dtype=torch.uint8)
        up = F.interpolate(cells[None, None, :60, :107].float(), size=(480, 854), mode="nearest")[0, 0].long()
        self.frame = np.ascontiguousarray(colours[up].numpy())
        self.refiner = dinotools.create_refiner(name)

    def time_labels(self, name):
        fast = getattr(self.refiner, "channels", None)
        if fast is not None:
            fast(self.frame, self.raw)
        else:
            first_argmax(self.refiner(self.frame, self.raw))
