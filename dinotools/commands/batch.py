"""``python -m dinotools.batch``: track many videos (a DAVIS root or a list file), locally or on Ray."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional

from dinotools.commands.common import HelpFormatter, Parser, path_arg, run_command, setup_logging
from dinotools.commands.run import add_tracking_arguments, settings_from_args
from dinotools.commands.signals import NAMES
from dinotools.errors import UserError

DAVIS_INPUTS = ("JPEGImages", "Annotations", "ImageSets")  # a batch output never holds nor lies inside these


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m dinotools.batch", formatter_class=HelpFormatter,
        description="Track many videos: OUTPUT/<name>/<frame>.png as dinotools.run writes them, and "
                    "OUTPUT/batch.json with each video's status. Rerun the same command to continue: finished "
                    "videos are skipped, partial ones resumed. Exit code 0: all done; 3: some failed; 2: bad input.",
    )
    src = p.add_argument_group("videos (one of --davis, --list)")
    which = src.add_mutually_exclusive_group(required=True)
    which.add_argument("--davis", type=path_arg, metavar="ROOT",
                       help="DAVIS root: JPEGImages/<res>/<seq>/ frames, Annotations/<res>/<seq>/ masks")
    which.add_argument("--list", type=path_arg, metavar="FILE",
                       help="CSV (frames,mask,name) or JSONL ({\"frames\", \"mask\", \"name\"}) list of videos; "
                            "frames: a folder or a video file; mask: a file (frame 0) or a folder (per frame); "
                            "relative paths are relative to the list file")
    src.add_argument("--sequences", nargs="+", metavar="SEQ", help="with --davis: only these sequences")
    src.add_argument("--set", dest="split", metavar="NAME", help="with --davis: the sequences of ImageSets/.../NAME.txt")
    src.add_argument("--resolution", default="480p", help="with --davis: JPEGImages/<resolution> (default 480p)")
    src.add_argument("--davis-masks", choices=["first", "all"], default="first",
                     help="with --davis: the first annotation only (semi-supervised protocol), or every annotation "
                          "file as the mask of its frame (layouts giving objects where they first appear); "
                          "default first")
    out = p.add_argument_group("output and engine")
    out.add_argument("--output", type=path_arg, required=True, help="OUTPUT/<name>/<frame>.png and OUTPUT/batch.json")
    out.add_argument("--overwrite", action="store_true", help="track every video again, replacing its outputs")
    out.add_argument("--engine", choices=["local", "ray"], default="local",
                     help="local (default): this machine, no extra install; ray: pip install 'dinotools[ray]'")
    out.add_argument("--workers", type=int, default=1,
                     help="videos tracked at once (default 1): processes (local) or actors (ray), each loading the "
                          "backbone once")
    out.add_argument("--cpus-per-worker", type=float, default=None,
                     help="CPU cores (torch threads) per worker (default: an equal share of this machine's or "
                          "a Ray started here; 1 on a Ray cluster)")
    out.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per Ray actor (default 0; e.g. 1 with --device cuda)")
    out.add_argument("--ray-address", metavar="ADDR",
                     help="Ray cluster to join ('auto': the one `ray start` made on this node); default: start a "
                          "local Ray for this batch")
    out.add_argument("--retries", type=int, default=1,
                     help="times a video whose worker died (killed, out of memory) is resumed on a new worker "
                          "before it is recorded as failed (default 1)")
    out.add_argument("--max-frames", type=int, metavar="N", help="track only the first N frames of each video")
    out.add_argument("--save-probs", action="store_const", const=True, default=None,
                     help="also write per-frame probabilities (.npz) to OUTPUT/<name>/probs")
    add_tracking_arguments(p)
    add_points_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    return p


def add_points_arguments(p: argparse.ArgumentParser) -> None:
    """``--points`` and the point tracker's parameters the mask options do not already name (its table:
    ``PointSettings``); with ``--points`` only the options given count, the rest are the point tracker's."""
    from dinotools.runs.point_settings import PointSettings
    from dinotools.runs.settings import tracker_fields

    pts = p.add_argument_group("points (--points: OUTPUT/<name>.npz tracks, as python -m dinotools.points writes)")
    pts.add_argument("--points", action="store_true",
                     help="track query points instead of masks (the list file's mask column is then not used)")
    pts.add_argument("--grid", type=int, metavar="N", help="with --points: an N x N grid of queries on frame 0")
    pts.add_argument("--queries", type=path_arg, metavar="DIR",
                     help="with --points: DIR/<video name>.csv (t,x,y) for each video")
    taken = {a.dest for a in p._actions}
    for f in tracker_fields(PointSettings):
        if f.name not in taken:
            pts.add_argument("--" + f.name.replace("_", "-"), default=None, help="with --points: " + f.metadata["help"],
                             **f.metadata["option"])


