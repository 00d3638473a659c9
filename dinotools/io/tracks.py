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

from dinotools._env import kill_point
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
        kill_point(f"save:{path.name}")  # tests only: a kill while this file is written
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
                raise InputError(f"{path}: {missing[0]}: missing (not a dinotools tracks file; it lacks "
                                 f"{', '.join(missing)})")
            data = {k: z[k] for k in KEYS}
    except FileNotFoundError:
        raise InputError(f"tracks file {path} not found") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"tracks file {path} is unreadable or corrupt ({exc})") from None
    check_arrays(data, path)
    return PointTracks(data["tracks"], data["visible"], data["queries"], [str(s) for s in data["frame_names"]],
                       tuple(int(s) for s in data["frame_size"]), bool(data["complete"]))


# (dtype kinds accepted, shape with N and T as names) of each array: numpy's kinds f float, b bool,
# i/u integers, U str. Explicit checks: no schema library covers .npz arrays.
SPEC = {"tracks": ("f", ("N", "T", 2)), "visible": ("b", ("N", "T")), "queries": ("fiu", ("N", 3)),
        "frame_names": ("U", ("T",)), "frame_size": ("iu", (2,)), "complete": ("b", ())}
KINDS = {"f": "float", "b": "bool", "i": "integer", "u": "integer", "U": "str"}


def check_arrays(data: dict, path: Path) -> None:
    """``InputError("{path}: {array}: ...")`` unless the arrays have the dtypes and consistent shapes of
    the module docstring (N queries and T frames agreeing across arrays) and sensible values."""
    dims = {}
    for key, (kinds, shape) in SPEC.items():
        arr = data[key]
        if arr.dtype.kind not in kinds:
            want = " or ".join(dict.fromkeys(KINDS[k] for k in kinds))
            raise InputError(f"{path}: {key}: dtype must be {want}, got {arr.dtype}")
        want = "[" + ",".join(map(str, shape)) + "]"
        if arr.ndim != len(shape):
            raise InputError(f"{path}: {key}: shape must be {want}, got {list(arr.shape)}")
        for dim, size in zip(shape, arr.shape):
            expected = dims.setdefault(dim, size) if isinstance(dim, str) else dim
            if size != expected:
                raise InputError(f"{path}: {key}: shape must be {want} with {_dims(dims)}, got {list(arr.shape)}")
    if (data["frame_size"] < 1).any():
        raise InputError(f"{path}: frame_size: must be (H, W) >= 1, got {data['frame_size'].tolist()}")
    t = data["queries"][:, 0] if len(data["queries"]) else data["queries"][:0, 0]
    if not np.isfinite(data["queries"]).all() or (t < 0).any() or (t != np.round(t)).any():
        raise InputError(f"{path}: queries: each row must be (t, x, y) finite, t a frame index >= 0")


def _dims(dims: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items() if isinstance(k, str))
