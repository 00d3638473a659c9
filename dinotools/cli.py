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
    io.add_argument("--resume", action="store_true",
                    help="continue an interrupted run in --output from its first missing frame (same settings)")
    io.add_argument("--save-probs", nargs="?", const=True, default=None, metavar="DIR",
                    help="also write per-frame probabilities as compressed .npz (default DIR: OUTPUT/probs)")
    io.add_argument("--report", type=Path, metavar="FILE", help="write the run report (JSON) here")
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
    tp.add_argument("--prefetch", type=int, default=2,
                    help="batches decoded and encoded ahead in background threads (0: plain loop, one thread)")
    tp.add_argument("--backbone-workers", type=int, default=None, metavar="N",
                    help="threads encoding batches at once when --prefetch > 0, each with an equal share of the "
                         "CPU threads (default: 2 on CPU, 1 on CUDA)")
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


def _build(kind: str, name: str, factory, **kwargs):
    """``factory(name, **kwargs)``; an unexpected error becomes one line naming the component."""
    from .engine import first_line, passes_through

    try:
        return factory(name, **kwargs)
    except (UserError, ComponentError):
        raise
    except Exception as exc:  # noqa: BLE001 - plugins may raise anything
        if passes_through(exc):
            raise
        raise ComponentError(f"{kind} {name!r} failed to build: {type(exc).__name__}: {first_line(exc)}") from exc


def make_tracker(args):
    from .registry import create_backbone, create_propagator, create_tracker

    backbone_kwargs = {}
    if args.weights is not None:
        backbone_kwargs["weights"] = args.weights
    if args.dtype is not None:
        backbone_kwargs["dtype"] = args.dtype
    backbone, propagator = args.backbone, args.propagator
    if args.tracker == "label-propagation":  # built one by one so that a failure names its component
        backbone = _build("backbone", backbone, create_backbone, device=args.device, **backbone_kwargs)
        propagator = _build("propagator", propagator, create_propagator)
    return _build(
        "tracker", args.tracker, create_tracker, backbone=backbone, propagator=propagator,
        max_context=args.max_context, size=args.size, shape=args.shape, topk=args.topk, temperature=args.temperature,
        short_side=args.short_side, upsample=args.upsample, mask_downsample=args.mask_downsample,
        device=args.device, backbone_kwargs=backbone_kwargs,
    )


def cmd_track(args) -> int:
    from . import resume
    from .io.frames import open_frames
    from .job import prepare_output, run_job
    from .registry import create_initializer

    if (args.frames is None) == (args.video is None):
        raise UserError("give exactly one of --frames DIR or --video FILE")
    if args.output is None:
        raise UserError("--output DIR is required")
    if args.resume and args.overwrite:
        raise UserError("--resume continues an interrupted run and --overwrite starts again: give one of them")
    if args.prefetch < 0 or args.batch_size < 1:
        raise UserError(f"--prefetch must be >= 0 and --batch-size >= 1 (got {args.prefetch}, {args.batch_size})")
    if args.backbone_workers is not None and args.backbone_workers < 1:
        raise UserError(f"--backbone-workers must be >= 1 (got {args.backbone_workers})")
    if args.save_probs is not None:
        args.save_probs = args.output / "probs" if args.save_probs is True else Path(args.save_probs)
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
    _check_masks(masks)  # before the backbone loads: a bad mask should not cost minutes
    settings = resume.run_settings(args, len(source))
    start = 0
    if args.resume:
        if initializer is not None or args.overlay is not None:
            raise UserError("--resume works with --init file and without --overlay (an mp4 cannot be continued)")
        start = resume.resume_point(args.output, source.names, settings)
        if start == len(source):
            resume.finish(args.output)
            print(f"nothing to resume: all {start} frames have outputs in {args.output}")
            return 0
    tracker = make_tracker(args)
    prepare_output(args.output, args.overwrite, resume=args.resume)
    if resume.remove_temp_files(args.output):
        log.info("removed temp files an interrupted writer left in %s", args.output)
    resume.write_manifest(args.output, settings)  # marks the run unfinished until it completes
    try:
        report = run_job(
            tracker, source, masks, args.output, overlay=args.overlay, batch_size=args.batch_size,
            initializer=initializer, discover_every=args.discover_every, progress=not args.no_progress,
            prefetch=args.prefetch, workers=args.backbone_workers, save_probs=args.save_probs, start=start,
        )
    except BaseException:
        if not any(args.output.glob("*.png")):  # nothing to resume: leave the folder as it was
            resume.finish(args.output)
        raise
    resume.finish(args.output)
    where = f" (resumed at frame {start})" if start else ""
    print(f"wrote {args.output}{where}: {report.line()}")
    if args.report is not None:
        report.save(args.report)
    return 0