def _given(parser: argparse.ArgumentParser, argv: Optional[List[str]]) -> dict:
    """The options on the command line (not their defaults): --points must not take the mask tracker's."""
    saved = [(a, a.default) for a in parser._actions]
    for a, _ in saved:
        a.default = argparse.SUPPRESS
    try:
        return vars(parser.parse_args(argv))
    finally:
        for a, default in saved:
            a.default = default


def point_settings(given: dict):
    from dinotools.commands.common import parse_kv
    from dinotools.runs.point_settings import PointSettings

    names = {f for f in PointSettings.__dataclass_fields__ if f not in ("backbone_args", "queries_dir")}
    settings = PointSettings(**{k: v for k, v in given.items() if k in names})
    settings.queries_dir = given.get("queries")
    settings.backbone_args = parse_kv(given.get("backbone_arg", []), "--backbone-arg")
    return settings


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    def stopped(exc: KeyboardInterrupt) -> str:
        return (f"{NAMES.get(getattr(exc, 'signum', 2), 'interrupted')} stopped the batch; finished videos and "
                f"frames are kept: rerun the same command to continue ({args.output / 'batch.json'})")

    return run_command(lambda: _run(args, lambda: _given(parser, argv)), interrupted=stopped)


def _run(args, given: Callable[[], dict] = dict) -> int:
    from dinotools.batch.listfile import list_videos
    from dinotools.batch.run import run_batch
    from dinotools.batch.sources import davis_videos

    for flag in ("davis", "list", "output"):
        if getattr(args, flag) == "":
            raise UserError(f"--{flag} needs a path, got ''")
    if args.list is not None and (args.sequences or args.split):
        raise UserError("--sequences and --set select DAVIS sequences: use them with --davis, not --list")
    if args.retries < 0:
        raise UserError(f"--retries must be >= 0, got {args.retries}")
    if not args.points and (args.grid is not None or args.queries is not None):
        raise UserError("--grid and --queries are for --points")
    if args.points and (args.save_probs or args.formats):
        raise UserError("--save-probs and --format are for mask batches, not --points")
    settings = point_settings(given()) if args.points else settings_from_args(args)
    if args.davis is not None and not args.points:  # DAVIS annotations mark unlabelled pixels 255: background
        settings.init_args.setdefault("void", 255)
    videos = (list_videos(args.list) if args.list is not None else
              davis_videos(args.davis, args.resolution, args.sequences, args.split, args.davis_masks))
    result = run_batch(
        settings, videos, args.output, engine=args.engine, workers=args.workers, overwrite=args.overwrite,
        progress=not args.no_progress, ray_address=args.ray_address, cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker, retries=args.retries,
        input_folders=[args.davis / d for d in DAVIS_INPUTS] if args.davis is not None else (),
    )
    print(result.line())
    print(f"record: {result.output / 'batch.json'}")
    for name, error in result.failed:
        print(f"failed: {name}: {error}", file=sys.stderr)
    return result.exit_code


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
