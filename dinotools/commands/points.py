"""``python -m dinotools.points``: track query points through a video; tracks to ``.npz``, optional trail overlay."""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import numpy as np

from dinotools.commands.run import parse_kv
from dinotools.errors import UserError
from dinotools.registry import ComponentError

log = logging.getLogger("dinotools")

# Tracker options forwarded only when given, so that the tracker's own defaults stay the single source.
TRACKER_OPTIONS = ("short_side", "radius", "topk", "temperature", "shifts", "refine_scale", "refine_radius",
                   "refine_temperature", "sim_threshold", "fb_threshold", "template_update")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dinotools.points",
        description="Track query points through a video by matching their DINOv3 patch features (no training).",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--frames", type=Path, help="folder of frames (jpg/png, natural sort)")
    io.add_argument("--video", type=Path, help="video file (read with OpenCV)")
    io.add_argument("--queries", type=Path, help="CSV with a header t,x,y: frame index and pixel position per query")
    io.add_argument("--grid", type=int, metavar="N", help="instead of --queries: an N x N grid of points on frame 0")
    io.add_argument("--output", type=Path, help="tracks file to write (.npz; see dinotools.io.tracks)")
    io.add_argument("--overlay", type=Path, help="also write a video (.mp4) of the points and their trails")
    io.add_argument("--trail", type=int, default=12, help="frames of trail drawn behind each point (default 12)")
    io.add_argument("--hide-occluded", action="store_true", help="overlay: hide occluded points (default: rings)")
    io.add_argument("--overwrite", action="store_true", help="replace an existing --output/--overlay file")
    comp = p.add_argument_group("components")
    comp.add_argument("--backbone", default="vitl16", help="backbone (default vitl16; `baseline` needs no weights)")
    comp.add_argument("--weights", help="backbone weights file or folder (default: discover)")
    comp.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="backbone compute dtype")
    comp.add_argument("--backbone-arg", action="append", default=[], metavar="KEY=VALUE",
                      help="keyword argument for the backbone, e.g. grid=4 for baseline (repeatable)")
    comp.add_argument("--tracker", default="points", help="tracker name (default points)")
    comp.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    tp = p.add_argument_group("tracker parameters (default: the tracker's own; see PointTracker)")
    tp.add_argument("--short-side", type=int, help="frames resized to this short side for the backbone")
    tp.add_argument("--radius", type=int, help="search window half-size, patches")
    tp.add_argument("--topk", type=int, help="cells in the coarse soft-argmax")
    tp.add_argument("--temperature", type=float, help="coarse soft-argmax temperature")
    tp.add_argument("--shifts", type=int, help="features at shifts x shifts sub-patch offsets (shifts^2 backbone runs)")
    tp.add_argument("--refine-scale", type=int, help="similarity upsampling for sub-patch refinement (1: off)")
    tp.add_argument("--refine-radius", type=float, help="refinement radius, grid cells")
    tp.add_argument("--refine-temperature", type=float, help="refinement soft-argmax temperature")
    tp.add_argument("--sim-threshold", type=float, help="occluded below this cosine similarity")
    tp.add_argument("--fb-threshold", type=float, help="forward-backward tolerance, patches (inf: off)")
    tp.add_argument("--template-update", type=float, help="weight of the latest feature in the template (0: off)")
    tp.add_argument("--batch-size", type=int, default=1, help="frames per backbone batch")
    tp.add_argument("--prefetch", type=int, default=2, help="batches decoded and encoded ahead (0: plain loop)")
    tp.add_argument("--backbone-workers", type=int, metavar="N", help="backbone threads when --prefetch > 0")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    return p


def check_writable(path: Path, what: str, suffixes, overwrite: bool) -> None:
    """Refuse, before any frame is tracked, an output that could not be written at the end."""
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{what} {path} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise UserError(f"{what} {path} exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {what} {path}: folder {path.parent} does not exist")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def first_frame_size(source) -> tuple:
    """``(H, W)`` of the first frame (decodes one frame; a video is reopened when tracking starts)."""
    if source.files is not None:
        return source.read(0).shape[:2]
    frames = iter(source)
    try:
        return next(frames).shape[:2]
    finally:
        frames.close()


def _built(kind: str, name: str, build):
    """``build()``; an unexpected error becomes one line naming the component."""
    from dinotools.pipeline.engine import first_line, passes_through

    try:
        return build()
    except (UserError, ComponentError):
        raise
    except Exception as exc:  # noqa: BLE001 - plugins may raise anything
        if passes_through(exc):
            raise
        raise ComponentError(f"{kind} {name!r} failed to build: {type(exc).__name__}: {first_line(exc)}") from exc


