"""``--resume``: find where an interrupted run stopped and rebuild the tracking context from its outputs.

Semantics (how a resumed run differs from an uninterrupted one). Outputs are written in frame
order, each atomically, so the label PNGs on disk are always frames ``0..k-1``, complete. The
resumed run starts at frame ``k`` with a context of the SAME frames an uninterrupted run would
hold there: every mask frame before ``k`` (permanent anchors) and the last ``max_context``
other frames before ``k``. Their features are recomputed from the frames (identical for a
deterministic backbone; a ViT may differ in the last float bits with another batch make-up).
Their label probabilities differ:

- the first mask frame: one-hot of its mask, exactly as in an uninterrupted run;
- a later mask frame: one-hot of its written label PNG, where an uninterrupted run keeps the
  propagated soft probabilities outside the mask's pixels (one-hot inside);
- the recent frames: one-hot of their written label PNGs (downsampled to the patch grid with the
  tracker's ``mask_downsample``), where an uninterrupted run keeps the raw soft probabilities.

So frames ``k..`` can differ where the soft context mattered (object borders, ambiguous
regions). After ``max_context`` frames the recent context is soft again, but a difference,
once made, can carry on through later predictions. Runs with an automatic initializer
(discovery) cannot be resumed: their objects' anchors are not on disk.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np

from dinotools.errors import InputError
from dinotools.io.masks import atomic_save, check_mask, fit_mask, object_ids, read_mask
from dinotools.io.schemas import check_json
from dinotools.runs.record_schema import run_record_schema
from dinotools.trackers.state import ContextFrame

log = logging.getLogger(__name__)

MANIFEST = ".dinotools-run.json"  # present while a run is unfinished; removed when it completes
# Keys every record has had; later versions added more (compared only when the record has them).
REQUIRED = ("frames", "num_frames", "mask", "backbone", "weights", "dtype", "propagator", "tracker", "max_context",
            "size", "shape", "topk", "temperature", "short_side", "upsample", "mask_downsample", "save_probs")


def mask_digest(masks: Dict[int, object]) -> str:
    """SHA-256 over the frame indices and the bytes of the masks (files or arrays): an edited mask is a change."""
    h = hashlib.sha256()
    for index in sorted(masks):
        m = masks[index]
        h.update(str(index).encode())
        if isinstance(m, (str, Path)):
            with open(m, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            arr = np.ascontiguousarray(m)
            h.update(f"{arr.dtype}{arr.shape}".encode() + arr.tobytes())
    return h.hexdigest()


def run_record(settings, frames, mask, num_frames: int, save_probs, masks=None) -> dict:
    """What decides a run's outputs (compared on ``--resume``): the ``RunSettings`` fields marked
    ``record``, the frames and mask paths, the frame count, the probabilities folder, the masks'
    digest and the seed of random weights."""
    from dinotools.runs.settings import recorded_fields

    path = lambda p: str(Path(p).resolve()) if p is not None else None  # noqa: E731
    values = {k: getattr(settings, k, None) for k in recorded_fields()}
    values.update(frames=path(frames), num_frames=num_frames, mask=path(mask), save_probs=path(save_probs))
    values["seed"] = getattr(settings, "seed", None) if getattr(settings, "weights", None) == "random" else None
    if masks is not None:
        values["mask_digest"] = mask_digest(masks)
    return json.loads(json.dumps(values, default=str))  # as it reads back from the file


def write_manifest(output: Path, settings: dict) -> None:
    """Write the run record atomically (a kill leaves the old record or the new one, never half)."""
    try:
        atomic_save(output / MANIFEST, lambda f: f.write(json.dumps(settings, indent=1).encode()))
    except OSError as exc:
        raise InputError(f"cannot write the run record {output / MANIFEST}: {exc.strerror or exc}") from None


def read_record(output: Path):
    """The run record in ``output`` (None when there is none); a damaged one is an error, never ignored."""
    path = output / MANIFEST
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise InputError(f"cannot resume in {output}: its run record {MANIFEST} is unreadable ({exc}); the outputs "
                         f"cannot be matched to their settings: pass --overwrite to start again") from None
    return check_json(saved, run_record_schema(REQUIRED), path, hint=(
        f"cannot resume in {output}: its run record is damaged, so the outputs cannot be matched to their "
        f"settings: pass --overwrite to start again"))


def finish(output: Path) -> None:
    """The run completed: nothing left to resume."""
    (output / MANIFEST).unlink(missing_ok=True)


def remove_temp_files(*folders: Path) -> int:
    """Delete temp files a killed writer left (``.<name>.<random>.tmp``; never a ``.png``)."""
    stale = [p for folder in folders if folder is not None and folder.is_dir()
             for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink()
    return len(stale)


def resume_point(output: Path, names: List[str], record: dict) -> int:
    """Index of the first frame without an output (``len(names)``: all done).

    An unfinished run's record is always compared with ``record`` (this run's settings), whatever
    is on disk: a mismatch is an error and the record is left as it was.
    """
    if not output.is_dir():
        return 0
    saved = read_record(output)
    if saved is not None:
        changed = [f"{key} {saved.get(key)!r} -> {record.get(key)!r}" for key in record
                   if key in saved and saved[key] != record[key]]
        if changed:
            raise InputError(f"cannot resume in {output}: settings differ from the interrupted run "
                             f"({'; '.join(changed)}); resume with the same settings, or pass --overwrite to "
                             f"start again")
    done = {p.stem for p in output.glob("*.png")}
    k = next((i for i, n in enumerate(names) if n not in done), len(names))
    if not done or (k == len(names) and saved is None):
        return k
    if saved is None:
        raise InputError(f"cannot resume in {output}: it holds {len(done)} outputs but no record of an unfinished "
                         f"run ({MANIFEST}); pass --overwrite to start again")
    later = [n for n in names[k + 1:] if n in done]
    if later:
        raise InputError(f"cannot resume in {output}: frame {names[k]} has no output but later frames do "
                         f"(e.g. {later[0]}); pass --overwrite to start again")
    return k


def _frames_at(source, k: int, wanted: set) -> Tuple[Dict[int, np.ndarray], Iterator[np.ndarray]]:
    """The ``wanted`` frames (indices < k) and an iterator over frames ``k..``."""
    files = getattr(source, "files", None)
    if files is not None:  # a folder: read any frame directly
        return {i: source.read(i) for i in sorted(wanted)}, (source.read(i) for i in range(k, len(files)))
    if hasattr(source, "__getitem__"):
        return {i: np.asarray(source[i]) for i in wanted}, (np.asarray(source[i]) for i in range(k, len(source)))
    it = iter(source)  # a video: decode sequentially up to k (seeking is not frame-exact)
    got = {}
    for i in range(k):
        frame = next(it)
        if i in wanted:
            got[i] = frame
    return got, it


def rebuild(tracker, source, given: Dict[int, tuple], output: Path, names: List[str], k: int,
            batch_size: int = 1) -> Tuple[object, Iterator[np.ndarray]]:
    """``(TrackState at frame k, frames k..)`` from the outputs of frames ``< k`` (see module doc).

    ``given``: ``{index: (mask array, description)}`` as ``loop.load_masks`` returns, frames < k.
    """
    for attr in ("new_state", "encode", "step", "max_context"):
        if not hasattr(tracker, attr):
            raise InputError(f"tracker {type(tracker).__name__} cannot resume (it has no {attr}); pass --overwrite")
    state = tracker.new_state()
    anchors = sorted(i for i in given if i < k)
    if not anchors:  # no object before k: nothing to rebuild
        state.next_index = k
        return state, _frames_at(source, k, set())[1]
    recent = [i for i in range(anchors[0] + 1, k) if i not in given][-tracker.max_context:] if tracker.max_context else []
    frames, rest = _frames_at(source, k, set(anchors) | set(recent))
    order = sorted(frames)
    feats = {}
    for s in range(0, len(order), batch_size):  # the context frames only (<= anchors + max_context)
        chunk = order[s:s + batch_size]
        for i, f in zip(chunk, tracker.encode([frames[i] for i in chunk])):
            feats[i] = f
    for i in order:
        frame_size = frames[i].shape[:2]
        state.next_index = i
        if i == anchors[0]:  # the first mask frame: exactly as an uninterrupted run starts
            mask, where = given[i]
            check_mask(mask, where)
            tracker.step(state, feats[i], frame_size, fit_mask(mask, frame_size, where))
            continue
        labels = read_mask(output / f"{names[i]}.png")
        if labels.shape != tuple(frame_size):
            raise InputError(f"output {names[i]}.png is {labels.shape[1]}x{labels.shape[0]} but the frames are "
                             f"{frame_size[1]}x{frame_size[0]}: it is not from this run; pass --overwrite")
        if i in given:
            mask, where = given[i]
            check_mask(mask, where)
            state.add_ids([j for j in object_ids(mask) if j not in state.ids])
            state.anchors.append(ContextFrame(feats[i], tracker.mask_probs(state, labels)))
        else:
            state.push_recent(ContextFrame(feats[i], tracker.mask_probs(state, labels)))
    state.next_index, state.last = k, None
    log.info("resuming at frame %d with %d anchor(s) and %d recent frame(s) rebuilt from the outputs",
             k, len(state.anchors), len(state.recent))
    return state, rest
