"""Where a batch's videos come from: a DAVIS root or a list file; every row checked before any video runs."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from dinotools.errors import InputError
from dinotools.io.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES, natural_key

MAX_LISTED = 20  # problems listed one per line before "... and N more"


@dataclass(frozen=True)
class Video:
    """One video of a batch: frames (folder or video file), its mask file or folder, and the
    output name (``OUTPUT/<name>/<frame>.png``). ``where`` names its origin in messages
    (``list.csv line 4``, ``DAVIS sequence dog``); paths are absolute, so a worker on another
    node of a cluster sees the same files (through a shared filesystem)."""

    name: str
    frames: Path
    mask: Path
    where: str


class BatchInputError(InputError):
    """Several bad rows at once: ``problems`` holds one line each (the message: the first, and a count)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
        super().__init__(self.problems[0] + more)

    def lines(self) -> List[str]:
        shown = self.problems[:MAX_LISTED]
        extra = len(self.problems) - len(shown)
        return shown + ([f"... and {extra} more problem(s)"] if extra else [])


def unprintable(text: str) -> Optional[str]:
    """What in ``text`` cannot be printed on one line (a control character such as NUL, tab or a line
    break, or a Unicode line/paragraph separator), or None."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return f"a control character or line break ({ascii(ch)[1:-1]})"
    return None


def check_name(name: str) -> Optional[str]:
    """Why ``name`` cannot be an output folder under OUTPUT (None when it can)."""
    if unprintable(name):  # NUL fails only when the worker opens the folder; tab/newline break the messages
        return f"output name {name!r} holds {unprintable(name)}"
    if not name or name.strip() != name:
        return f"output name {name!r} is empty or has leading/trailing spaces"
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        return f"output name {name!r} must be a plain folder name (no '/', '\\', and not starting with '.')"
    if len(name.encode()) > 255:
        return f"output name {name[:40]!r}... is longer than 255 bytes, the longest file name most filesystems allow"
    return None


def check_files(frames: Path, mask: Path) -> List[str]:
    """Problems a glance can find (missing paths, wrong kinds); content is checked by the worker, so a
    corrupt frame or mask fails only its own video."""
    problems = []
    if not frames.exists():
        problems.append(f"frames {frames} not found")
    elif frames.is_file() and frames.suffix.lower() not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        problems.append(f"frames {frames} is neither a folder of images nor a video file "
                        f"({', '.join(sorted(VIDEO_SUFFIXES))})")
    if not mask.exists():
        problems.append(f"mask {mask} not found")
    return problems


def validate(videos: Iterable[Video]) -> List[Video]:
    """All ``videos``, or a ``BatchInputError`` listing every bad row and duplicate output name."""
    videos = list(videos)
    problems = find_problems(videos)
    if not videos:
        problems.append("the batch holds no video")
    if problems:
        raise BatchInputError(problems)
    return videos


def find_problems(videos: Sequence[Video]) -> List[str]:
    """One line per bad name, missing path and duplicate output name, in the videos' order."""
    problems: List[str] = []
    seen = {}
    for v in videos:
        bad = check_name(v.name)
        problems += [f"{v.where}: {p}" for p in ([bad] if bad else []) + check_files(v.frames, v.mask)]
        key = v.name.casefold()  # names differing only by case collide on macOS and Windows disks
        if key in seen:
            problems.append(f"{v.where}: output name {v.name!r} is also used by {seen[key].where}; "
                            f"give each video its own name")
        else:
            seen[key] = v
    return problems


def davis_videos(root, resolution: str = "480p", sequences: Optional[Sequence[str]] = None,
                 split: Optional[str] = None, masks: str = "first") -> List[Video]:
    """One ``Video`` per sequence of a DAVIS root (``JPEGImages/<res>/<seq>/``, ``Annotations/<res>/<seq>/``).

    Sequences: ``sequences``, else those of ``ImageSets`` for ``split`` (as ``dinotools.eval``), else
    every annotation folder. ``masks``: see ``dataset_videos``.
    """
    from dinotools.io.datasets import DavisDataset

    root = Path(root).resolve()
    if not (root / "JPEGImages" / resolution).is_dir():
        raise InputError(f"{root / 'JPEGImages' / resolution} not found: --davis must be a DAVIS root holding "
                         f"JPEGImages/{resolution}/<seq>/ and Annotations/{resolution}/<seq>/")
    dataset = DavisDataset(root, split or "val", resolution, sequences)
    if split and sequences is None and dataset.imageset is None:
        raise InputError(f"--set {split}: no ImageSets/2017/{split}.txt, ImageSets/2016/{split}.txt or "
                         f"ImageSets/{resolution}/{split}.txt under {root}")
    return dataset_videos(dataset, masks)


def dataset_videos(dataset, masks: str = "first") -> List[Video]:
    """The videos of a ``DavisDataset``'s sequences. ``masks="first"``: the first annotation is the
    mask (the semi-supervised protocol; it must be the first frame's); ``"all"``: the annotation
    folder, each file the mask of the frame it is named after (layouts giving objects where they
    first appear, as DAVIS test-dev)."""
    if masks not in ("first", "all"):
        raise InputError(f"DAVIS masks must be 'first' or 'all', got {masks!r}")
    videos, problems = [], []
    for seq in dataset.sequences:
        where = f"DAVIS sequence {seq}"
        frames, notes = Path(dataset.images / seq).resolve(), Path(dataset.annotations / seq).resolve()
        annotations = sorted(notes.glob("*.png"), key=lambda p: natural_key(p.name))
        if not frames.is_dir():
            problems.append(f"{where}: frames of sequence {seq} not found: {frames} does not exist")
            continue
        if not annotations:
            problems.append(f"{where}: no annotation PNG in {notes}")
            continue
        first_frame = min((p for p in frames.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                          key=lambda p: natural_key(p.name), default=None)
        if masks == "first" and first_frame is not None and first_frame.stem != annotations[0].stem:
            problems.append(f"{where}: the first frame is {first_frame.stem} but the first annotation is "
                            f"{annotations[0].name}; tracking starts from the first annotation, so they must be "
                            f"the same frame")
            continue
        videos.append(Video(seq, frames, annotations[0] if masks == "first" else notes, where))
    if problems:
        raise BatchInputError(problems)
    return videos
