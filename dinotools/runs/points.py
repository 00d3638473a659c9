"""A point-tracking job: frames + queries in, one tracks ``.npz`` (and an optional trail overlay) out."""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np

from dinotools.io.tracks import PointTracks, write_tracks
from dinotools.io.trails import TrailWriter
from dinotools.pipeline.engine import default_workers
from dinotools.pipeline.point_loop import track_points
from dinotools.runs.report import RunReport, progress_bar


def run_points(tracker, source, queries: np.ndarray, frame_size, args,
               notes: List[str]) -> Tuple[PointTracks, RunReport]:
    """Track ``queries [N,3]`` through ``source`` and write ``args.output`` (and ``args.overlay``).

    The tracks are gathered in ``[N,T,2]`` arrays (the output itself; the tracker's state stays
    flat). When tracking stops early (a corrupt frame, Ctrl-C), the frames already tracked are
    written with ``complete=False`` and ``notes`` gets a sentence saying so, for the error line.
    """
    n, names = len(queries), source.names
    tracks = np.full((n, len(names), 2), np.nan, np.float32)
    visible = np.zeros((n, len(names)), bool)
    report = RunReport(extra={"engine": "pipelined" if args.prefetch > 0 else "plain", "queries": n})
    if args.prefetch > 0:
        report.extra["backbone_workers"] = args.backbone_workers or default_workers(tracker)
    overlay = TrailWriter(args.overlay, n, trail=args.trail, hide_occluded=args.hide_occluded) if args.overlay else None
    bar = progress_bar(len(names), enabled=not args.no_progress)
    done = 0
    results = track_points(tracker, source, queries, batch_size=args.batch_size, prefetch=args.prefetch,
                           workers=args.backbone_workers, stats=report, with_frames=True)
    try:
        for frame, res in results:
            if res.index >= tracks.shape[1]:  # a video's frame count is the container's estimate
                tracks = np.concatenate([tracks, np.full_like(tracks, np.nan)], axis=1)
                visible = np.concatenate([visible, np.zeros_like(visible)], axis=1)
            tracks[:, res.index], visible[:, res.index] = res.xy, res.visible
            if overlay is not None:
                overlay.write(frame, res.xy, res.visible)
            done = res.index + 1
            report.frame_done()
            bar.update(done - bar.n)
    except BaseException:
        results.close()
        if done:
            _save(args.output, tracks, visible, queries, source.names, done, frame_size, complete=False)
            notes.append(f" (the {done} frames tracked before it are saved in {args.output}, complete=False)")
        raise
    finally:
        bar.close()
        if overlay is not None:
            overlay.close()
    return _save(args.output, tracks, visible, queries, source.names, done, frame_size, complete=True), report


def _save(path: Path, tracks, visible, queries, names, done: int, frame_size, *, complete: bool) -> PointTracks:
    out = PointTracks(tracks[:, :done], visible[:, :done], np.asarray(queries, np.float64), list(names[:done]),
                      tuple(frame_size), complete)
    write_tracks(path, out)
    return out
