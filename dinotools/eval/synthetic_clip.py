"""A bundled demo clip the package generates itself: textured objects moving and occluding.

``make_clip`` draws a short synthetic video with exact ground truth (ids 1..3, id 3 passes in
front of id 1), so the whole pipeline can be tried and checked without downloading anything.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np


def _texture(rng: np.random.Generator, h: int, w: int, base, stripes: float) -> np.ndarray:
    """``[h,w,3]`` float texture: a base colour with noise and diagonal stripes."""
    yy, xx = np.mgrid[0:h, 0:w]
    pattern = 0.5 + 0.5 * np.sin((xx + yy) * stripes)
    tex = np.asarray(base, dtype=np.float32)[None, None, :] * (0.75 + 0.25 * pattern[:, :, None])
    return tex + rng.normal(0, 8, size=(h, w, 3))


def make_clip(n_frames: int = 24, size: Tuple[int, int] = (240, 320), seed: int = 0):
    """Returns ``(frames, masks)``: lists of ``[H,W,3]`` uint8 RGB and ``[H,W]`` uint8 ids."""
    rng = np.random.default_rng(seed)
    h, w = size
    background = _texture(rng, h, w, (90, 110, 80), 0.15)
    # (id, colour, stripes, radius y/x, start centre, velocity per frame, kind); later = in front
    objects = [
        (1, (220, 60, 50), 0.5, (40, 55), (0.45 * h, 0.25 * w), (0.0, 3.0), "ellipse"),
        (2, (60, 80, 220), 0.9, (35, 35), (0.25 * h, 0.80 * w), (1.5, -2.0), "box"),
        (3, (240, 210, 60), 0.3, (30, 40), (0.70 * h, 0.85 * w), (-1.5, -4.5), "ellipse"),
    ]
    textures = {oid: _texture(rng, h, w, col, st) for oid, col, st, *_ in objects}
    yy, xx = np.mgrid[0:h, 0:w]
    frames: List[np.ndarray] = []
    masks: List[np.ndarray] = []
    for f in range(n_frames):
        img = background + rng.normal(0, 3, size=(h, w, 3))
        ids = np.zeros((h, w), dtype=np.uint8)
        for oid, _, _, (ry, rx), (cy, cx), (vy, vx), kind in objects:
            cy_f, cx_f = cy + vy * f, cx + vx * f
            if kind == "ellipse":
                inside = ((yy - cy_f) / ry) ** 2 + ((xx - cx_f) / rx) ** 2 <= 1
            else:
                inside = (np.abs(yy - cy_f) <= ry) & (np.abs(xx - cx_f) <= rx)
            img[inside] = textures[oid][inside]
            ids[inside] = oid
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        masks.append(ids)
    return frames, masks
