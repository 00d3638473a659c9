"""``python -m dinotools.run``: track a video from its mask(s); list components; show build info; demo."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from .errors import UserError
from .registry import ComponentError

log = logging.getLogger("dinotools")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dinotools.run",
        description="Segment and track objects in a video by propagating masks through DINOv3 features.",
    )
    what = p.add_argument_group("what to do (default: track)")
    what.add_argument("--list", action="store_true", help="list registered components and where each comes from")
    what.add_argument("--info", action="store_true", help="print build and runtime information")
    what.add_argument("--demo", action="store_true", help="track the bundled synthetic clip and score it")
    io = p.add_argument_group("input and output")
    io.add_argument("--frames", type=Path, help="folder of frames (jpg/png, natural sort)")
    io.add_argument("--video", type=Path, help="video file (read with OpenCV)")
    io.add_argument("--mask", type=Path, help="mask file for frame 0, or a folder of per-frame masks")
    io.add_argument("--output", type=Path, help="output folder: one indexed PNG per frame, named like the frame")
    io.add_argument("--overlay", type=Path, help="also write an overlay video (mp4) here")
    io.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    comp = p.add_argument_group("components")
    comp.add_argument("--backbone", default="vitl16", help="backbone name (default vitl16; `baseline` needs no weights)")
    comp.add_argument("--weights", help="backbone weights file or folder (default: discover)")
    comp.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="backbone compute dtype")
    comp.add_argument("--propagator", default="auto", help="propagator name (auto, fused, torch, reference)")
    comp.add_argument("--tracker", default="label-propagation", help="tracker name")
    comp.add_argument("--init", default="file", help="mask initializer (file: --mask; sam2: automatic masks)")
    comp.add_argument("--init-arg", action="append", default=[], metavar="KEY=VALUE",
                      help="keyword argument for the initializer (repeatable)")
    comp.add_argument("--discover-every", type=int, help="look for new objects every N frames (needs --init)")
    comp.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    tp = p.add_argument_group("tracker parameters (notebook defaults)")
    tp.add_argument("--max-context", type=int, default=7)
    tp.add_argument("--size", type=float, default=12, help="neighbourhood radius in patches")
    tp.add_argument("--shape", choices=["circle", "square"], default="circle")
    tp.add_argument("--topk", type=int, default=5)
    tp.add_argument("--temperature", type=float, default=0.2)
    tp.add_argument("--short-side", type=int, default=960)
    tp.add_argument("--upsample", choices=["nearest", "bilinear"], default="nearest")
    tp.add_argument("--mask-downsample", choices=["nearest-exact", "nearest"], default="nearest-exact")
    tp.add_argument("--batch-size", type=int, default=1, help="frames per backbone batch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    return p


def _kv(items: List[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--init-arg expects KEY=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        out[key.replace("-", "_")] = value
    return out


def make_tracker(args):
    from .registry import create_tracker

    backbone_kwargs = {}
    if args.weights is not None:
        backbone_kwargs["weights"] = args.weights
    if args.dtype is not None:
        backbone_kwargs["dtype"] = args.dtype
    return create_tracker(
        args.tracker, backbone=args.backbone, propagator=args.propagator, max_context=args.max_context,
        size=args.size, shape=args.shape, topk=args.topk, temperature=args.temperature,
        short_side=args.short_side, upsample=args.upsample, mask_downsample=args.mask_downsample,
        device=args.device, backbone_kwargs=backbone_kwargs,
    )


def cmd_track(args) -> int:
    from .io.frames import open_frames
    from .job import prepare_output, run_job
    from .registry import create_initializer

    if (args.frames is None) == (args.video is None):
        raise UserError("give exactly one of --frames DIR or --video FILE")
    if args.output is None:
        raise UserError("--output DIR is required")
    source = open_frames(args.frames or args.video)
    masks, initializer = {}, None
    if args.init == "file":
        if args.mask is None:
            raise UserError("--mask FILE|DIR is required (or choose an automatic --init such as sam2)")
        masks = create_initializer("file", path=args.mask, **_kv(args.init_arg)).masks(source.names)
        if args.discover_every:
            raise UserError("--discover-every needs an automatic initializer (--init sam2)")
    else:
        initializer = create_initializer(args.init, **_kv(args.init_arg))
        if args.mask is not None:
            from .initializers import FileInitializer

            masks = FileInitializer(args.mask).masks(source.names)
    tracker = make_tracker(args)
    prepare_output(args.output, args.overwrite)
    report = run_job(
        tracker, source, masks, args.output, overlay=args.overlay, batch_size=args.batch_size,
        initializer=initializer, discover_every=args.discover_every, progress=not args.no_progress,
    )
    print(f"wrote {args.output}: {report.line()}")
    return 0


def cmd_list() -> int:
    from .registry import list_components

    rows = [(c.kind, c.name, c.source, "ok" if c.ok else f"FAILED: {c.error}") for c in list_components()]
    widths = [max(len(r[i]) for r in rows + [("kind", "name", "source", "")]) for i in range(3)]
    print(f"{'kind':<{widths[0]}}  {'name':<{widths[1]}}  {'source':<{widths[2]}}  status")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    return 0


def cmd_info() -> int:
    import platform

    import torch

    from . import __version__, _ext

    print(f"dinotools {__version__}, python {platform.python_version()}, torch {torch.__version__}")
    print(f"torch CUDA: {torch.version.cuda or 'none (CPU build)'}; GPU available: {torch.cuda.is_available()}")
    if _ext.HAS_EXT:
        fused = hasattr(torch.ops.dinotools, "topk_propagate")
        devices = "CPU" + (" + CUDA" if _ext.CUDA_BUILT else " only (built without CUDA)")
        print(f"compiled operator dinotools._C: loaded; fused propagation: {'yes' if fused else 'no'} ({devices})")
    else:
        print(f"compiled operator dinotools._C: NOT available: {_ext.LOAD_ERROR}")
        print(f"  -> propagator 'auto' uses the PyTorch implementation; {_ext.BUILD_HINT}")
    from .propagators import auto_propagator

    print(f"propagator 'auto' resolves to: {type(auto_propagator()).__name__}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    try:
        if args.list:
            return cmd_list()
        if args.info:
            return cmd_info()
        if args.demo:
            from .demo_cli import cmd_demo

            return cmd_demo(args)
        return cmd_track(args)
    except (UserError, ComponentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; frames written so far are complete", file=sys.stderr)
        return 130


def entry() -> None:
    raise SystemExit(main())
