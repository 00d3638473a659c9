"""Exports beside the label PNGs (``--format``): streamed frame by frame, finished atomically, rebuilt on resume.

An export is a pure function of the label PNGs (ids per pixel) and the frame names, so a
resumed run rebuilds the part of each export that covers the frames already written from their
PNGs, and its exports equal those of an uninterrupted run with the same PNGs. Per-frame records
are spooled to files under ``OUTPUT/.dinotools-export/`` (memory stays flat in video length)
and assembled into the final files by streaming when the run finishes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from dinotools.errors import InputError
from dinotools.io.coco import CocoExport, require_pycocotools
from dinotools.io.export_common import (  # noqa: F401  (re-exported: the exports' public names)
    FORMATS,
    SPOOL,
    LabelSequence,
    Spool,
    export_paths,
    present_ids,
    read_png_folder,
    video_name,
)
from dinotools.io.masks import read_mask
from dinotools.io.objects import ObjectsExport
from dinotools.io.ytvos import YouTubeVosExport


def check_formats(formats: Sequence[str]) -> List[str]:
    """The formats, validated (one line naming the bad one), png first and without repeats."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InputError(f"unknown --format {bad[0]!r}; choose from {', '.join(FORMATS)} (repeatable)")
    out = ["png"] + [f for f in dict.fromkeys(formats) if f != "png"]
    if "coco" in out:
        require_pycocotools()
    return out


class Exports:
    """The exports of one video, fed every frame in order by the writer thread.

    ``formats``: from ``check_formats``; ``output``: the run's PNG folder; ``video``: its name;
    ``names``: every frame's name (file stem); ``files``: the frames' file names (for COCO's
    ``file_name``; None for a video file). ``paths`` overrides ``export_paths`` (convert).
    """

    def __init__(self, formats: Sequence[str], output: Path, video: str, names: Sequence[str],
                 files: Optional[Sequence[str]] = None, paths: Optional[Dict[str, Path]] = None,
                 spool: Optional[Path] = None) -> None:
        paths = paths or export_paths(output, video)
        self.output, self.names = Path(output), list(names)
        self.spool = Spool(spool or Path(output) / SPOOL)
        makers: Dict[str, Callable] = {
            "coco": lambda: CocoExport(paths["coco"], video, self.names, files, self.spool),
            "youtube-vos": lambda: YouTubeVosExport(paths["youtube-vos"], video, self.names, self.spool),
            "objects": lambda: ObjectsExport(paths["objects"], video, self.names, self.spool),
        }
        self.writers = [makers[f]() for f in formats if f != "png"]

    def __bool__(self) -> bool:
        return bool(self.writers)

    def start(self, resume_from: int = 0) -> None:
        """Begin (again): the spool is emptied, then frames ``< resume_from`` are re-added from their PNGs.

        The spool is emptied even without exports: an interrupted run's spool (of formats this run
        does not write) is never left behind."""
        self.spool.reset()
        if not self.writers:
            return
        for i in range(resume_from):
            path = self.output / f"{self.names[i]}.png"
            if not path.is_file():
                raise InputError(f"cannot rebuild the exports: {path} is missing; pass --overwrite to start again")
            self.add(i, read_mask(path))

    def add(self, index: int, labels: np.ndarray) -> None:
        """Frame ``index``'s ``labels [H,W]`` (ids, 0 background); frames arrive in order."""
        for w in self.writers:
            w.add(index, labels)

    def finish(self) -> None:
        """Write every export's final file(s) atomically, then drop the spool."""
        for w in self.writers:
            w.finish()
        self.spool.remove()
