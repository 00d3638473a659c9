"""A tracking job: frames + masks in, one indexed PNG per frame out (DAVIS layout), with a report.

``run_video`` is what ``python -m dinotools.run`` does after parsing its arguments, callable per
video by a batch runner with one preloaded tracker. Order: every check that can fail (settings,
frames, masks, every output path) before the backbone loads; then the run record, tracking,
writing, the exports and the report, and only then the record removed (a kill before that
leaves a run that ``--resume`` finishes).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, List, Optional, Union

from dinotools._env import kill_point
from dinotools.errors import Interrupted, UserError
from dinotools.io.exports import SPOOL, export_paths, video_name
from dinotools.io.frames import open_frames
from dinotools.io.paths import remove_created
from dinotools.runs import record
from dinotools.runs.preflight import (
    check_frame_params,
    check_masks,
    check_outputs,
    prepare_output,
    remove_earlier_outputs,
)
from dinotools.runs.report import RunReport
from dinotools.runs.settings import RunSettings, build_tracker
from dinotools.runs.writing import finish_exports, run_job

log = logging.getLogger(__name__)

__all__ = ["run_video", "run_job", "prepare_output", "check_masks"]


def run_video(settings: RunSettings, frames, mask, output, *, resume: bool = False, overwrite: bool = False,
              progress: Union[bool, Callable] = True, tracker=None, initializer=None,
              before_write: Optional[Callable[[], None]] = None) -> RunReport:
    """Track one video as ``python -m dinotools.run`` does: checks, resume point, run record, tracking, finish.

    ``frames``: a folder of images or a video file; ``mask``: a mask file or folder (None with an
    automatic ``settings.init``); ``output``: the folder of label PNGs. ``tracker``: a tracker
    built by ``build_tracker(settings)`` (reused across videos; built here when None);
    ``initializer``: the automatic initializer to use (built from ``settings`` when None).
    ``progress``: show a frames bar (silent when stderr is not a terminal), or a callable
    ``(total, initial) -> bar`` (see ``report.progress_bar``) for a batch runner's own bars.
    Returns the run's report; ``report.extra["nothing_to_resume"]`` is set when ``resume`` found
    a finished run (every frame written, no run record, every export asked for there);
    ``report.extra["finished_exports"]`` when it found every frame written by an unfinished run
    and only finished its exports (none tracked). ``overwrite`` removes only what an earlier
    dinotools run wrote and refuses files it did not write (``dinotools.runs.earlier``).
    Raises ``UserError`` for anything the user can fix and ``Interrupted`` (a ``KeyboardInterrupt``)
    saying what is written and how to continue.
    ``before_write``: called before each frame's files are written (a batch's check that it still
    owns the output folder; what it raises stops the run).
    """
    from dinotools.registry import create_initializer

    output = Path(output)
    if resume and overwrite:
        raise UserError("--resume continues an interrupted run and --overwrite starts again: give one of them")
    settings.check()
    if resume and (settings.init != "file" or settings.overlay is not None):
        raise UserError("--resume works with --init file and without --overlay (an mp4 cannot be continued)")
    if str(output) == "":
        raise UserError("--output needs a folder name, got ''")
    save_probs = settings.probs_dir(output)
    source = open_frames(frames, strict=settings.strict)
    if settings.max_frames is not None:
        source.limit(settings.max_frames)
    check_frame_params(settings, source)
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
            from dinotools.initializers.file import FileInitializer

            masks = FileInitializer(mask).masks(source.names)
    check_masks(masks, source)  # before the backbone loads: a bad mask should not cost minutes
    run_record = record.run_record(settings, frames, mask, len(source), save_probs, masks)
    created = check_outputs(settings, source, frames, mask, output, save_probs, overwrite=overwrite, resume=resume)
    video = video_name(frames)
    try:
        start = 0
        resuming_record = resume and record.read_record(output) is not None
        if resume:
            start = record.resume_point(output, source.names, run_record)
            if start == len(source) and not resuming_record and _exports_done(output, video, settings.formats):
                return RunReport(extra={"nothing_to_resume": True, "resumed_from": start})
        if tracker is None and start < len(source):
            tracker = build_tracker(settings)
    except BaseException:
        remove_created(created)  # nothing was written: leave the disk as it was
        raise
    if overwrite:
        remove_earlier_outputs(output, save_probs, video, settings.formats)
    if record.remove_temp_files(output, save_probs, *_export_folders(output, video)):
        log.info("removed temp files an interrupted writer left in %s", output)
    if start == len(source):  # every frame has its PNG: the exports (and report) may still be owed
        if before_write is not None:  # a batch that no longer owns the folder writes nothing
            before_write()
        report = finish_exports(source, output, formats=settings.formats, video=video)
        return _finish(report, settings, output)
    if not resuming_record:
        record.write_manifest(output, run_record)  # marks the run unfinished until it completes
    try:
        report = run_job(
            tracker, source, masks, output, overlay=settings.overlay, batch_size=settings.batch_size,
            initializer=initializer if settings.init != "file" else None, discover_every=settings.discover_every,
            progress=progress, prefetch=settings.prefetch, workers=settings.backbone_workers, save_probs=save_probs,
            start=start, formats=settings.formats, video=video_name(frames), before_write=before_write,
        )
    except KeyboardInterrupt as exc:
        _forget_empty_run(output, resuming_record)
        raise Interrupted(_how_to_continue(exc, settings, output), getattr(exc, "signum", 2)) from None
    except BaseException:
        _forget_empty_run(output, resuming_record)
        raise
    return _finish(report, settings, output)


def _finish(report: RunReport, settings: RunSettings, output: Path) -> RunReport:
    """The last outputs, then the run record goes: a kill before this point leaves a run to resume."""
    if settings.report is not None:
        report.save(settings.report)
    kill_point("finish")  # tests only: a kill after every output, before the record is removed
    record.finish(output)
    return report


def _export_folders(output: Path, video: str) -> List[Path]:
    """Folders an export writes into besides ``output`` (where a killed writer may leave temp files)."""
    root = export_paths(output, video)["youtube-vos"]
    return [root, root / "Annotations" / video]


def _exports_done(output: Path, video: str, formats) -> bool:
    """Every export asked for is there and no spool is left: a finished run (its record is gone)."""
    paths = export_paths(output, video)
    wanted = [paths[f] / "meta.json" if f == "youtube-vos" else paths[f] for f in formats if f != "png"]
    return all(p.is_file() for p in wanted) and not (output / SPOOL).exists()


def _forget_empty_run(output: Path, resuming_record: bool) -> None:
    """A run that wrote nothing leaves no record, unless the record is an earlier run's (never removed)."""
    if not resuming_record and not any(output.glob("*.png")):
        record.finish(output)


def _how_to_continue(exc: KeyboardInterrupt, settings: RunSettings, output: Path) -> str:
    """What an interrupted run leaves and the command that continues it, in one line."""
    cause = getattr(exc, "message", "interrupted")
    written = sum(1 for _ in output.glob("*.png"))
    if written == 0:
        return f"{cause} before any frame was written; nothing to resume"
    how = ("rerun with --resume (same settings, no --overwrite) to continue" if settings.init == "file"
           and not settings.overlay else "rerun with --resume and without --overlay to continue (a video cannot be "
           "continued)" if settings.init == "file" else "runs with an automatic --init cannot be resumed: rerun "
           "with --overwrite")
    return f"{cause}: {written} complete frame(s) in {output}; {how}"