def _check_masks(masks: dict) -> None:
    """Unreadable masks, masks without objects, ids an indexed PNG cannot hold: one line each."""
    from .io.masks import MAX_PNG_ID, check_mask
    from .loop import load_masks

    for arr, where in load_masks(masks).values():
        check_mask(arr, where)
        if arr.max() > MAX_PNG_ID:
            raise UserError(f"{where} has object id {int(arr.max())}; the indexed PNG outputs hold ids up to "
                            f"{MAX_PNG_ID}: renumber the objects")


def _component(stage: str, args) -> str:
    """The component a failed stage belongs to, named as the user chose it."""
    return {
        "backbone": f"backbone {args.backbone!r}",
        "propagate": f"tracker {args.tracker!r} (propagator {args.propagator!r})",
        "initializer": f"initializer {args.init!r}",
    }.get(stage, stage)


def _out_of_memory(exc, args) -> str:
    from .engine import first_line

    return (
        f"out of GPU memory ({first_line(exc)[:160]}). To use less: a smaller --short-side (now {args.short_side}), "
        f"--dtype bf16 (now {args.dtype or 'fp32'}), a shorter --max-context (now {args.max_context}), "
        f"--batch-size 1 (now {args.batch_size}), --prefetch 1 (now {args.prefetch})"
        + (f", --backbone-workers 1 (now {args.backbone_workers})" if (args.backbone_workers or 1) > 1 else "")
    )


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
        if _ext.cpu_isas():
            print(f"CPU kernel: {_ext.cpu_isa()} (available here: {', '.join(_ext.cpu_isas())}); runs on "
                  f"{_ext.cpu_threads_probe()} of torch's {torch.get_num_threads()} threads")
        if _ext.ISA_ERROR:
            print(f"  -> {_ext.ISA_ERROR}")
    else:
        print(f"compiled operator dinotools._C: NOT available: {_ext.LOAD_ERROR}")
        print(f"  -> propagator 'auto' uses the PyTorch implementation; {_ext.BUILD_HINT}")
    from .propagators import auto_propagator

    auto = auto_propagator()
    choice = getattr(auto, "name", type(auto).__name__)
    if choice == "auto":  # per-call dispatch: the build has no CUDA kernels
        choice = "fused on CPU inputs, torch (PyTorch) on CUDA inputs"
    print(f"propagator 'auto' resolves to: {choice}")
    return 0


def setup_logging(verbose: int) -> None:
    """-v info, -vv debug; warnings otherwise (shared by every dinotools command line)."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
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
        print("interrupted; frames written so far are complete: rerun with --resume to continue", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - only known kinds are turned into one line
        message = _one_line(exc, args)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


def _one_line(exc: Exception, args) -> Optional[str]:
    """The one-line message for a failed component or GPU memory exhaustion; None for anything else."""
    from .engine import StageError

    if isinstance(exc, StageError):
        log.debug("traceback of the failed component", exc_info=exc.original)
        return f"{exc.describe(_component(exc.stage, args))} (-vv shows the traceback)"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return _out_of_memory(exc, args)
    return None


def entry() -> None:
    raise SystemExit(main())
