"""``python -m dinotools.batch``: track many videos (a DAVIS root or a list file), locally or on Ray."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from dinotools.commands.run import (
    HelpFormatter,
    Parser,
    add_tracking_arguments,
    path_arg,
    settings_from_args,
    setup_logging,
)
from dinotools.commands.signals import NAMES, terminate_as_interrupt
from dinotools.errors import UserError
from dinotools.registry import ComponentError

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
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    with terminate_as_interrupt():  # SIGTERM/SIGHUP stop the batch as Ctrl-C does
        return _run(args)


def _run(args) -> int:
    from dinotools.batch.listfile import list_videos
    from dinotools.batch.run import run_batch
    from dinotools.batch.sources import BatchInputError, davis_videos

    try:
        for flag in ("davis", "list", "output"):
            if getattr(args, flag) == "":
                raise UserError(f"--{flag} needs a path, got ''")
        if args.list is not None and (args.sequences or args.split):
            raise UserError("--sequences and --set select DAVIS sequences: use them with --davis, not --list")
        if args.retries < 0:
            raise UserError(f"--retries must be >= 0, got {args.retries}")
        settings = settings_from_args(args)
        if args.davis is not None:  # DAVIS annotations mark unlabelled pixels 255 ("void"): background
            settings.init_args.setdefault("void", 255)
        videos = (list_videos(args.list) if args.list is not None else
                  davis_videos(args.davis, args.resolution, args.sequences, args.split, args.davis_masks))
        result = run_batch(
            settings, videos, args.output, engine=args.engine, workers=args.workers, overwrite=args.overwrite,
            progress=not args.no_progress, ray_address=args.ray_address, cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=args.gpus_per_worker, retries=args.retries,
            input_folders=[args.davis / d for d in DAVIS_INPUTS] if args.davis is not None else (),
        )
    except BatchInputError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except (UserError, ComponentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"{NAMES.get(getattr(exc, 'signum', 2), 'interrupted')} stopped the batch; finished videos and "
              f"frames are kept: rerun the same command to continue ({args.output / 'batch.json'})", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)
    print(result.line())
    print(f"record: {result.output / 'batch.json'}")
    for name, error in result.failed:
        print(f"failed: {name}: {error}", file=sys.stderr)
    return result.exit_code


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
