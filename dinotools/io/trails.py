"""Overlay video of point tracks: each point a dot with its recent trail (occluded: a hollow ring, or hidden).

Drawing is vectorised over points (numpy fancy indexing): thousands of points cost a few
array operations per frame, not thousands of OpenCV calls.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dinotools.errors import InputError

_GOLDEN = 0.6180339887  # hue step: neighbouring query indices get well separated colours


def point_colours(n: int) -> np.ndarray:
    """``[n,3]`` uint8 RGB, a distinct hue per point."""
    hue = ((np.arange(n) * _GOLDEN) % 1.0 * 180).astype(np.uint8)  # OpenCV's 8-bit hue is 0..179
    hsv = np.stack([hue, np.full(n, 220, np.uint8), np.full(n, 255, np.uint8)], 1)[:, None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[:, 0]


def _blend(out: np.ndarray, xy: np.ndarray, colours: np.ndarray, alpha: np.ndarray) -> None:
    """Blend ``colours [m,3]`` with weights ``alpha [m]`` into ``out`` at integer pixels ``xy [m,2]`` in the frame."""
    h, w = out.shape[:2]
    x, y = xy[:, 0], xy[:, 1]
    ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    x, y, colours, a = x[ok], y[ok], colours[ok].astype(np.float32), alpha[ok, None]
    out[y, x] = (out[y, x] * (1 - a) + colours * a).astype(np.uint8)


def _disc(radius: int, hollow: bool) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    d2 = dx * dx + dy * dy
    keep = (d2 <= radius * radius) & ((d2 > (radius - 1) ** 2) if hollow else True)
    return np.stack([dx[keep], dy[keep]], 1)  # [m,2] (dx, dy)


def draw_tracks(frame: np.ndarray, history: np.ndarray, seen: np.ndarray, colours: np.ndarray, *,
                radius: int = 3, hide_occluded: bool = False) -> np.ndarray:
    """``frame [H,W,3]`` uint8 + ``history [L,N,2]`` (x, y) pixels, oldest first, NaN = none, ``seen [L,N]``
    bool visible -> ``[H,W,3]`` uint8 with trails fading into the past and the newest positions as dots."""
    out = frame.copy()
    length = history.shape[0]
    a, b = history[:-1], history[1:]  # [L-1,N,2] segment ends
    ok = np.isfinite(a).all(-1) & np.isfinite(b).all(-1)
    if hide_occluded:
        ok &= seen[:-1] & seen[1:]
    if ok.any():
        steps = int(np.clip(np.ceil(np.nanmax(np.abs(b - a)[ok])), 1, 64)) + 1
        f = np.linspace(0, 1, steps)[:, None, None, None]
        pts = a[None] + f * (b - a)[None]  # [S,L-1,N,2]
        age = (np.arange(1, length) / length)[None, :, None]  # older segments fainter
        alpha = np.broadcast_to(0.8 * age * np.where(seen[1:], 1.0, 0.35)[None], pts.shape[:3])
        sel = np.broadcast_to(ok[None], pts.shape[:3])
        cols = np.broadcast_to(colours[None, None], pts.shape[:3] + (3,))
        _blend(out, np.round(pts[sel] - 0.5).astype(np.int64), cols[sel], alpha[sel])
    now, vis = history[-1], seen[-1]
    present = np.isfinite(now).all(1)
    for hollow, which in ((False, present & vis), (True, present & ~vis & (not hide_occluded))):
        if not which.any():
            continue
        disc = _disc(radius, hollow)  # [m,2]
        centre = np.floor(now[which]).astype(np.int64)  # the pixel holding the point
        pix = (centre[:, None] + disc[None]).reshape(-1, 2)
        cols = np.repeat(colours[which], len(disc), axis=0)
        _blend(out, pix, cols, np.ones(len(pix)))
    return out


class TrailWriter:
    """Writes ``frame`` + tracks overlays to an mp4 file (OpenCV ``mp4v``), remembering ``trail`` frames."""

    def __init__(self, path, num_points: int, *, trail: int = 12, fps: float = 24.0, hide_occluded: bool = False):
        self.path = Path(path)
        self.fps, self.hide_occluded = fps, hide_occluded
        self.history = np.full((max(trail, 1) + 1, num_points, 2), np.nan, np.float32)  # oldest first
        self.seen = np.zeros((max(trail, 1) + 1, num_points), bool)
        self.colours = point_colours(num_points)
        self._writer = None

    def write(self, frame: np.ndarray, xy: np.ndarray, visible: np.ndarray) -> None:
        """``frame [H,W,3]`` uint8 RGB, ``xy [N,2]`` pixels (NaN: not yet queried), ``visible [N]``."""
        h, w = frame.shape[:2]
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"cannot write overlay video {self.path} (folder missing or not writable?)")
        self.history = np.roll(self.history, -1, axis=0)
        self.seen = np.roll(self.seen, -1, axis=0)
        self.history[-1], self.seen[-1] = xy, visible
        radius = max(2, round(min(h, w) / 160))
        img = draw_tracks(frame, self.history, self.seen, self.colours, radius=radius,
                          hide_occluded=self.hide_occluded)
        self._writer.write(np.ascontiguousarray(img[:, :, ::-1]))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
