"""What every refiner shares: argument checks, the per-channel min-max stretch, the output check."""
from __future__ import annotations

from typing import Tuple, Union

import numpy as np
import torch

from dinotools.errors import ConfigError, InputError

Frame = Union[np.ndarray, torch.Tensor, Tuple[int, int]]


def frame_size(frame: Frame) -> Tuple[int, int]:
    """(H, W) of ``frame [H,W,3]`` (array or tensor), or ``frame`` itself when it is an (H, W) pair.

    Refiners that read only the output size (``needs_frame = False``) accept the pair, so that a
    caller without pixels (features-only tests, ``decode`` on stored probabilities) can use them.
    """
    if isinstance(frame, (tuple, list)) and len(frame) == 2:
        return int(frame[0]), int(frame[1])
    shape = tuple(frame.shape)
    if len(shape) != 3 or shape[2] != 3:
        raise InputError(f"a refiner needs the frame as [H,W,3] RGB, got shape {shape}")
    return int(shape[0]), int(shape[1])


def uint8_frame(frame: Frame) -> torch.Tensor:
    """``frame [H,W,3]`` uint8 RGB (array or tensor) -> a uint8 tensor on the frame's own device (an
    array is wrapped without a copy when it is writeable and C-contiguous)."""
    if isinstance(frame, (tuple, list)):
        raise InputError("this refiner reads the frame's pixels: pass the [H,W,3] uint8 RGB frame, not its size")
    frame_size(frame)
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8:
            raise InputError(f"a refiner needs a uint8 RGB frame, got {frame.dtype}")
        if not (frame.flags.writeable and frame.flags.c_contiguous):  # torch warns on read-only arrays
            frame = np.array(frame)
        return torch.from_numpy(frame)
    if frame.dtype != torch.uint8:
        raise InputError(f"a refiner needs a uint8 RGB frame, got {frame.dtype}")
    return frame


def frame_tensor(frame: Frame, device: torch.device) -> torch.Tensor:
    """``frame [H,W,3]`` uint8 RGB (array or tensor) -> ``[3,H,W]`` float32 in [0, 1] on ``device``."""
    # Converted after the copy to the device: a uint8 upload is 4x fewer bytes than float32.
    return uint8_frame(frame).to(device, non_blocking=True).permute(2, 0, 1).float().div_(255.0)


def check_raw(raw: torch.Tensor) -> torch.Tensor:
    """``raw [h,w,M]`` floating point, M >= 1; returned unchanged."""
    if not isinstance(raw, torch.Tensor) or raw.dim() != 3 or raw.shape[-1] < 1 or raw.numel() == 0:
        raise InputError(f"a refiner needs raw probabilities [h,w,M] (a tensor), got "
                         f"{getattr(raw, 'shape', type(raw).__name__)}")
    if not raw.is_floating_point():
        raise InputError(f"a refiner needs floating-point probabilities, got {raw.dtype}")
    return raw


def stretch(x: torch.Tensor, lo: torch.Tensor = None, hi: torch.Tensor = None, *, inplace: bool = False
            ) -> torch.Tensor:
    """Per-channel min-max stretch of ``x [M,...]`` to [0, 1]; a constant channel becomes 0.

    The notebook stretches each upsampled channel over the frame before its argmax, so a channel
    whose values are all small can still win where it peaks. ``lo``/``hi`` (``[M]``) replace the
    channel's own min/max (the patch-grid path passes those of the cells the upsampling reads).
    ``inplace`` overwrites ``x`` (a fresh upsampled tensor): the same float operations, fewer passes.
    """
    shape = (-1,) + (1,) * (x.dim() - 1)
    if lo is None or hi is None:
        lo, hi = torch.aminmax(x.reshape(x.shape[0], -1), dim=1)  # one pass for both
    lo, hi = lo.reshape(shape), hi.reshape(shape)
    out = x.sub_(lo) if inplace else x - lo
    return out.div_(hi - lo).nan_to_num_(nan=0.0)  # 0/0 of a constant channel -> 0


def first_argmax(x: torch.Tensor) -> torch.Tensor:
    """``x [M,H,W]`` (no NaN) -> ``[H,W]`` long: the first channel holding the maximum, as ``torch.argmax(x, 0)``.

    One running comparison per channel: on CPU, ``argmax`` over the outer dimension of a
    full-resolution frame took 47 ms for M=2 (13-25x slower than this for M <= 6, 2.6x at M=60).
    ``max(dim).indices`` is as fast but does not promise the first maximum on ties, which min-max
    stretching makes common (0 and 1).
    """
    best = x[0].clone()
    index = torch.zeros(x.shape[1:], dtype=torch.long, device=x.device)
    for c in range(1, x.shape[0]):
        later = x[c] > best  # strict: on a tie the earlier channel keeps the pixel
        torch.maximum(best, x[c], out=best)
        index.masked_fill_(later, c)
    return index


def check_scores(scores, raw: torch.Tensor, size: Tuple[int, int], name: str) -> torch.Tensor:
    """A refiner's output must be ``[M,H,W]`` floating point: one line naming the refiner otherwise."""
    want = (raw.shape[-1], *size)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != want:
        got = tuple(scores.shape) if hasattr(scores, "shape") else type(scores).__name__
        raise ConfigError(f"refiner {name} returned {got}; a refiner must return scores [M,H,W] = {want}")
    return scores


def positive(value, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float > 0 (or >= 0); a ``ConfigError`` naming the parameter otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"refiner parameter {name} must be a number, got {value!r}") from None
    if not (v > 0 or (allow_zero and v == 0)) or v != v:
        raise ConfigError(f"refiner parameter {name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return v
