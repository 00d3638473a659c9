"""YouTube-VOS / MOSE results layout (``--format youtube-vos``): ``Annotations/<video>/<frame>.png`` + ``meta.json``.

The PNGs are indexed palette PNGs holding the object ids, as the benchmarks' servers read them;
``meta.json`` follows the datasets' own: ``{"videos": {<video>: {"objects": {"<id>": {"frames":
[<frame names where the object is present>]}}}}}``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from dinotools.errors import InputError
from dinotools.io.export_common import (
    LabelSequence,
    Spool,
    present_ids,
    write_json_stream,
)
from dinotools.io.frames import natural_key
from dinotools.io.masks import atomic_save, read_mask, write_mask
from dinotools.io.schemas import YTVOS_META, check_json, load_json


class YouTubeVosExport:
    """Writes each frame's PNG under ``root/Annotations/<video>/`` as it comes, ``root/meta.json`` at ``finish``."""

    def __init__(self, root: Path, video: str, names: Sequence[str], spool: Spool) -> None:
        self.root, self.video, self.names, self.spool = Path(root), video, list(names), spool
        self.folder = self.root / "Annotations" / video
        self.ids: List[int] = []  # ids seen so far, in order of first appearance

    def add(self, index: int, labels: np.ndarray) -> None:
        if index == 0 or not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
        write_mask(self.folder / f"{self.names[index]}.png", labels)
        ids, _ = present_ids(labels)
        for k in ids:
            k = int(k)
            if k not in self.ids:
                self.ids.append(k)
            self.spool.append(f"ytvos.{k}", json.dumps(self.names[index]))

    def finish(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)  # a video without frames still gets its folder

        def parts():
            yield '{"videos": {' + json.dumps(self.video) + ': {"objects": {'
            for n, k in enumerate(sorted(self.ids)):
                yield ("" if n == 0 else ", ") + f'"{k}": {{"frames": ['
                for m, line in enumerate(self.spool.lines(f"ytvos.{k}")):
                    yield ("" if m == 0 else ", ") + line
                yield "]}"
            yield "}}}}\n"

        atomic_save(self.root / "meta.json", lambda f: write_json_stream(f, parts()))


def youtube_vos_videos(root) -> List[str]:
    """Video names under ``root/Annotations``."""
    folder = Path(root) / "Annotations"
    if not folder.is_dir():
        raise InputError(f"{root} is not a YouTube-VOS results folder: {folder} does not exist")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def read_youtube_vos(root, video: Optional[str] = None) -> LabelSequence:
    """One video's label maps under ``root/Annotations/<video>/`` (``meta``: its meta.json entry or {}).

    ``video``: which video under ``root/Annotations`` (default: the only one).
    """
    root = Path(root)
    videos = youtube_vos_videos(root)
    if video is None:
        if len(videos) != 1:
            raise InputError(f"{root} holds {len(videos)} videos; choose one with --video: {', '.join(videos)}")
        video = videos[0]
    elif video not in videos:
        raise InputError(f"{root}/Annotations has no video {video!r} (found: {', '.join(videos) or 'none'})")
    meta = {}
    if (root / "meta.json").is_file():
        path = root / "meta.json"
        meta = check_json(load_json(path, "a YouTube-VOS meta.json"), YTVOS_META, path)["videos"].get(video, {})
    files = sorted((root / "Annotations" / video).glob("*.png"), key=lambda p: natural_key(p.name))

    def labels() -> Iterator[Tuple[str, np.ndarray]]:
        for p in files:
            yield p.stem, read_mask(p)

    return LabelSequence(video, [p.stem for p in files], labels(), meta)
