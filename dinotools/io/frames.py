"""Frame sources: a folder of images (natural sort) or a video file, streamed as RGB uint8.

Frames are read lazily, one at a time, so a video of any length is never held in memory.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def natural_key(name: str):
    """Sort key so that frame2 < frame10."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def to_rgb(arr: np.ndarray, where: str, warned: set) -> np.ndarray:
    """Grey -> RGB and RGBA -> RGB (alpha dropped), warning once per kind of conversion."""
    if arr.ndim == 2:
        kind, arr = "greyscale", np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        kind, arr = "RGBA", arr[:, :, :3]
    elif arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    else:
        raise InputError(f"{where}: unsupported image shape {arr.shape}; expected an RGB image")
    if kind not in warned:
        warned.add(kind)
        log.warning("%s is %s; converted to RGB (further such frames are converted silently)", where, kind)
    return np.ascontiguousarray(arr)


class FrameSource:
    """Iterable of ``[H,W,3]`` uint8 RGB frames with their ``names`` (file stems or indices)."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self._warned: set = set()
        self.size: Optional[Tuple[int, int]] = None  # (H, W) of the first frame read
        self.max_frames: Optional[int] = None  # set by limit()
        if self.path.is_dir():
            files = [p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
            if not files:
                raise InputError(
                    f"frame folder {self.path} holds no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            self.files: Optional[List[Path]] = sorted(files, key=lambda p: natural_key(p.name))
            self.names = [p.stem for p in self.files]
        elif self.path.is_file():
            self.files = None
            self.names = [f"{i:05d}" for i in range(self._video_length())]
        else:
            raise InputError(f"frames {self.path} not found: give a folder of images or a video file")

    def __len__(self) -> int:
        return len(self.names)

    def limit(self, n: int) -> "FrameSource":
        """Keep only the first ``n`` frames (quick runs; evaluation on a clip's start)."""
        self.max_frames = n
        self.names = self.names[:n]
        if self.files is not None:
            self.files = self.files[:n]
        return self

    def _video_length(self) -> int:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise InputError(f"video {self.path} cannot be opened (unreadable file or unsupported codec)")
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        if n <= 0:
            raise InputError(f"video {self.path} has no frames")
        return n

    def _check_size(self, arr: np.ndarray, where: str) -> None:
        size = arr.shape[:2]
        if self.size is None:
            self.size = size
        elif size != self.size:
            raise InputError(
                f"{where} is {size[1]}x{size[0]} but the first frame is {self.size[1]}x{self.size[0]}; "
                f"all frames of a video must have the same size"
            )

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` of a folder source (video sources are read sequentially)."""
        assert self.files is not None
        path = self.files[index]
        try:
            with Image.open(path) as img:
                arr = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB", "RGBA") else img)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise InputError(f"frame {path} is unreadable or corrupt ({exc})") from None
        arr = to_rgb(arr, f"frame {path}", self._warned)
        self._check_size(arr, f"frame {path}")
        return arr

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.files is not None:
            for i in range(len(self.files)):
                yield self.read(i)
            return
        yield from self._iter_video()

    def _iter_video(self) -> Iterator[np.ndarray]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            count = 0
            while self.max_frames is None or count < self.max_frames:
                ok, bgr = cap.read()
                if not ok:
                    break
                arr = bgr[:, :, ::-1] if bgr.ndim == 3 else bgr
                arr = to_rgb(np.ascontiguousarray(arr), f"video {self.path} frame {count}", self._warned)
                self._check_size(arr, f"video {self.path} frame {count}")
                count += 1
                yield arr
            if count == 0:
                raise InputError(f"video {self.path} yielded no decodable frame")
            if count != len(self.names):  # container frame counts are estimates: trust what decoded
                self.names = [f"{i:05d}" for i in range(count)]
        finally:
            cap.release()


def open_frames(path) -> FrameSource:
    return FrameSource(path)
