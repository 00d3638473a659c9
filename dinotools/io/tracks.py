"""Point tracks on disk: one ``.npz`` per video, written atomically, with a reader.

Arrays in the file (``numpy.load(path)`` reads it; no pickles):

- ``tracks [N,T,2]`` float32: (x, y) in pixels of the input frames, (0, 0) the top-left corner of
  the top-left pixel; NaN on frames before the query's frame.
- ``visible [N,T]`` bool: False where occluded and before the query's frame.
- ``queries [N,3]`` float64: (t, x, y) as given.
- ``frame_names [T]`` str: the frames' file stems (or ``00000``... for a video).
- ``frame_size [2]`` int64: (H, W).
- ``complete`` bool: False when tracking stopped early (the arrays then hold the frames done).
"""
from __future__ import annotations

import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np

from dinotools.errors import InputError

KEYS = ("tracks", "visible", "queries", "frame_names", "frame_size", "complete")


@dataclass
class PointTracks:
    """The content of a tracks file; shapes as in the module docstring."""

    tracks: np.ndarray
    visible: np.ndarray
    queries: np.ndarray
    frame_names: List[str]
    frame_size: Tuple[int, int]
    complete: bool = True

    @property
    def occluded(self) -> np.ndarray:
        """``[N,T]`` bool, TAP-Vid's convention (True = occluded or not yet queried)."""
        return ~self.visible


def write_tracks(path, tracks: PointTracks) -> None:
    """Write ``tracks`` to ``path`` (``.npz``) through a temporary file and a rename: the file on disk is
    always complete, old or new."""
    path = Path(path)
    n, t = tracks.visible.shape
    if tracks.tracks.shape != (n, t, 2) or tracks.queries.shape != (n, 3) or len(tracks.frame_names) != t:
        raise ValueError(f"inconsistent tracks: tracks {tracks.tracks.shape}, visible {tracks.visible.shape}, "
                         f"queries {tracks.queries.shape}, {len(tracks.frame_names)} frame names")
    # A fresh name in the same folder (the rename is then atomic), opened like any new file (umask applies).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez_compressed(
                f, tracks=tracks.tracks.astype(np.float32), visible=tracks.visible.astype(bool),
                queries=tracks.queries.astype(np.float64), frame_names=np.asarray(tracks.frame_names, dtype=str),
                frame_size=np.asarray(tracks.frame_size, dtype=np.int64), complete=np.bool_(tracks.complete),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_tracks(path) -> PointTracks:
    """Read a file written by ``write_tracks``; a missing, corrupt or foreign file is an ``InputError``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise InputError(f"{path} is not a dinotools tracks file (missing {', '.join(missing)})")
            data = {k: z[k] for k in KEYS}
    except FileNotFoundError:
        raise InputError(f"tracks file {path} not found") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"tracks file {path} is unreadable or corrupt ({exc})") from None
    return PointTracks(data["tracks"], data["visible"], data["queries"], [str(s) for s in data["frame_names"]],
                       tuple(int(s) for s in data["frame_size"]), bool(data["complete"]))
