"""Object ids <-> tracker channels: channel 0 is background, channel c the c-th tracked id (ids stay as given)."""
from __future__ import annotations

import numpy as np


def label_dtype(ids) -> type:
    """The smallest integer dtype holding every id (uint8 for PNG-able ids, as the outputs are written)."""
    top = max(ids, default=0)
    return np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.int64


def channel_lut(ids, max_value: int) -> np.ndarray:
    """Lookup table id -> channel (0 for background and for ids not tracked)."""
    lut = np.zeros(max(max_value, max(ids, default=0)) + 1, dtype=np.int64)
    for c, i in enumerate(ids, start=1):
        lut[i] = c
    return lut
