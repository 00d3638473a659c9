"""What an earlier run left where this run writes: the files dinotools wrote (``--overwrite`` removes
them) and the files it did not (never removed; a run that would mix its outputs with them is refused).

A finished run leaves no run record (its output folder holds exactly its outputs, which batch runs
and users rely on), so each output says itself that dinotools wrote it:

- label PNGs (``OUTPUT/*.png``, ``OUTPUT/youtube-vos/Annotations/<video>/*.png``): the PNG text
  chunk ``Software=dinotools`` that ``io.masks.write_mask`` adds;
- probabilities (``*.npz`` in ``OUTPUT/probs`` and in this run's ``--save-probs`` folder): exactly
  the arrays ``io.probs.write_probs`` writes (``probs``, ``ids``, ``frame_size``);
- exports (``*.coco.json``, ``*.objects.json``, ``youtube-vos/meta.json``): the exporters' own
  first bytes (they stream their JSON with a fixed head);
- the run record, the export spool and temp files: dinotools' hidden names.

Label PNGs written before the mark existed read as foreign: they are refused, never removed.
"""
from __future__ import annotations

import logging
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional

from dinotools.errors import InputError
from dinotools.io.export_common import SPOOL, export_paths
from dinotools.io.masks import written_by_dinotools
from dinotools.runs.record import MANIFEST

log = logging.getLogger(__name__)

TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # io.masks.temp_name
PROBS_KEYS = {"probs.npy", "ids.npy", "frame_size.npy"}
HEADS = {  # the first bytes of each exporter's JSON (io.coco, io.objects, io.ytvos)
    "coco": re.compile(rb'^\{"info": \{"description": "dinotools tracking results"'),
    "objects": re.compile(rb'^\{"video": ".*", "width": \d+, "height": \d+, "num_frames": \d+,\n"frames": \['),
    "youtube-vos": re.compile(rb'^\{"videos": \{".*": \{"objects": \{'),
}


@dataclass
class Earlier:
    """``ours``: files dinotools wrote; ``folders``: folders it made, removed when left empty (innermost
    first); ``foreign``: files where this run writes that dinotools did not write."""

    ours: List[Path] = field(default_factory=list)
    folders: List[Path] = field(default_factory=list)
    foreign: List[Path] = field(default_factory=list)


def _head_is(path: Path, kind: str) -> bool:
    try:
        with open(path, "rb") as f:
            return HEADS[kind].match(f.read(512)) is not None
    except OSError:
        return False


def _is_probs(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return set(z.namelist()) == PROBS_KEYS
    except (OSError, zipfile.BadZipFile):
        return False


def _temp_files(folder: Path) -> List[Path]:
    return [p for p in folder.glob(".*.tmp") if TEMP.match(p.name) and p.is_file()] if folder.is_dir() else []


def survey(output: Path, probs_dirs: Iterable[Optional[Path]], video: str, formats: Iterable[str] = ()) -> Earlier:
    """What is in ``output`` (and the probability folders) where a run of ``video`` with ``formats`` writes."""
    output, found = Path(output), Earlier()
    if not output.is_dir():
        return found
    targets = {p.resolve() for f, p in export_paths(output, video).items() if f in set(formats)}
    for p in sorted(output.glob("*.png")):
        (found.ours if written_by_dinotools(p) else found.foreign).append(p)
    for kind, pattern in (("coco", "*.coco.json"), ("objects", "*.objects.json")):
        for p in sorted(output.glob(pattern)):
            if _head_is(p, kind):
                found.ours.append(p)
            elif p.resolve() in targets:  # this run would replace it
                found.foreign.append(p)
    for folder in dict.fromkeys(Path(d) for d in probs_dirs if d is not None):
        if folder.is_dir():
            for p in sorted(folder.glob("*.npz")):
                (found.ours if _is_probs(p) else found.foreign).append(p)
            found.ours += _temp_files(folder)
            if folder == output / "probs":
                found.folders.append(folder)
    _survey_youtube_vos(output / "youtube-vos", video, "youtube-vos" in set(formats), found)
    found.ours += _temp_files(output) + [p for p in [output / MANIFEST] if p.is_file()]
    return found


def _survey_youtube_vos(root: Path, video: str, writes: bool, found: Earlier) -> None:
    if not root.is_dir():
        return
    annotations = root / "Annotations"
    for folder in sorted(p for p in annotations.iterdir() if p.is_dir()) if annotations.is_dir() else []:
        for p in sorted(folder.glob("*.png")):
            if written_by_dinotools(p):
                found.ours.append(p)
            elif writes and folder.name == video:  # would mix with this run's export
                found.foreign.append(p)
        found.ours += _temp_files(folder)
        found.folders.append(folder)
    meta = root / "meta.json"
    if meta.is_file():
        if _head_is(meta, "youtube-vos"):
            found.ours.append(meta)
        elif writes:
            found.foreign.append(meta)
    found.ours += _temp_files(root)
    found.folders += [annotations, root]


def check_overwrite(earlier: Earlier, flag: str = "--output") -> None:
    """Refuse (before anything is removed) to write where files dinotools did not write would mix with
    the outputs or be replaced: one line naming the first."""
    if earlier.foreign:
        p, more = earlier.foreign[0], len(earlier.foreign) - 1
        raise InputError(f"{flag}: {p} was not written by dinotools{f' (nor {more} more file(s))' if more else ''}; "
                         f"--overwrite removes only an earlier run's outputs and the new ones would mix with it: "
                         f"move it away or choose another folder")


def remove_earlier(earlier: Earlier, output: Path) -> None:
    """Remove what an earlier run wrote (and its spool), then the folders it made that are left empty."""
    for p in earlier.ours:
        p.unlink(missing_ok=True)
    shutil.rmtree(Path(output) / SPOOL, ignore_errors=True)
    for folder in earlier.folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (a foreign file) or gone: kept
            pass
    shown = [p for p in earlier.ours if not p.name.startswith(".")]
    if shown:
        log.warning("--overwrite: removed %d file(s) of an earlier run (%s ... %s)", len(shown), shown[0].name,
                    shown[-1].name)
