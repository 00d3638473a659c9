"""Any frame PIL or OpenCV can return -> ``[H,W,3]`` uint8 RGB, or a refusal naming the file.

The decision is made per PIL mode (and per array dtype/channels for OpenCV video frames), never
from a frame's content, so every frame of a video is converted the same way:

=================  =========================================================================
mode               conversion
=================  =========================================================================
RGB                as is (48-bit PNG/TIFF sources: Pillow keeps the high byte, said so)
L                  grey copied to R, G, B
1                  bilevel: 0 -> 0, 1 -> 255, then as L
P                  palette colours (Pillow); with a transparent colour: as RGBA
RGBA LA PA RGBa La alpha dropped: the stored colours are kept (not composited on a background)
I;16 (B/L/N)       16-bit grey scaled to 8 bits (round(v / 257): 65535 -> 255), then as L
I                  32-bit integer grey: as 16-bit when every value is in 0..65535, else refused
F                  refused: float images have no standard range to map to 8 bits
CMYK YCbCr LAB HSV Pillow's conversion to RGB (no colour profile applied)
=================  =========================================================================
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from dinotools.errors import InputError

log = logging.getLogger(__name__)

_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}
_CONVERTED = {"CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "CIELAB", "HSV": "HSV"}


def warn_once(warned: set, kind: str, where: str, how: str) -> None:
    """Warn about a conversion the first time a kind of frame needs it (one line per kind)."""
    if kind not in warned:
        warned.add(kind)
        log.warning("%s is %s; %s (further such frames are converted silently)", where, kind, how)


def scale16(arr: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounding (v / 257 maps the full range exactly: 65535 -> 255, 257 -> 1)."""
    return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def grey_to_rgb(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))


def _bits_per_sample(img) -> Optional[int]:
    """Bits per channel the file stores, when its header says (PNG IHDR, TIFF BitsPerSample)."""
    if img.format == "PNG" and getattr(img, "filename", None):
        try:
            with open(img.filename, "rb") as f:
                head = f.read(25)
            return head[24] if len(head) == 25 and head[12:16] == b"IHDR" else None
        except OSError:
            return None
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits = tags[258]
        return int(bits[0] if isinstance(bits, tuple) else bits)
    return None


def pil_to_rgb(img, where: str, warned: set) -> np.ndarray:
    """A loaded PIL image -> ``[H,W,3]`` uint8 RGB (see the module table); ``warned``: kinds warned."""
    mode = img.mode
    if getattr(img, "n_frames", 1) > 1:
        warn_once(warned, "multi-image", where, f"it holds {img.n_frames} images; the first is used")
    if mode == "RGB":
        bits = _bits_per_sample(img)
        if bits is not None and bits > 8:
            warn_once(warned, f"{bits}-bit RGB", where, "reduced to 8 bits per channel (high byte, by Pillow)")
        return np.asarray(img)
    if mode == "L":
        warn_once(warned, "greyscale", where, "converted to RGB")
        return grey_to_rgb(np.asarray(img))
    if mode == "1":
        warn_once(warned, "bilevel (1-bit)", where, "converted to RGB (0 -> black, 1 -> white)")
        return grey_to_rgb(np.asarray(img.convert("L")))
    if mode == "P" and "transparency" not in img.info:
        warn_once(warned, "palette (P)", where, "converted to RGB with its palette's colours")
        return np.asarray(img.convert("RGB"))
    if mode in _ALPHA or mode == "P":
        kind = "palette with transparency" if mode == "P" else mode
        warn_once(warned, kind, where, "converted to RGB: the alpha channel is dropped, colours kept as stored")
        return np.ascontiguousarray(np.asarray(img.convert("RGBA"))[:, :, :3])
    if mode.startswith("I;16"):
        warn_once(warned, "16-bit greyscale", where, "scaled to 8 bits (value / 257) and converted to RGB")
        return grey_to_rgb(scale16(np.asarray(img).astype(np.uint16)))
    if mode == "I":
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(f"{where} is a 32-bit integer image with values {arr.min()}..{arr.max()}: no standard "
                             f"range maps it to 8 bits; save the frames as 8-bit (or 16-bit) RGB or greyscale")
        warn_once(warned, "32-bit integer greyscale", where,
                  "read as 16-bit (values 0..65535), scaled to 8 bits (value / 257) and converted to RGB")
        return grey_to_rgb(scale16(arr))
    if mode == "F":
        raise InputError(f"{where} is a 32-bit float image: no standard range maps it to 8 bits; save the frames "
                         f"as 8-bit (or 16-bit) RGB or greyscale")
    try:
        rgb = img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InputError(f"{where} has the image mode {mode}, which cannot be converted to RGB ({exc}); "
                         f"save the frames as 8-bit RGB") from None
    warn_once(warned, _CONVERTED.get(mode, mode), where, "converted to RGB by Pillow (no colour profile applied)")
    return np.asarray(rgb)


def video_to_rgb(arr: np.ndarray, where: str, warned: set) -> np.ndarray:
    """An OpenCV-decoded frame (BGR order; grey, BGR or BGRA; uint8 or uint16) -> ``[H,W,3]`` uint8 RGB."""
    if arr.dtype == np.uint16:
        warn_once(warned, "16-bit video", where, "scaled to 8 bits (value / 257)")
        arr = scale16(arr)
    elif arr.dtype != np.uint8:
        raise InputError(f"{where} decodes to {arr.dtype} samples, which dinotools does not convert; "
                         f"re-encode the video with 8-bit colour")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        warn_once(warned, "greyscale video", where, "converted to RGB")
        return grey_to_rgb(arr)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        if arr.shape[2] == 4:
            warn_once(warned, "BGRA video", where, "converted to RGB: the alpha channel is dropped")
        return np.ascontiguousarray(arr[:, :, 2::-1])
    raise InputError(f"{where} decodes to an array of shape {arr.shape}; expected grey, BGR or BGRA")
