"""Converting label sequences between formats: label PNG folders <-> COCO JSON <-> YouTube-VOS
layout, and -> per-object tracks (objects JSON). ``python -m dinotools.convert`` is its command."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from dinotools.errors import InputError
from dinotools.io.exports import Exports, LabelSequence, read_png_folder
from dinotools.io.masks import write_mask, written_by_dinotools

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


FILE_OUTPUTS = ("coco", "objects")  # the others write a folder


def check_output(output: Path, to: str, overwrite: bool, source: Optional[Path] = None) -> None:
    """An ``InputError`` unless ``output`` may become a ``to`` output: absent, or replaceable with ``overwrite``
    and of the right kind (a file for coco/objects, a folder for png/youtube-vos). Whatever the flags, an
    output that is or holds ``source`` is refused (replacing it would delete the input), and ``--overwrite``
    of a PNG folder holding files dinotools did not write is refused naming one (never deleted)."""
    if source is not None and output.exists():
        src, out = Path(source).resolve(), output.resolve()
        if src == out or out in src.parents:
            raise InputError(f"output {output} holds the input {source}: write the conversion elsewhere")
    if not output.exists():
        return
    if not overwrite and (output.is_file() or any(output.iterdir())):
        raise InputError(f"output {output} exists; pass --overwrite to replace it")
    if to in FILE_OUTPUTS and output.is_dir():
        raise InputError(f"output {output} is a folder; --to {to} writes a file: name the .json file to write")
    if to not in FILE_OUTPUTS and not output.is_dir():
        raise InputError(f"output {output} is a file; --to {to} writes a folder: name a folder")
    if to == "png":  # the whole folder is replaced: only by what dinotools wrote there
        foreign = next((p for p in sorted(output.iterdir())
                        if not (p.suffix.lower() == ".png" and p.is_file() and written_by_dinotools(p))), None)
        if foreign is not None:
            raise InputError(f"--overwrite would replace {output}, which holds {foreign.name}, not written by "
                             f"dinotools: remove it yourself or write elsewhere")


def convert(source: Path, output: Path, to: str, *, fmt: Optional[str] = None, video: Optional[str] = None,
            overwrite: bool = False) -> int:
    """Convert ``source`` (format ``fmt``, detected when None) into ``output`` as ``to``; returns the frame count.

    Streams: one label map is held at a time (a COCO input is parsed whole first). Everything is
    written into a hidden folder beside ``output`` and moved into place at the end, so a failure
    (a bad frame, a full disk) leaves the old output or none, never a part of the new one.
    """
    fmt = fmt or detect(source)
    if fmt == "coco" or to == "coco":
        from dinotools.io.coco import require_pycocotools

        require_pycocotools()
    output = Path(output)
    check_output(output, to, overwrite, source)
    seq = open_input(source, fmt, video if fmt != "png" else None)
    name = video or seq.video
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{output.name[:64]}.", suffix=".convert", dir=output.parent))
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        target = stage / "new"
        count = write(seq, target, to, name, stage / "spool")
        install(target, output, to, name, stage / "old")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise InputError(f"cannot write {output}: {where}{exc.strerror or exc}; nothing was written in its "
                         f"place") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return count


def write(seq: LabelSequence, target: Path, to: str, name: str, spool: Path) -> int:
    """Write ``seq`` as ``to`` at ``target`` (a file or folder that does not exist yet); the frame count."""
    count = 0
    if to == "png":
        target.mkdir()
        for frame, labels in seq.frames:
            write_mask(target / f"{frame}.png", labels)
            count += 1
        return count
    spool.mkdir()
    exports = Exports([to], target.parent, name, seq.names, paths={to: target}, spool=spool)
    for index, (_, labels) in enumerate(seq.frames):
        exports.add(index, labels)
        count += 1
    exports.finish()
    return count


def install(target: Path, output: Path, to: str, name: str, trash: Path) -> None:
    """Move the finished ``target`` to ``output``; what it replaces goes to ``trash`` (deleted with the stage).

    youtube-vos replaces only ``Annotations/<name>/`` and ``meta.json`` under the root (other videos stay).
    """
    if to in FILE_OUTPUTS:
        os.replace(target, output)  # atomic for a file
        return
    if to == "png":
        pairs = [(target, output)]
    else:
        (output / "Annotations").mkdir(parents=True, exist_ok=True)
        pairs = [(target / "Annotations" / name, output / "Annotations" / name)]
    trash.mkdir()
    for i, (new, old) in enumerate(pairs):
        if old.exists():
            os.rename(old, trash / str(i))
        os.rename(new, old)
    if to == "youtube-vos":
        os.replace(target / "meta.json", output / "meta.json")
