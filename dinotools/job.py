"""A tracking job: frames + masks in, one indexed PNG per frame out (DAVIS layout), with a report."""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from .engine import Writer, default_workers
from .errors import InputError, UserError
from .io.exports import Exports, video_name
from .io.frames import FrameSource
from .io.masks import MAX_PNG_ID, write_mask
from .io.overlay import OverlayWriter
from .io.probs import write_probs
from .loop import load_masks, track_video
from .report import Progress, RunReport
from .resume import rebuild
from .settings import RunSettings, build_tracker

log = logging.getLogger(__name__)


def prepare_output(output: Path, overwrite: bool, resume: bool = False) -> None:
    """Create ``output``; refuse a non-empty folder unless ``overwrite`` or ``resume`` (finished work is
    kept), and one this process cannot write into (checked before any frame is tracked)."""
    if output.exists() and not output.is_dir():
        raise InputError(f"output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not (overwrite or resume):
        raise InputError(f"output folder {output} is not empty; pass --overwrite to replace its files "
                         f"or --resume to continue an interrupted run")
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as exc:
        raise InputError(f"cannot write into output folder {output}: {exc.strerror or exc}") from None


def run_video(settings: RunSettings, frames, mask, output, *, resume: bool = False, overwrite: bool = False,
              progress: bool = True, tracker=None, initializer=None) -> RunReport:
    """Track one video as ``python -m dinotools.run`` does: checks, resume point, run record, tracking, finish.

    ``frames``: a folder of images or a video file; ``mask``: a mask file or folder (None with an
    automatic ``settings.init``); ``output``: the folder of label PNGs. ``tracker``: a tracker
    built by ``build_tracker(settings)`` (reused across videos; built here when None);
    ``initializer``: the automatic initializer to use (built from ``settings`` when None).
    Returns the run's report; ``report.extra["nothing_to_resume"]`` is set when ``resume`` found
    every frame written already. Raises ``UserError`` for anything the user can fix.
    """
    from . import resume as record
    from .io.frames import open_frames
    from .registry import create_initializer

    output = Path(output)
    if resume and overwrite:
        raise UserError("--resume continues an interrupted run and --overwrite starts again: give one of them")
    settings.check()
    save_probs = settings.probs_dir(output)
    source = open_frames(frames)
    masks = {}
    if settings.init == "file":
        if mask is None:
            raise UserError("--mask FILE|DIR is required (or choose an automatic --init such as sam2)")
        masks = create_initializer("file", path=mask, **settings.init_args).masks(source.names)
        if settings.discover_every:
            raise UserError("--discover-every needs an automatic initializer (--init sam2)")
    else:
        if initializer is None:
            initializer = create_initializer(settings.init, **settings.init_args)
        if mask is not None:
            from .initializers import FileInitializer

            masks = FileInitializer(mask).masks(source.names)
    check_masks(masks)  # before the backbone loads: a bad mask should not cost minutes
    run_record = record.run_record(settings, frames, mask, len(source), save_probs)
    start = 0
    if resume:
        if settings.init != "file" or settings.overlay is not None:
            raise UserError("--resume works with --init file and without --overlay (an mp4 cannot be continued)")
        start = record.resume_point(output, source.names, run_record)
        if start == len(source):
            record.finish(output)
            report = RunReport(extra={"nothing_to_resume": True, "resumed_from": start})
            return report
    if tracker is None:
        tracker = build_tracker(settings)
    prepare_output(output, overwrite, resume=resume)
    if record.remove_temp_files(output):
        log.info("removed temp files an interrupted writer left in %s", output)
    record.write_manifest(output, run_record)  # marks the run unfinished until it completes
    try:
        report = run_job(
            tracker, source, masks, output, overlay=settings.overlay, batch_size=settings.batch_size,
            initializer=initializer if settings.init != "file" else None, discover_every=settings.discover_every,
            progress=progress, prefetch=settings.prefetch, workers=settings.backbone_workers, save_probs=save_probs,
            start=start, formats=settings.formats, video=video_name(frames),
        )
    except BaseException:
        if not any(output.glob("*.png")):  # nothing to resume: leave the folder as it was
            record.finish(output)
        raise
    record.finish(output)
    if settings.report is not None:
        report.save(settings.report)
    return report


def check_masks(masks: dict) -> None:
    """Unreadable masks, masks without objects, ids an indexed PNG cannot hold: one line each."""
    from .io.masks import check_mask

    for arr, where in load_masks(masks).values():
        check_mask(arr, where)
        if arr.max() > MAX_PNG_ID:
            raise UserError(f"{where} has object id {int(arr.max())}; the indexed PNG outputs hold ids up to "
                            f"{MAX_PNG_ID}: renumber the objects")


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
    progress: bool = True,
    prefetch: int = 2,
    workers: Optional[int] = None,
    save_probs: Optional[Path] = None,
    start: int = 0,
    formats: Sequence[str] = ("png",),
    video: Optional[str] = None,
) -> RunReport:
    """Track ``source`` from ``masks`` ({index: array or path}) and write ``output/<name>.png``.

    ``prefetch`` batches are decoded and encoded ahead in background threads and PNGs are written
    by a background thread (``prefetch=0``: the plain loop, every stage in this thread);
    ``workers`` backbone threads encode (default ``dinotools.engine.default_workers``).
    ``save_probs``: folder for per-frame ``<name>.npz`` probabilities (``dinotools.io.probs``).
    ``start > 0`` resumes: frames ``< start`` have outputs, the context is rebuilt from them
    (``dinotools.resume``). Memory stays flat: only bounded queues and the context are held.
    ``formats``: exports besides the PNGs (``dinotools.io.exports``) of the video named ``video``
    (default: the output folder's name); on resume they are rebuilt from the PNGs of frames < start.
    """
    report = RunReport(extra={"engine": "pipelined" if prefetch > 0 else "plain"})
    if prefetch > 0:
        report.extra["backbone_workers"] = default_workers(tracker) if workers is None else workers
    names = source.names
    overlay_writer = OverlayWriter(overlay) if overlay else None
    frames = _KeepFrames(source, keep=overlay_writer is not None)
    state = None
    if start > 0:
        if overlay_writer is not None or initializer is not None:
            raise InputError("--resume cannot continue an overlay video or an automatic initializer's run")
        given = load_masks({i: m for i, m in masks.items() if i < start})
        state, frames = rebuild(tracker, source, given, output, names, start, batch_size)
        masks = {i: m for i, m in masks.items() if i >= start}
        report.extra["resumed_from"] = start
    if save_probs is not None:
        save_probs.mkdir(parents=True, exist_ok=True)
    files = [p.name for p in source.files] if getattr(source, "files", None) else None
    exports = Exports(formats, output, video or Path(output).name, names, files)
    exports.start(start)
    writer = Writer(depth=max(4, prefetch * batch_size) if prefetch > 0 else 0)
    bar = Progress(len(names), enabled=progress)
    results = _results(tracker, frames, masks, batch_size=batch_size, initializer=initializer,
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
            job = _FrameOut(output, names[res.index], res.labels, res.ids, raw, save_probs,
                            overlay_writer, frames.take(res.index) if overlay_writer else None,
                            (exports, res.index) if exports else None)
            writer.submit(job.write, report)
            report.frame_done()
            bar.update(res.index + 1)
    except BaseException:
        _close(results)
        try:
            writer.close()  # finished frames are still written
        except Exception as exc:  # noqa: BLE001 - the error already raised says more
            log.debug("writer error after the run failed: %s", exc)
        exports.spool.close()
        if not any(Path(output).glob("*.png")):  # nothing to resume: no spool left behind either
            exports.spool.remove()
        raise
    finally:
        bar.close()
    writer.close()
    if overlay_writer is not None:
        overlay_writer.close()
    if exports:
        t0 = time.perf_counter()
        try:
            exports.finish()
        except OSError as exc:
            raise InputError(f"cannot write the exports into {output}: {exc.strerror or exc}; every frame's PNG is "
                             f"written: fix the disk and rerun with --resume to write them") from None
        report.add("write", time.perf_counter() - t0)
    return report


def _results(tracker, frames, masks, *, return_probs, **engine):
    """Per-frame results through the single loop; trackers with only ``track()`` use that."""
    if all(hasattr(tracker, a) for a in ("new_state", "encode", "step")):
        return track_video(tracker, frames, masks, return_probs=return_probs, **engine)
    return tracker.track(frames, masks=masks, return_probs=return_probs)


def _close(results) -> None:
    close = getattr(results, "close", None)
    if close is not None:
        close()


class _FrameOut:
    """One frame's outputs, written in the writer thread: probabilities and exports first, then the
    PNG (so a PNG on disk means its ``.npz`` and export records are there too), then the overlay frame."""

    def __init__(self, output, name, labels, ids, raw, probs_dir, overlay, frame, export=None) -> None:
        self.output, self.name, self.labels, self.ids, self.raw = output, name, labels, ids, raw
        self.probs_dir, self.overlay, self.frame, self.export = probs_dir, overlay, frame, export

    def write(self, report: RunReport) -> None:
        t0 = time.perf_counter()
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
