"""Frame sources: a folder of images (natural sort) or a video file, streamed as RGB uint8.

Frames are read lazily, one at a time, so a video of any length is never held in memory. Frames
of another bit depth or mode are converted as ``dinotools.io.convert`` documents, or refused.
"""
from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from dinotools._env import quiet_ffmpeg
from dinotools.errors import InputError
from dinotools.io.convert import pil_to_rgb, video_to_rgb

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def natural_key(name: str):
    """Sort key so that frame2 < frame10."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_images(folder: Path, what: str = "frame") -> List[Path]:
    """Image files of ``folder`` in natural order. Hidden files (``._x.jpg`` copies, temp files) are
    skipped with a warning; an entry that looks like an image but cannot be read (a broken link, a
    folder, a device, no read permission) is an error naming it, and so are two images with one stem."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise InputError(f"{what} folder {folder} cannot be listed: {exc.strerror or exc}") from None
    files, hidden = [], []
    for e in entries:
        if Path(e.name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if e.name.startswith("."):
            hidden.append(e.name)
            continue
        path = folder / e.name
        try:
            st = os.stat(path)  # follows links
        except OSError as exc:
            target = f" (a link to {os.readlink(path)} that does not exist)" if os.path.islink(path) else ""
            raise InputError(f"{what} {path} cannot be read{target}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} {path} is not a regular file (a folder or a device?): remove or rename it")
        if not os.access(path, os.R_OK):
            raise InputError(f"{what} {path} is not readable (permission denied)")
        files.append(path)
    if hidden:
        log.warning("%s folder %s: skipped %d hidden file(s) such as %s", what, folder, len(hidden), sorted(hidden)[0])
    files.sort(key=lambda p: natural_key(p.name))
    stems = {}
    for p in files:
        if p.stem in stems:
            raise InputError(f"{what}s {stems[p.stem].name} and {p.name} in {folder} have the same name: their "
                             f"outputs would be the same file; keep one of them")
        stems[p.stem] = p
    return files


class FrameSource:
    """Iterable of ``[H,W,3]`` uint8 RGB frames with their ``names`` (file stems or indices).

    For a video, ``len()`` is the frame count the container announces; after a full pass
    ``decoded`` is the count that decoded. Fewer decoded frames (a corrupt or cut-short file) is
    a warning naming both counts, or with ``strict`` an error raised after the last good frame.
    """

    def __init__(self, path, strict: bool = False) -> None:
        self.path = Path(path)
        self.strict = strict
        self._warned: set = set()
        self.size: Optional[Tuple[int, int]] = None  # (H, W) of the first frame read
        self.decoded: Optional[int] = None  # video: frames decoded by the last full pass
        self.max_frames: Optional[int] = None  # set by limit()
        if self.path.is_dir():
            self.files: Optional[List[Path]] = list_images(self.path)
            if not self.files:
                raise InputError(
                    f"frame folder {self.path} holds no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            self.names = [p.stem for p in self.files]
        elif self.path.is_file():
            self.files = None
            self.announced = self._video_length()
            self.names = [f"{i:05d}" for i in range(self.announced)]
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
        else:
            self.announced = min(self.announced, n)
        return self

    @property
    def is_video(self) -> bool:
        return self.files is None

    def name(self, index: int) -> str:
        """Output name of frame ``index`` (a video may decode more frames than it announced)."""
        return self.names[index] if index < len(self.names) or self.files is not None else f"{index:05d}"

    def _video_length(self) -> int:
        import cv2

        quiet_ffmpeg()
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
                img.load()
                arr = pil_to_rgb(img, f"frame {path}", self._warned)
        except InputError:  # a refused mode: its message already names the file
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"frame {path} is unreadable or corrupt ({exc})") from None
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

        quiet_ffmpeg()
        cap = cv2.VideoCapture(str(self.path))
        try:
            count = 0
            while self.max_frames is None or count < self.max_frames:
                ok, bgr = cap.read()
                if not ok:
                    break
                where = f"video {self.path} frame {count}"
                arr = video_to_rgb(bgr, where, self._warned)
                self._check_size(arr, where)
                count += 1
                yield arr
        finally:
            cap.release()
        self.decoded = count
        self.names = [f"{i:05d}" for i in range(count)]  # container counts are estimates: trust what decoded
        if count == 0:
            raise InputError(f"video {self.path} yielded no decodable frame")
        if count < self.announced:
            message = (f"video {self.path}: only {count} of the {self.announced} frames its container announces "
                       f"could be decoded (a corrupt or cut-short file?)")
            if self.strict:
                raise InputError(f"{message}; frames 0-{count - 1} are tracked (--strict)")
            log.warning("%s; tracked the %d that decoded (--strict makes this an error)", message, count)


def open_frames(path, strict: bool = False) -> FrameSource:
    return FrameSource(path, strict=strict)
