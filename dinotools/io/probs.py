"""Per-frame probability files (``--save-probs``): compressed ``.npz``, low resolution, float16.

Each file holds what the tracker propagated for that frame, before upsampling:

- ``probs [M,h,w]`` float16: channel 0 background, channel c the object ``ids[c-1]``, on the
  patch grid (h = H'/16 ...); for a propagated frame these are the raw propagation weights
  (each pixel's channels sum to 1), for the first mask frame the one-hot mask.
- ``ids [M-1]`` int64 and ``frame_size [2]`` (H, W) of the label PNG.

The low-resolution raw values are kept (not the full-size stretched ones) because they are
~100x smaller (a 960-short-side frame: 60x107 cells instead of 960x1707 pixels) and the
full-size map follows from them: ``stretch`` gives the per-channel min-max stretched
``[M,H,W]`` whose argmax the label PNG holds (exactly so for ``--upsample nearest``, up to the
float16 rounding of the stored values).
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from dinotools.errors import InputError
from dinotools.io.masks import atomic_save


def write_probs(path, raw: torch.Tensor, ids: Tuple[int, ...], frame_size: Tuple[int, int]) -> None:
    """Write ``raw [h,w,M]`` (any device) as ``probs [M,h,w]`` float16, atomically."""
    probs = raw.detach().permute(2, 0, 1).to(torch.float16).cpu().numpy()  # the one host copy
    ids_arr = np.asarray(ids, dtype=np.int64)
    size = np.asarray(frame_size, dtype=np.int64)
    atomic_save(path, lambda f: np.savez_compressed(f, probs=probs, ids=ids_arr, frame_size=size))


def read_probs(path) -> dict:
    """``{"probs": [M,h,w] float32, "ids": tuple, "frame_size": (H, W)}`` from ``write_probs``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {"probs": z["probs"].astype(np.float32), "ids": tuple(int(i) for i in z["ids"]),
                    "frame_size": tuple(int(s) for s in z["frame_size"])}
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"probability file {path} is not readable ({exc})") from None


def stretch(probs: np.ndarray, frame_size: Tuple[int, int], mode: str = "nearest") -> np.ndarray:
    """``[M,h,w]`` -> ``[M,H,W]`` upsampled and min-max stretched per channel, as the tracker decodes."""
    x = torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32))[None]  # [1,M,h,w]
    up = F.interpolate(x, size=tuple(frame_size), mode=mode)
    lo = up.amin(dim=(2, 3), keepdim=True)
    hi = up.amax(dim=(2, 3), keepdim=True)
    return ((up - lo) / (hi - lo)).nan_to_num(nan=0.0)[0].numpy()
