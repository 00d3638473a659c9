"""Mask files: indexed palette PNG, greyscale id PNG, binary 0/255 PNG, ``.npy``; atomic writing.

Ids are kept exactly: 0 is background, any other value is an object id. A greyscale (mode L)
mask whose only values are {0, 255} is a DAVIS-2016 binary mask and reads as one object, id 1.
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from dinotools._env import kill_point
from dinotools.errors import InputError

log = logging.getLogger(__name__)

MAX_PNG_ID = 255  # an indexed PNG holds ids 0..255
# Every label PNG dinotools writes says so (PNG text chunk "Software"): --overwrite removes only
# PNGs with this mark, never a file dinotools did not write (``written_by_dinotools``).
SOFTWARE = "dinotools"


def davis_palette() -> bytes:
    """The DAVIS/PASCAL VOC colour palette (768 bytes) used for indexed PNG outputs."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal.tobytes()


PALETTE = davis_palette()


def read_mask(path) -> np.ndarray:
    """``[H,W]`` integer id map from a PNG (modes P, L, I, 1) or ``.npy`` file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mask file {path} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"mask file {path} is not a readable .npy array ({exc})") from None
        if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise InputError(f"mask file {path} must hold a 2-D integer id array, got {arr.dtype} {arr.shape}")
        if arr.size and arr.min() < 0:
            raise InputError(f"mask file {path} has negative ids; ids must be >= 0 (0 = background)")
        return arr.astype(np.int64)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("RGB", "RGBA"):
                raise InputError(
                    f"mask file {path} is a colour ({mode}) image; save it as an indexed (palette) or "
                    f"greyscale PNG whose pixel values are object ids"
                )
            arr = np.array(img.convert("L") if mode in ("1", "LA") else img)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"mask file {path} is not a readable image ({exc})") from None
    if arr.ndim != 2:
        raise InputError(f"mask file {path} must be single-channel, got shape {arr.shape}")
    arr = arr.astype(np.int64)
    if mode in ("L", "1", "LA") and set(np.unique(arr).tolist()) <= {0, 255}:
        arr = (arr == 255).astype(np.int64)  # DAVIS-2016 binary mask: one object
    return arr


def object_ids(mask: np.ndarray) -> Tuple[int, ...]:
    return tuple(int(i) for i in np.unique(mask) if i != 0)


def check_mask(mask: np.ndarray, where: str) -> None:
    if not object_ids(mask):
        raise InputError(f"{where} has no object: every pixel is 0 (background)")


def write_mask(path, labels: np.ndarray) -> None:
    """Write ``[H,W]`` ids as an indexed palette PNG, atomically (temp file + rename)."""
    labels = np.asarray(labels)
    if labels.size and labels.max() > MAX_PNG_ID:
        raise InputError(
            f"cannot write {path}: id {int(labels.max())} exceeds {MAX_PNG_ID}, the largest an indexed PNG holds"
        )
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette(PALETTE)
    info = PngInfo()
    info.add_text("Software", SOFTWARE)
    atomic_save(path, lambda f: img.save(f, format="PNG", pnginfo=info))


def written_by_dinotools(path) -> bool:
    """Whether the PNG ``path`` carries ``write_mask``'s mark (read from its header, not its pixels)."""
    try:
        with Image.open(path) as img:
            return img.format == "PNG" and img.info.get("Software") == SOFTWARE
    except (OSError, UnidentifiedImageError, ValueError):
        return False


def temp_name(path: Path) -> Path:
    """A fresh hidden temp file beside ``path`` (``.<name>.<random>.tmp``; the name is cut so that the
    temp name fits the file system whenever ``path``'s name does)."""
    return path.parent / f".{path.name[:64]}.{secrets.token_hex(4)}.tmp"


def atomic_save(path, write) -> None:
    """Call ``write(file)`` on a temp file in the target folder, then rename it into place.

    The temp file is created as ``open()`` creates files (mode 0o666 less the umask), so the
    result gets the permissions any other program's output would; the data is flushed to disk
    before the rename, so ``path`` is either its old content or the complete new one.
    """
    path = Path(path)
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        kill_point(f"save:{path.name}")  # tests only: a kill while this file is written
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fit_mask(mask: np.ndarray, frame_size: Tuple[int, int], where: str, tolerance: float = 0.02) -> np.ndarray:
    """Resize ``mask`` to ``frame_size`` (nearest) when only slightly off; refuse otherwise.

    A mask whose aspect ratio is within ``tolerance`` of the frames' (a one-pixel crop, a
    half-resolution annotation) is resized with nearest-neighbour and a warning naming both
    sizes; any other mismatch is an error naming both sizes.
    """
    h, w = frame_size
    mh, mw = mask.shape
    if (mh, mw) == (h, w):
        return mask
    if abs((mw / mh) / (w / h) - 1) > tolerance:
        raise InputError(
            f"{where} is {mw}x{mh} but the frames are {w}x{h}: the aspect ratios differ, so the mask "
            f"does not belong to these frames (resize it to {w}x{h})"
        )
    log.warning(
        "%s is %dx%d but the frames are %dx%d; resized with nearest-neighbour", where, mw, mh, w, h
    )
    resized = Image.fromarray(mask.astype(np.int32), mode="I").resize((w, h), Image.NEAREST)
    return np.asarray(resized).astype(mask.dtype)
