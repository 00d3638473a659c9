"""A point-tracking job: frames + queries in, one tracks ``.npz`` (and an optional trail overlay) out.

``run_points_video`` is what ``python -m dinotools.points`` does after parsing its arguments, and
what ``batch --points`` calls per video with one preloaded tracker. Order, as for mask runs
(``runs.job.run_video``): every check that can fail before the backbone loads; the run record
(``runs.point_record``); tracking; the tracks written; the record removed. A run that stops
(an error, Ctrl-C, SIGTERM) writes the frames done with ``complete=False`` and the tracker's
state, so ``resume=True`` continues it; tracks the target disk refuses go to the rescue folder.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Union

import numpy as np

from dinotools.errors import Interrupted, UserError
from dinotools.io.frames import open_frames
from dinotools.io.tracks import PointTracks, read_tracks, write_tracks
from dinotools.runs import point_record as rec
from dinotools.runs.point_preflight import check_writable, first_frame_size, write_or_rescue
from dinotools.runs.point_settings import PointSettings, build_point_tracker
from dinotools.runs.report import RunReport, progress_bar

log = logging.getLogger(__name__)


def run_points_video(settings: PointSettings, frames, queries: Optional[Path], output, *, resume: bool = False,
                     overwrite: bool = False, progress: Union[bool, Callable] = True, tracker=None,
                     notes: Optional[List[str]] = None,
                     before_write: Optional[Callable[[], None]] = None) -> Tuple[Optional[PointTracks], RunReport]:
    """Track the points of one video into ``output`` (``.npz``; ``settings.overlay``/``report`` beside).

    ``queries``: a CSV (t,x,y) or None with ``settings.grid``. ``tracker``: one built by
    ``build_point_tracker(settings)`` (built here when None). ``progress``: a bar, or a callable
    ``(total, initial) -> bar``. ``notes``: gets a sentence for the error line when a stopped run
    kept its frames. ``before_write``: called before the tracks (or the state to resume) are written (a
    batch's check that it still owns the output; what it raises stops the run). Returns ``(tracks, report)``; ``(None, report)`` with ``report.extra
    ["nothing_to_resume"]`` when ``resume`` found the tracks complete already.
    """
    from dinotools.io.queries import grid_queries, read_queries

    notes = notes if notes is not None else []
    output = Path(output)
    settings.check()
    if resume and overwrite:
        raise UserError("--resume continues an interrupted run and --overwrite starts again: give one of them")
    if (queries is None) == (settings.grid is None):
        raise UserError("give exactly one of --queries FILE.csv or --grid N")
    if resume and settings.overlay is not None:
        raise UserError("--resume works without --overlay (an mp4 cannot be continued)")
    saved = rec.read_record(output) if str(output) else None
    if saved is not None and not (resume or overwrite):
        raise UserError(f"{output} holds the tracks of an interrupted run: pass --resume to continue it or "
                        f"--overwrite to start again")
    check_writable(output, "output", (".npz",), overwrite, exists_ok=resume)
    if settings.overlay is not None:
        check_writable(settings.overlay, "overlay", (".mp4",), overwrite)
        if settings.overlay.resolve() == output.resolve():
            raise UserError("--overlay and --output must be different files")
    if settings.report is not None:
        check_writable(settings.report, "report", (".json",), True)
    source = open_frames(frames)
    if settings.max_frames is not None:
        source.limit(settings.max_frames)
    size = first_frame_size(source)
    points = grid_queries(settings.grid, size) if queries is None else read_queries(queries, size, len(source))
    record = rec.point_record(settings, frames, points, len(source))
    earlier = None
    if resume and saved is not None:
        rec.compare(output, saved, record)
        earlier = read_tracks(output) if output.exists() else None
    elif resume and output.exists():
        done = read_tracks(output)
        if done.complete:
            return None, RunReport(extra={"nothing_to_resume": True, "resumed_from": len(done.frame_names)})
        raise UserError(f"cannot resume {output}: it holds partial tracks but no run record; pass --overwrite")
    if tracker is None:  # after the cheap checks: a bad CSV should not cost a model load
        tracker = build_point_tracker(settings)
    state = None
    if earlier is not None and earlier.frame_names:
        state = rec.load_state(output, tracker)
        if state.next_index != len(earlier.frame_names):
            raise UserError(f"cannot resume {output}: its tracks end at frame {len(earlier.frame_names)} but the "
                            f"saved tracker state at frame {state.next_index}; pass --overwrite to start again")
    else:
        earlier = None
        rec.finish(output)  # an earlier record (--overwrite) or one of a run that saved nothing
    for stale in output.parent.glob(f".{output.name}.*.tmp"):  # a writer killed mid-write (io.tracks' temp names)
        stale.unlink(missing_ok=True)
    rec.write_record(output, record)
    try:
        tracks, report = _track(tracker, source, points, size, settings, output, state, earlier, progress, notes,
                                before_write)
    except KeyboardInterrupt as exc:
        # The sentence in ``notes`` (what was kept, how to continue) goes after this message.
        raise Interrupted(getattr(exc, "message", "interrupted by Ctrl-C"), getattr(exc, "signum", 2)) from None
    rec.finish(output)
    if settings.report is not None:
        report.save(settings.report)
    return tracks, report


def _track(tracker, source, queries, size, settings: PointSettings, output: Path, state, earlier, progress, notes,
           before_write=None):
    """The frame loop: tracks gathered in ``[N,T,2]`` arrays, the state snapshotted after each frame."""
    from dinotools.io.trails import TrailWriter
    from dinotools.pipeline.engine import default_workers
    from dinotools.pipeline.point_loop import track_points

    n, names = len(queries), source.names
    start = 0 if earlier is None else len(earlier.frame_names)
    tracks = np.full((n, max(len(names), start), 2), np.nan, np.float32)
    visible = np.zeros(tracks.shape[:2], bool)
    if earlier is not None:
        tracks[:, :start], visible[:, :start] = earlier.tracks, earlier.visible
    report = RunReport(extra={"engine": "pipelined" if settings.prefetch > 0 else "plain", "queries": n})
    if start:
        report.extra["resumed_from"] = start
    if settings.prefetch > 0:
        report.extra["backbone_workers"] = settings.backbone_workers or default_workers(tracker)
    overlay = (TrailWriter(settings.overlay, n, trail=settings.trail, hide_occluded=settings.hide_occluded)
               if settings.overlay else None)
    bar = (progress(len(names), start) if callable(progress)
           else progress_bar(len(names), initial=start, enabled=bool(progress)))
    state = state if state is not None else tracker.new_state(queries)
    checkpoint = (start, rec.snapshot(state))  # (frames done, the state after them): replaced in one assignment
    results = track_points(tracker, rec.frames_from(source, start), queries, batch_size=settings.batch_size, prefetch=settings.prefetch,
                           workers=settings.backbone_workers, stats=report, state=state, with_frames=True)
    save = lambda done, complete: _save(output, tracks, visible, queries, names, done, size, complete)  # noqa: E731
    try:
        for frame, res in results:
            if res.index >= tracks.shape[1]:  # a video's frame count is the container's estimate
                tracks = np.concatenate([tracks, np.full_like(tracks, np.nan)], axis=1)
                visible = np.concatenate([visible, np.zeros_like(visible)], axis=1)
            tracks[:, res.index], visible[:, res.index] = res.xy, res.visible
            if overlay is not None:
                overlay.write(frame, res.xy, res.visible)
            checkpoint = (res.index + 1, rec.snapshot(state))
            report.frame_done()
            bar.update(1)
    except BaseException:
        results.close()
        if before_write is not None:
            before_write()  # a writer of a replaced batch stops here, writing nothing
        done, snap = checkpoint
        resumable = done > 0 and not settings.overlay  # an mp4 cannot be continued
        if resumable:
            try:
                rec.save_state(output, snap)
            except OSError as exc:  # a full disk: the tracks below matter more (the rescue keeps them)
                log.warning("cannot save the tracker state for --resume (%s)", exc.strerror or exc)
                resumable = False
        if not resumable:
            rec.finish(output)
        if done:
            _, rescued = save(done, False)
            how = "; rerun with --resume to continue" if resumable and not rescued else ""
            notes.append(f" (the {done} frames tracked before it are saved in {rescued or output}, "
                         f"complete=False{how})")
        raise
    finally:
        bar.close()
        if overlay is not None:
            overlay.close()
    if before_write is not None:
        before_write()
    out, rescued = save(checkpoint[0], True)
    if rescued is not None:
        raise UserError(f"cannot write {output}: the disk refused it; the complete tracks are kept in {rescued}: "
                        f"free space and move that file to {output}")
    return out, report


def _save(path: Path, tracks, visible, queries, names, done: int, frame_size, complete: bool):
    """``(tracks, rescue path or None)``: the first ``done`` frames written to ``path`` (or rescued)."""
    out = PointTracks(tracks[:, :done], visible[:, :done], np.asarray(queries, np.float64), list(names[:done]),
                      tuple(frame_size), complete)
    return out, write_or_rescue(write_tracks, path, out)
