"""``nearest``: the notebook's decode (nearest upsampling, per-channel min-max), with a patch-grid label path."""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import torch
import torch.nn.functional as F

from dinotools.refiners.base import Frame, check_raw, first_argmax, frame_size, stretch


@lru_cache(maxsize=64)
def nearest_index(n_in: int, n_out: int, device: str = "cpu") -> torch.Tensor:
    """``[n_out]`` long: the input index torch's ``interpolate(mode="nearest")`` reads for each output index.

    Computed by torch itself (an arange upsampled with the same kernel, on the same device), so it
    is torch's legacy arithmetic bit for bit: ``min(floor(float(i) * float(n_in / n_out)), n_in - 1)``
    in float32, with ``i >> 1`` for exact doubling. When ``n_out < n_in`` some inputs are never read.
    The two axes of a 2-D nearest upsampling are independent, so one call per axis describes it.
    """
    src = torch.arange(n_in, dtype=torch.float32, device=device).view(1, 1, n_in, 1)  # exact below 2**24
    return F.interpolate(src, size=(n_out, 1), mode="nearest").view(n_out).long()


def _read(index: torch.Tensor, n_in: int) -> torch.Tensor:
    """``[n_in]`` bool: which inputs ``index`` reads."""
    used = torch.zeros(n_in, dtype=torch.bool, device=index.device)
    used[index] = True
    return used


def _small(channels: torch.Tensor, m: int) -> torch.Tensor:
    """The narrowest integer dtype holding channel indices ``< m`` (less to copy and to expand)."""
    return channels.to(torch.uint8 if m <= 256 else torch.int16 if m <= 32768 else torch.int32)


class NearestRefiner:
    """Nearest upsampling of ``raw [h,w,M]`` to the frame size, each channel min-max stretched to [0, 1].

    Exactly the notebook's decode (and dinotools' default): ``scores [M,H,W]`` equal
    ``stretch(interpolate(raw, (H, W), mode="nearest"))``. ``channels`` gives the labels (the
    first maximum per pixel) without building ``scores``: see its docstring.
    """

    name = "nearest"
    needs_frame = False  # reads the frame's size only

    def __call__(self, frame: Frame, raw: torch.Tensor) -> torch.Tensor:
        """``frame [H,W,3]`` uint8 (or its (H, W)), ``raw [h,w,M]`` -> ``scores [M,H,W]`` float in [0, 1]."""
        raw = check_raw(raw)
        up = F.interpolate(raw.permute(2, 0, 1)[None], size=frame_size(frame), mode="nearest")[0]  # [M,H,W]
        return stretch(up, inplace=True)

    def grid(self, frame: Frame, raw: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(channels [h,w] on raw's device, rows [H], cols [W] on the CPU)``: the labels at the patch grid
        and the index maps that expand them, ``labels = channels[rows][:, cols]``.

        The upsampled image is ``raw[rows][:, cols]``: each output pixel is a copy of one cell, so
        its stretched value and its argmax are the cell's. The min and max of the stretch are taken
        over the cells the upsampling reads (when the frame is smaller than the grid, some are never
        read and must not count), and the stretch applies the same float operations to the same
        values, so the labels are those of the full-resolution decode, exactly.
        """
        raw = check_raw(raw)
        (h, w, m), (H, W) = raw.shape, frame_size(frame)
        dev = str(raw.device)
        rows, cols = nearest_index(h, H, dev), nearest_index(w, W, dev)
        read = raw[_read(rows, h)][:, _read(cols, w)]  # [h',w',M]: the cells that reach the output
        lo, hi = read.amin(dim=(0, 1)), read.amax(dim=(0, 1))  # [M]
        values = stretch(raw.permute(2, 0, 1), lo, hi)  # [M,h,w]
        channels = _small(first_argmax(values), m)
        return channels, nearest_index(h, H, "cpu"), nearest_index(w, W, "cpu")

    def channels(self, frame: Frame, raw: torch.Tensor) -> torch.Tensor:
        """``[H,W]`` integer tensor on the CPU: the first-maximum channel of ``self(frame, raw)`` per pixel,
        computed at the patch grid and expanded (``grid``); the full-resolution scores are never built."""
        channels, rows, cols = self.grid(frame, raw)
        return channels.cpu()[rows][:, cols]
