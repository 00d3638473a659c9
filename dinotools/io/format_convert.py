"""Converting label sequences between formats: label PNG folders <-> COCO JSON <-> YouTube-VOS
layout, and -> per-object tracks (objects JSON). ``python -m dinotools.convert`` is its command."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Optional

from dinotools.errors import InputError
from dinotools.io.exports import Exports, LabelSequence, read_png_folder
from dinotools.io.masks import write_mask

READABLE = ("png", "coco", "youtube-vos")  # objects JSON holds boxes, not masks: an output only
WRITABLE = ("png", "coco", "youtube-vos", "objects")


def detect(path: Path) -> str:
    """The input's format from what it is: a .json file (coco), a folder with Annotations/, a PNG folder."""
    if path.is_file() and path.suffix.lower() == ".json":
        return "coco"
    if (path / "Annotations").is_dir():
        return "youtube-vos"
    if path.is_dir():
        return "png"
    raise InputError(f"input {path} is neither a folder (label PNGs, YouTube-VOS root) nor a .json file")


def open_input(path: Path, fmt: str, video: Optional[str]) -> LabelSequence:
    if fmt == "coco":
        from dinotools.io.coco import read_coco

        return read_coco(path, video)
    if fmt == "youtube-vos":
        from dinotools.io.ytvos import read_youtube_vos

        return read_youtube_vos(path, video)
    return read_png_folder(path)


def convert(source: Path, output: Path, to: str, *, fmt: Optional[str] = None, video: Optional[str] = None,
            overwrite: bool = False) -> int:
    """Convert ``source`` (format ``fmt``, detected when None) into ``output`` as ``to``; returns the frame count.

    Streams: one label map is held at a time (a COCO input is parsed whole first).
    """
    fmt = fmt or detect(source)
    if fmt == "coco" or to == "coco":
        from dinotools.io.coco import require_pycocotools

        require_pycocotools()
    if output.exists() and not overwrite and (output.is_file() or any(output.iterdir())):
        raise InputError(f"output {output} exists; pass --overwrite to replace it")
    seq = open_input(source, fmt, video if fmt != "png" else None)
    name = video or seq.video
    if to == "png":
        output.mkdir(parents=True, exist_ok=True)
        count = 0
        for frame, labels in seq.frames:
            write_mask(output / f"{frame}.png", labels)
            count += 1
        return count
    parent = output.parent if to != "youtube-vos" else output
    parent.mkdir(parents=True, exist_ok=True)
    spool = Path(tempfile.mkdtemp(prefix=".dinotools-convert-", dir=parent))
    try:
        exports = Exports([to], parent, name, seq.names, paths={to: output}, spool=spool)
        count = 0
        for index, (_, labels) in enumerate(seq.frames):
            exports.add(index, labels)
            count += 1
        exports.finish()
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return count
