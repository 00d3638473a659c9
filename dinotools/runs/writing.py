"""The tracking loop of a job with its outputs: label PNGs, probabilities, overlay, progress, report."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from dinotools._env import kill_point
from dinotools.errors import InputError
from dinotools.io.exports import Exports
from dinotools.io.frames import FrameSource
from dinotools.io.masks import MAX_PNG_ID, write_mask
from dinotools.io.overlay import OverlayWriter
from dinotools.io.probs import write_probs
from dinotools.pipeline.engine import default_workers
from dinotools.pipeline.mask_loop import load_masks, track_video
from dinotools.pipeline.writer import Writer
from dinotools.runs.record import rebuild
from dinotools.runs.report import RunReport, progress_bar

log = logging.getLogger(__name__)


def run_job(
    tracker,
    source: FrameSource,
    masks: dict,
    output: Path,
    *,
    overlay: Optional[Path] = None,
    batch_size: int = 1,
    initializer=None,
    discover_every: Optional[int] = None,
    progress: Union[bool, Callable] = True,
    prefetch: int = 2,
    workers: Optional[int] = None,
    save_probs: Optional[Path] = None,
    start: int = 0,
    formats: Sequence[str] = ("png",),
    video: Optional[str] = None,
    before_write: Optional[Callable[[], None]] = None,
) -> RunReport:
    """Track ``source`` from ``masks`` ({index: array or path}) and write ``output/<name>.png``.

    ``prefetch`` batches are decoded and encoded ahead in background threads and PNGs are written
    by a background thread (``prefetch=0``: the plain loop, every stage in this thread);
    ``workers`` backbone threads encode (default ``dinotools.pipeline.engine.default_workers``).
    ``save_probs``: folder for per-frame ``<name>.npz`` probabilities (``dinotools.io.probs``).
    ``start > 0`` resumes: frames ``< start`` have outputs, the context is rebuilt from them
    (``dinotools.runs.record``). Memory stays flat: only bounded queues and the context are held.
    Every output that cannot be completely written raises ``InputError`` (frames before it are kept).
    ``formats``: exports besides the PNGs (``dinotools.io.exports``) of the video named ``video``
    (default: the output folder's name); on resume they are rebuilt from the PNGs of frames < start.
    ``before_write``: called in the writer thread before each frame's files (and the exports) are
    written; what it raises stops the run with nothing more written.
    """
    report = RunReport(extra={"engine": "pipelined" if prefetch > 0 else "plain"})
    report.extra["device"] = str(getattr(tracker, "device", "cpu"))
    if prefetch > 0:
        report.extra["backbone_workers"] = default_workers(tracker) if workers is None else workers
    overlay_writer = OverlayWriter(overlay) if overlay else None
    frames = _KeepFrames(source, keep=overlay_writer is not None)
    state = None
    if start > 0:
        if overlay_writer is not None or initializer is not None:
            raise InputError("--resume cannot continue an overlay video or an automatic initializer's run")
        given = load_masks({i: m for i, m in masks.items() if i < start})
        state, frames = rebuild(tracker, source, given, output, source.names, start, batch_size)
        masks = {i: m for i, m in masks.items() if i >= start}
        report.extra["resumed_from"] = start
    if save_probs is not None:
        try:
            save_probs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create --save-probs folder {save_probs}: {exc.strerror or exc}") from None
    files = [p.name for p in source.files] if getattr(source, "files", None) else None
    exports = Exports(formats, output, video or Path(output).name, source.names, files)
    exports.start(start)
    writer = Writer(depth=max(4, prefetch * batch_size) if prefetch > 0 else 0)
    bar = progress(len(source), start) if callable(progress) else progress_bar(
        len(source), initial=start, enabled=bool(progress))
    results = track_video(tracker, frames, masks, batch_size=batch_size, initializer=initializer,
                          discover_every=discover_every, prefetch=prefetch, workers=workers, stats=report, state=state,
                          return_probs=save_probs is not None)
    try:
        for res in results:
            top = max(res.ids, default=0)
            if top > MAX_PNG_ID:
                raise InputError(
                    f"frame {res.index} has object id {top}; indexed PNG outputs hold ids up to {MAX_PNG_ID}: "
                    f"renumber the mask's objects"
                )
            raw, res.probs = getattr(res, "raw_probs", None), None  # full-size probs are never kept
            job = _FrameOut(output, _name(source, res.index), res.labels, res.ids, raw, save_probs,
                            overlay_writer, frames.take(res.index) if overlay_writer else None,
                            (exports, res.index) if exports else None, before_write)
            writer.submit(job.write, report)
            report.frame_done()
            bar.update(1)
        writer.close()
        kill_point("exports")  # tests only: a kill between the last label PNG and the exports
        if overlay_writer is not None:
            overlay_writer.close()  # checks the video holds every frame, then renames it into place
        if exports:
            if before_write is not None:
                before_write()
            _finish_exports(exports, output, report)
    except BaseException:
        _close(results)
        try:
            writer.close()  # finished frames are still written
        except Exception as exc:  # noqa: BLE001 - the error already raised says more
            log.debug("writer error after the run failed: %s", exc)
        if overlay_writer is not None:
            overlay_writer.abort()  # an incomplete video is never left behind
        exports.spool.close()
        if not any(Path(output).glob("*.png")):  # nothing to resume: no spool left behind either
            exports.spool.remove()
        raise
    finally:
        bar.close()
    _record_decoding(source, report)
    return report


def _name(source, index: int) -> str:
    """Output name of frame ``index``: ``FrameSource.name`` (a video may decode more frames than it
    announced), else ``names[index]`` for any other source with names."""
    name = getattr(source, "name", None)
    return name(index) if callable(name) else source.names[index]


def finish_exports(source: FrameSource, output: Path, *, formats: Sequence[str] = ("png",),
                   video: Optional[str] = None) -> RunReport:
    """Finish a run whose every frame has its label PNG: rebuild the exports from the PNGs and write them.

    An interrupted run can stop between its last PNG and its exports (or while one is written);
    ``--resume`` then has no frame to track but still owes the exports. Returns a report of 0
    frames tracked, ``resumed_from`` every frame."""
    report = RunReport(extra={"resumed_from": len(source), "finished_exports": True})
    files = [p.name for p in source.files] if getattr(source, "files", None) else None
    exports = Exports(formats, output, video or Path(output).name, source.names, files)
    exports.start(len(source))  # also removes a stale spool when no export is asked for
    if exports:
        _finish_exports(exports, output, report)
    return report


def _finish_exports(exports: Exports, output: Path, report: RunReport) -> None:
    t0 = time.perf_counter()
    try:
        exports.finish()
    except OSError as exc:
        raise InputError(f"cannot write the exports into {output}: {exc.strerror or exc}; every frame's PNG is "
                         f"written: fix the disk and rerun with --resume to write them") from None
    report.add("write", time.perf_counter() - t0)


def _record_decoding(source, report: RunReport) -> None:
    """A video's announced and decoded frame counts go into the report (they differ for a damaged file)."""
    if getattr(source, "is_video", False) and source.decoded is not None:
        report.extra["frames_announced"] = source.announced
        report.extra["frames_decoded"] = source.decoded


def _close(results) -> None:
    close = getattr(results, "close", None)
    if close is not None:
        close()


class _FrameOut:
    """One frame's outputs, written in the writer thread: probabilities and exports first, then the
    PNG (so a PNG on disk means its ``.npz`` and export records are there too), then the overlay frame."""

    def __init__(self, output, name, labels, ids, raw, probs_dir, overlay, frame, export=None, before=None) -> None:
        self.output, self.name, self.labels, self.ids, self.raw, self.before = output, name, labels, ids, raw, before
        self.probs_dir, self.overlay, self.frame, self.export = probs_dir, overlay, frame, export

    def write(self, report: RunReport) -> None:
        t0 = time.perf_counter()
        if self.before is not None:
            self.before()
        path = self.output / f"{self.name}.png"
        try:
            if self.probs_dir is not None and self.raw is not None:
                path = self.probs_dir / f"{self.name}.npz"
                write_probs(path, self.raw, self.ids, self.labels.shape)
                path = self.output / f"{self.name}.png"
            if self.export is not None:
                exports, index = self.export
                exports.add(index, self.labels)
            write_mask(path, self.labels)
        except OSError as exc:
            raise InputError(
                f"cannot write {path}: {exc.strerror or exc}; frames before {self.name} are written: fix the disk "
                f"(space, permissions) and rerun with --resume"
            ) from None
        if self.overlay is not None:
            self.overlay.write(self.frame, self.labels)
        report.add("write", time.perf_counter() - t0)


class _KeepFrames:
    """Iterates a frame source, keeping frames read but not yet written (for the overlay)."""

    def __init__(self, source, keep: bool) -> None:
        self.source, self.keep, self.pending = source, keep, {}

    def __iter__(self):
        for i, frame in enumerate(self.source):
            if self.keep:
                self.pending[i] = frame
            yield frame

    def take(self, index: int):
        return self.pending.pop(index)
