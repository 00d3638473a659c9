"""Overlay video (mp4) of frames blended with their label colours, for people to look at."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .masks import PALETTE

_COLOURS = np.frombuffer(PALETTE, dtype=np.uint8).reshape(256, 3)


def blend(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``[H,W,3]`` uint8 frame + ``[H,W]`` ids -> ``[H,W,3]`` uint8 with objects tinted."""
    colours = _COLOURS[np.asarray(labels, dtype=np.int64) % 256]
    fg = (np.asarray(labels) != 0)[:, :, None]
    out = np.where(fg, (1 - alpha) * frame + alpha * colours, frame)
    return out.astype(np.uint8)


class OverlayWriter:
    """Writes blended frames to an mp4 file with OpenCV (``mp4v`` codec)."""

    def __init__(self, path, fps: float = 24.0) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer = None

    def write(self, frame: np.ndarray, labels: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"cannot write overlay video {self.path} (folder missing or not writable?)")
        self._writer.write(np.ascontiguousarray(blend(frame, labels)[:, :, ::-1]))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
