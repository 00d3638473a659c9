"""``--resume`` for point tracking: the run record and the tracker's state beside the tracks file.

While a run is unfinished, ``OUT.npz`` has two hidden companions in its folder:

- ``.OUT.npz.dinotools-run.json``: the settings that decide the tracks (compared on ``--resume``),
  the frames path, the frame count and the queries' digest;
- ``.OUT.npz.dinotools-state.pt``: the tracker's state after the last frame in ``OUT.npz``
  (written when the run stops: every tensor of the ``PointState``, the last frame's features
  included), so a resumed run continues exactly where the stopped one was. Tracks after the stop
  are then the uninterrupted run's, bit for bit, when the features of the later frames are too:
  always with ``--batch-size 1``; with larger batches the later frames are encoded in batches
  of another make-up, which a backbone may answer with other float rounding (the baseline
  backbone does not).

Both are removed when the run completes. The state is a ``torch.save`` of plain tensors and
numbers, read back with ``weights_only=True`` (no pickled code).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np

from dinotools.errors import InputError
from dinotools.io.masks import atomic_save

RECORD_SUFFIX = ".dinotools-run.json"
STATE_SUFFIX = ".dinotools-state.pt"


def record_path(output: Path) -> Path:
    return Path(output).with_name(f".{Path(output).name}{RECORD_SUFFIX}")


def state_path(output: Path) -> Path:
    return Path(output).with_name(f".{Path(output).name}{STATE_SUFFIX}")


def point_record(settings, frames, queries: np.ndarray, num_frames: int) -> dict:
    """What decides a points run's tracks: the recorded ``PointSettings`` fields, frames, frame count, queries."""
    from dinotools.runs.point_settings import PointSettings
    from dinotools.runs.settings import recorded_fields

    values = {k: getattr(settings, k) for k in recorded_fields(PointSettings)}
    q = np.ascontiguousarray(np.asarray(queries, np.float64))
    values.update(frames=str(Path(frames).resolve()), num_frames=num_frames,
                  queries=hashlib.sha256(q.tobytes() + str(q.shape).encode()).hexdigest())
    values["seed"] = settings.seed if settings.weights == "random" else None
    return json.loads(json.dumps(values, default=str))  # as it reads back from the file


def write_record(output: Path, record: dict) -> None:
    """Write the run record atomically (it marks the run unfinished until ``finish``)."""
    path = record_path(output)
    try:
        atomic_save(path, lambda f: f.write(json.dumps(record, indent=1).encode()))
    except OSError as exc:
        raise InputError(f"cannot write the run record {path}: {exc.strerror or exc}") from None


def read_record(output: Path) -> Optional[dict]:
    """The record of an unfinished run writing ``output`` (None when there is none); damaged: an error."""
    path = record_path(output)
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot resume {output}: its run record {path.name} is unreadable ({exc}); pass "
                         f"--overwrite to start again") from None
    if not isinstance(saved, dict):
        raise InputError(f"cannot resume {output}: its run record {path.name} is damaged; pass --overwrite")
    return saved


def compare(output: Path, saved: dict, record: dict) -> None:
    """Refuse to resume with settings or inputs other than the stopped run's."""
    changed = [f"{k} {saved.get(k)!r} -> {record.get(k)!r}" for k in record if saved.get(k) != record[k]]
    if changed:
        raise InputError(f"cannot resume {output}: settings differ from the interrupted run ({'; '.join(changed)}); "
                         f"resume with the same settings, or pass --overwrite to start again")


def finish(output: Path) -> None:
    """The run completed (or wrote nothing): nothing left to resume."""
    record_path(output).unlink(missing_ok=True)
    state_path(output).unlink(missing_ok=True)


def snapshot(state) -> dict:
    """A copy of a tracker state dataclass (tensors cloned): the state after the last finished frame.

    Taken between frames, so that a stop inside the next frame's step (which changes the state in
    place) still leaves a consistent state to save. Features tensors are replaced, never changed in
    place, so they are kept by reference (no copy of ``[h,w,D]`` per frame).
    """
    import torch

    out = {}
    for f in dataclasses.fields(state):
        v = getattr(state, f.name)
        out[f.name] = v.clone() if isinstance(v, torch.Tensor) and f.name != "prev_features" else v
    return out


def save_state(output: Path, snap: dict) -> None:
    """Write a ``snapshot`` atomically (tensors on the CPU; the device is restored on load)."""
    import torch

    plain = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in snap.items() if k != "device"}
    atomic_save(state_path(output), lambda f: torch.save(plain, f))


def load_state(output: Path, tracker):
    """The tracker state saved for ``output``, on the tracker's device (``InputError`` when missing/corrupt)."""
    import torch

    path = state_path(output)
    if not path.exists():
        raise InputError(f"cannot resume {output}: the tracker state {path.name} is missing (the run was stopped "
                         f"by a kill that saved nothing); pass --overwrite to start again")
    try:
        plain = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unreadable file means the same thing here
        raise InputError(f"cannot resume {output}: the tracker state {path.name} is unreadable ({exc}); pass "
                         f"--overwrite to start again") from None
    state = tracker.new_state(plain.pop("queries"))
    device = state.device
    for k, v in plain.items():
        setattr(state, k, v.to(device) if isinstance(v, torch.Tensor) and k != "queries" else v)
    for k in ("frame_size", "grid"):  # torch.save keeps tuples; a list would not compare equal to a tuple
        if getattr(state, k) is not None:
            setattr(state, k, tuple(getattr(state, k)))
    return state


def frames_from(source, k: int):
    """The frames ``k..`` of ``source`` (a folder: read directly; a video: decoded from the start and
    the first ``k`` dropped, since seeking is not frame-exact)."""
    if k == 0:
        return source
    if getattr(source, "files", None) is not None:
        return (source.read(i) for i in range(k, len(source)))
    it = iter(source)
    for _ in range(k):
        next(it)
    return it
