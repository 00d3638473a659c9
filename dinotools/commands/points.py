"""``python -m dinotools.points``: track query points through a video; tracks to ``.npz``, optional trail overlay."""
from __future__ import annotations

import argparse
import logging
from dataclasses import fields
from typing import List, Optional

import numpy as np

from dinotools.commands.common import KV_HELP, HelpFormatter, Parser, parse_kv, path_arg, run_command, setup_logging
from dinotools.errors import UserError
from dinotools.runs.point_settings import PointSettings, describe_point_failure
from dinotools.runs.settings import tracker_fields

log = logging.getLogger("dinotools")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m dinotools.points", formatter_class=HelpFormatter,
        description="Track query points through a video by matching their DINOv3 patch features (no training).",
    )
    d = PointSettings()
    io = p.add_argument_group("input and output")
    io.add_argument("--frames", type=path_arg, help="folder of frames (jpg/png, natural sort)")
    io.add_argument("--video", type=path_arg, help="video file (read with OpenCV)")
    io.add_argument("--queries", type=path_arg, help="CSV with a header t,x,y: frame index and pixel position per query")
    io.add_argument("--grid", type=int, metavar="N", help="instead of --queries: an N x N grid of points on frame 0")
    io.add_argument("--output", type=path_arg, help="tracks file to write (.npz; see dinotools.io.tracks)")
    io.add_argument("--overlay", type=path_arg, help="also write a video (.mp4) of the points and their trails")
    io.add_argument("--trail", type=int, default=d.trail, help="frames of trail drawn behind each point")
    io.add_argument("--hide-occluded", action="store_true", help="overlay: hide occluded points (default: rings)")
    io.add_argument("--overwrite", action="store_true", help="replace an existing --output/--overlay file")
    io.add_argument("--resume", action="store_true",
                    help="continue an interrupted run from its last finished frame (same settings; the tracker's "
                         "state is kept beside --output while a run is unfinished)")
    io.add_argument("--report", type=path_arg, metavar="FILE", help="write the run report (JSON) here")
    io.add_argument("--max-frames", type=int, metavar="N", help="track only the first N frames")
    add_point_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    return p


def add_point_arguments(p: argparse.ArgumentParser) -> None:
    """Component, tracker-parameter (from ``PointSettings``' table) and engine options of point tracking."""
    d = PointSettings()
    comp = p.add_argument_group("components")
    comp.add_argument("--backbone", default=d.backbone, help="backbone (`baseline` needs no weights)")
    comp.add_argument("--weights", help="backbone weights file or folder (default: discover)")
    comp.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="backbone compute dtype")
    comp.add_argument("--backbone-arg", action="append", default=[], metavar="KEY=VALUE",
                      help=f"keyword argument for the backbone, e.g. grid=4 for baseline (repeatable; {KV_HELP})")
    comp.add_argument("--tracker", default=d.tracker, help="tracker name")
    comp.add_argument("--device", default=d.device, help="cpu, cuda, cuda:1, auto, ...")
    tp = p.add_argument_group("tracker parameters (default: the tracker's own; see PointTracker)")
    for f in tracker_fields(PointSettings):
        tp.add_argument("--" + f.name.replace("_", "-"), default=f.default, help=f.metadata["help"],
                        **f.metadata["option"])
    tp.add_argument("--batch-size", type=int, default=d.batch_size, help="frames per backbone batch")
    tp.add_argument("--prefetch", type=int, default=d.prefetch, help="batches decoded and encoded ahead (0: plain "
                    "loop)")
    tp.add_argument("--backbone-workers", type=int, metavar="N", help="backbone threads when --prefetch > 0")


def point_settings_from_args(args) -> PointSettings:
    """The ``PointSettings`` of parsed arguments (every field found on ``args`` by name)."""
    values = {f.name: getattr(args, f.name) for f in fields(PointSettings) if hasattr(args, f.name)}
    values["backbone_args"] = parse_kv(getattr(args, "backbone_arg", []), "--backbone-arg")
    return PointSettings(**values)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    notes: List[str] = []  # set by the run when it saved the frames finished before an error
    settings = PointSettings(**{f.name: getattr(args, f.name) for f in fields(PointSettings)
                                if hasattr(args, f.name) and f.name != "backbone_args"})
    return run_command(lambda: _run(args, notes), describe=lambda exc: describe_point_failure(exc, settings),
                       notes=notes)


def _run(args, notes: list) -> int:
    from dinotools.runs.points import run_points_video

    if (args.frames is None) == (args.video is None):
        raise UserError("give exactly one of --frames DIR or --video FILE")
    if (args.queries is None) == (args.grid is None):
        raise UserError("give exactly one of --queries FILE.csv or --grid N")
    if args.output is None:
        raise UserError("--output FILE.npz is required")
    for flag in ("frames", "video", "queries", "overlay", "report"):
        if getattr(args, flag) == "":
            raise UserError(f"--{flag} needs a path, got '' (an empty string)")
    settings = point_settings_from_args(args)
    tracks, report = run_points_video(settings, args.frames or args.video, args.queries, args.output,
                                      resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                                      notes=notes)
    if tracks is None:
        print(f"nothing to resume: {args.output} holds complete tracks ({report.extra['resumed_from']} frames)")
        return 0
    start = report.extra.get("resumed_from", 0)
    where = f" (resumed at frame {start})" if start else ""
    print(f"wrote {args.output}{where}: {tracks.visible.shape[0]} points x {tracks.visible.shape[1]} frames, "
          f"{100 * _visible_share(tracks):.1f}% of tracked point-frames visible; {report.line()}")
    return 0


def _visible_share(tracks) -> float:
    active = np.isfinite(tracks.tracks[..., 0])
    return float(tracks.visible[active].mean()) if active.any() else 0.0


def entry() -> None:
    raise SystemExit(main())