def make_tracker(args):
    from dinotools.registry import create_backbone, create_tracker

    kwargs = {k: getattr(args, k) for k in TRACKER_OPTIONS if getattr(args, k) is not None}
    backbone_kwargs = parse_kv(args.backbone_arg, "--backbone-arg")
    if args.weights is not None:
        backbone_kwargs["weights"] = args.weights
    if args.dtype is not None:
        backbone_kwargs["dtype"] = args.dtype
    backbone = _built("backbone", args.backbone,
                      lambda: create_backbone(args.backbone, device=args.device, **backbone_kwargs))
    return _built("tracker", args.tracker,
                  lambda: create_tracker(args.tracker, backbone=backbone, device=args.device, **kwargs))


def main(argv: Optional[List[str]] = None) -> int:
    from dinotools.commands.run import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    partial = []  # set by the run when it saved the frames finished before an error
    try:
        return _run(args, partial)
    except (UserError, ComponentError) as exc:
        print(f"error: {exc}{''.join(partial)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted{''.join(partial)}", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - only known kinds are turned into one line
        message = _one_line(exc, args)
        if message is None:
            raise
        print(f"error: {message}{''.join(partial)}", file=sys.stderr)
        return 2


def _one_line(exc: Exception, args) -> Optional[str]:
    from dinotools.pipeline.engine import StageError, first_line

    if isinstance(exc, StageError):
        log.debug("traceback of the failed component", exc_info=exc.original)
        who = {"backbone": f"backbone {args.backbone!r}", "propagate": f"tracker {args.tracker!r}"}
        return f"{exc.describe(who.get(exc.stage, exc.stage))} (-vv shows the traceback)"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return (f"out of GPU memory ({first_line(exc)[:160]}). To use less: a smaller --short-side, "
                f"--dtype bf16, --batch-size 1, --prefetch 1, fewer --shifts or fewer queries")
    return None


def _run(args, partial: list) -> int:
    if (args.frames is None) == (args.video is None):
        raise UserError("give exactly one of --frames DIR or --video FILE")
    if (args.queries is None) == (args.grid is None):
        raise UserError("give exactly one of --queries FILE.csv or --grid N")
    if args.output is None:
        raise UserError("--output FILE.npz is required")
    if args.batch_size < 1 or args.prefetch < 0 or args.trail < 0:
        raise UserError(f"--batch-size must be >= 1, --prefetch and --trail >= 0 "
                        f"(got {args.batch_size}, {args.prefetch}, {args.trail})")
    if args.backbone_workers is not None and args.backbone_workers < 1:
        raise UserError(f"--backbone-workers must be >= 1 (got {args.backbone_workers})")
    if args.grid is not None and args.grid < 1:
        raise UserError(f"--grid needs N >= 1, got {args.grid}")
    check_writable(args.output, "output", (".npz",), args.overwrite)
    if args.overlay is not None:
        check_writable(args.overlay, "overlay", (".mp4",), args.overwrite)
        if args.overlay.resolve() == args.output.resolve():
            raise UserError("--overlay and --output must be different files")
    from dinotools.io.frames import open_frames
    from dinotools.io.queries import grid_queries, read_queries
    from dinotools.runs.limits import check_command_params
    from dinotools.runs.points import run_points

    source = open_frames(args.frames or args.video)
    size = first_frame_size(source)
    if args.grid is not None:
        queries = grid_queries(args.grid, size)
    else:
        queries = read_queries(args.queries, size, len(source))
    check_command_params(args.tracker, {k: getattr(args, k) for k in TRACKER_OPTIONS if getattr(args, k) is not None},
                         args.backbone, parse_kv(args.backbone_arg, "--backbone-arg"))  # before the model loads
    tracker = make_tracker(args)  # after the cheap checks: a bad CSV should not cost a model load
    tracks, report = run_points(tracker, source, queries, size, args, partial)
    print(f"wrote {args.output}: {tracks.visible.shape[0]} points x {tracks.visible.shape[1]} frames, "
          f"{100 * _visible_share(tracks):.1f}% of tracked point-frames visible; {report.line()}")
    return 0


def _visible_share(tracks) -> float:
    active = np.isfinite(tracks.tracks[..., 0])
    return float(tracks.visible[active].mean()) if active.any() else 0.0


def entry() -> None:
    raise SystemExit(main())
