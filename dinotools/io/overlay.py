"""Overlay video (mp4) of frames blended with their label colours, for people to look at.

OpenCV's ``VideoWriter`` reports no write errors (a full disk leaves a file without its index and
``write`` returns nothing), so the video is written to a temp file beside the target, read back
when closed (it must open and hold every frame written) and only then renamed into place.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dinotools._env import quiet_ffmpeg
from dinotools.errors import InputError
from dinotools.io.masks import PALETTE, temp_name

_COLOURS = np.frombuffer(PALETTE, dtype=np.uint8).reshape(256, 3)
SUFFIXES = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


def blend(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``[H,W,3]`` uint8 frame + ``[H,W]`` ids -> ``[H,W,3]`` uint8 with objects tinted."""
    colours = _COLOURS[np.asarray(labels, dtype=np.int64) % 256]
    fg = (np.asarray(labels) != 0)[:, :, None]
    out = np.where(fg, (1 - alpha) * frame + alpha * colours, frame)
    return out.astype(np.uint8)


def _temp(path: Path) -> Path:
    """A temp name that keeps the suffix: OpenCV chooses the container from it."""
    tmp = temp_name(path)
    return tmp.with_name(tmp.name + path.suffix)


def _open(path: Path, fps: float, size):
    import cv2

    quiet_ffmpeg()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*SUFFIXES[path.suffix.lower()]), fps, size)
    return writer if writer.isOpened() else None


def check_overlay_path(path: Path) -> None:
    """Refuse, before any work, an overlay this OpenCV cannot write (unknown container, no encoder)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"--overlay {path}: unknown video type {path.suffix!r}; use one of "
                         f"{', '.join(sorted(SUFFIXES))}")
    tmp = _temp(path)
    writer = _open(tmp, 24.0, (64, 48))
    try:
        if writer is None:
            raise InputError(f"--overlay {path}: OpenCV cannot write {path.suffix} videos into {path.parent}")
        writer.release()
    finally:
        if tmp.exists():
            tmp.unlink()


class OverlayWriter:
    """Writes blended frames to a video (mp4v codec; MJPG for .avi); ``close()`` checks and publishes it."""

    def __init__(self, path, fps: float = 24.0) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer = None
        self._tmp = _temp(self.path)
        self.written = 0

    def write(self, frame: np.ndarray, labels: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = _open(self._tmp, self.fps, (w, h))
            if self._writer is None:
                raise InputError(f"cannot write overlay video {self.path} (folder missing or not writable?)")
        self._writer.write(np.ascontiguousarray(blend(frame, labels)[:, :, ::-1]))
        self.written += 1

    def close(self) -> None:
        """Finish the file, check it holds every frame, and rename it into place (InputError if not)."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        found = _frames_in(self._tmp)
        if found != self.written:
            self.abort()
            raise InputError(f"cannot write overlay video {self.path}: the file written holds {found} of "
                             f"{self.written} frames (disk full or not writable?); the label PNGs are complete")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop an unfinished video (an interrupted or failed run leaves no half-written file)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp.exists():
            self._tmp.unlink()


def _frames_in(path: Path) -> int:
    """Frames a video file holds as its index says, when its last frame decodes (else 0)."""
    import cv2

    quiet_ffmpeg()
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.set(cv2.CAP_PROP_POS_FRAMES, max(n - 1, 0))
        return n if cap.read()[0] else 0
    finally:
        cap.release()
