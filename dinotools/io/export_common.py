"""What every export shares: the format names, where each export goes, the label sequence read
back from PNGs, the video's name, the on-disk spool and streamed JSON writing.

Kept apart from ``exports`` (which drives the exporters) so that the exporters (``coco``,
``ytvos``, ``objects``) import it without an import circle.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np

from dinotools.errors import InputError
from dinotools.io.masks import read_mask

FORMATS = ("png", "coco", "youtube-vos", "objects")  # png: the label PNGs every run writes
SPOOL = ".dinotools-export"


def export_paths(output: Path, video: str) -> Dict[str, Path]:
    """Where a run into ``output`` writes each export of ``video``."""
    output = Path(output)
    return {"coco": output / f"{video}.coco.json", "objects": output / f"{video}.objects.json",
            "youtube-vos": output / "youtube-vos"}


@dataclass
class LabelSequence:
    """A video's label maps as a reader gives them: ``frames`` yields ``(name, labels [H,W])`` lazily."""

    video: str
    names: List[str]
    frames: Iterator[Tuple[str, np.ndarray]]
    meta: dict = field(default_factory=dict)


def read_png_folder(folder) -> LabelSequence:
    """The label PNGs of ``folder`` (``<frame>.png``, natural order), as ``dinotools.run`` writes them."""
    from dinotools.io.frames import natural_key

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of label PNGs")
    files = sorted(folder.glob("*.png"), key=lambda p: natural_key(p.name))
    if not files:
        raise InputError(f"no label PNGs (*.png) in {folder}")
    return LabelSequence(folder.resolve().name, [p.stem for p in files], ((p.stem, read_mask(p)) for p in files))


GENERIC_FOLDERS = {"frames", "images", "imgs", "img", "jpegimages", "rgb", "color"}


def video_name(frames) -> str:
    """The name exports give a video: its video file's stem, or its frames folder's name (the parent's
    when the folder has a generic name such as ``frames``: ``clip/frames`` is the video ``clip``)."""
    path = Path(frames)
    if path.is_file():
        return path.stem
    path = path.resolve()
    return path.parent.name if path.name.lower() in GENERIC_FOLDERS and path.parent.name else path.name


class Spool:
    """Append-only text lines per key, on disk: the per-frame records of the exports until they finish."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._files: Dict[str, object] = {}

    def reset(self) -> None:
        """Forget every line (the folder is created again on the first append)."""
        self.remove()

    def append(self, key: str, line: str) -> None:
        f = self._files.get(key)
        if f is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            f = self._files[key] = open(self.folder / key, "a", encoding="utf-8")
        f.write(line + "\n")

    def lines(self, key: str) -> Iterator[str]:
        """The lines appended under ``key`` (flushed first), without their newlines."""
        f = self._files.get(key)
        if f is not None:
            f.flush()
        path = self.folder / key
        if not path.exists():
            return
        with open(path, encoding="utf-8") as r:
            for line in r:
                yield line.rstrip("\n")

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def write_json_stream(f, parts: Iterator[str]) -> None:
    """Write pre-serialised JSON text pieces to the binary file ``f``."""
    for part in parts:
        f.write(part.encode("utf-8"))


def json_list(items: Iterator[str]) -> Iterator[str]:
    """``[item,\nitem, ...]`` of serialised JSON items, one per line, streamed."""
    yield "["
    sep = "\n"
    for item in items:
        yield sep + item
        sep = ",\n"
    yield "]" if sep == "\n" else "\n]"


def present_ids(labels: np.ndarray) -> np.ndarray:
    """Sorted non-zero ids present in ``labels`` with their pixel counts: ``([K] ids, [K] areas)``."""
    counts = np.bincount(labels.ravel().astype(np.int64, copy=False))
    ids = np.nonzero(counts)[0]
    ids = ids[ids != 0]
    return ids, counts[ids]
