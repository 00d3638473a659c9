"""``python -m dinotools.run``: track a video from its mask(s); list components; show build info; demo."""
from __future__ import annotations

import argparse
import logging
from dataclasses import fields
from pathlib import Path
from typing import List, Optional

from dinotools.commands.common import (  # noqa: F401 - path_arg, Parser, ...: importable from here as before
    KV_HELP,
    HelpFormatter,
    Parser,
    parse_kv,
    path_arg,
    run_command,
    setup_logging,
)
from dinotools.errors import UserError
from dinotools.runs.settings import RunSettings, describe_failure, tracker_fields

log = logging.getLogger("dinotools")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m dinotools.run", formatter_class=HelpFormatter,
        description="Segment and track objects in a video by propagating masks through DINOv3 features.",
    )
    what = p.add_argument_group("what to do (default: track)")
    what.add_argument("--list", action="store_true", help="list registered components and where each comes from")
    what.add_argument("--info", action="store_true", help="print build and runtime information (which device, "
                      "whether the fused operator is built)")
    what.add_argument("--demo", action="store_true", help="track the bundled synthetic clip and score it")
    io = p.add_argument_group("input and output")
    io.add_argument("--frames", type=path_arg, help="folder of frames (jpg/png/..., natural sort)")
    io.add_argument("--video", type=path_arg, help="video file (read with OpenCV)")
    io.add_argument("--mask", type=path_arg, help="mask file for frame 0, or a folder of per-frame masks")
    io.add_argument("--output", type=path_arg, help="output folder: one indexed PNG per frame, named like the frame")
    io.add_argument("--overlay", type=path_arg, help="also write an overlay video (.mp4, .avi, .mkv, .mov) here")
    io.add_argument("--overwrite", action="store_true",
                    help="write into a non-empty output folder: what an earlier dinotools run wrote there (label "
                         "PNGs, exports, probabilities) is removed first; files it did not write are refused, "
                         "never deleted")
    io.add_argument("--resume", action="store_true",
                    help="continue an interrupted run in --output from its first missing frame (same settings)")
    io.add_argument("--save-probs", nargs="?", const=True, default=None, metavar="DIR",
                    help="also write per-frame probabilities as compressed .npz (default DIR: OUTPUT/probs)")
    io.add_argument("--report", type=path_arg, metavar="FILE", help="write the run report (JSON) here")
    io.add_argument("--strict", action="store_true",
                    help="a video that decodes fewer frames than its container announces is an error "
                         "(default: a warning; the report records both counts)")
    add_tracking_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is "
                   "not a terminal)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug (default: warnings)")
    return p


def add_tracking_arguments(p: argparse.ArgumentParser) -> None:
    """The component, tracker-parameter and engine options (shared by every command that tracks videos).

    The tracker parameters come from ``RunSettings``' ``tracker_param`` fields (one option each,
    with its default and one-line meaning); ``settings_from_args`` reads every field back by name.
    """
    from dinotools.io.exports import FORMATS

    d = RunSettings()
    comp = p.add_argument_group("components")
    comp.add_argument("--backbone", default=d.backbone, help="backbone name (`baseline` needs no weights; "
                      "--list shows all)")
    comp.add_argument("--weights", help="backbone weights file, folder or URL; `random` for tests (default: "
                      "discover in $DINOTOOLS_WEIGHTS, $DINOV3_LOCATION, the torch hub and Hugging Face caches)")
    comp.add_argument("--seed", type=int, default=d.seed, help="seed of --weights random (kept in the run record)")
    comp.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="backbone compute dtype (default: fp32)")
    comp.add_argument("--propagator", default=d.propagator, help="propagator name (auto, fused, torch, reference)")
    comp.add_argument("--tracker", default=d.tracker, help="tracker name")
    comp.add_argument("--init", default=d.init, help="mask initializer (file: --mask; sam2: automatic masks)")
    comp.add_argument("--init-arg", action="append", default=[], metavar="KEY=VALUE",
                      help="keyword argument for the initializer (repeatable; " + KV_HELP + ")")
    comp.add_argument("--discover-every", type=int, help="look for new objects every N frames (needs an automatic "
                      "--init; default: never)")
    comp.add_argument("--device", default=d.device, help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1, ...")
    tp = p.add_argument_group("tracker parameters (notebook defaults)")
    for f in tracker_fields():
        tp.add_argument("--" + f.name.replace("_", "-"), default=f.default, help=f.metadata["help"],
                        **f.metadata["option"])
    tp.add_argument("--refine", metavar="NAME", help="refiner turning patch-grid predictions into full-resolution "
                    "masks: nearest (default), bilinear, guided (edge-aware), sam2 (plugin); see --list")
    tp.add_argument("--refine-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="keyword argument for the refiner (repeatable), e.g. eps=0.001 (" + KV_HELP + ")")
    out = p.add_argument_group("exports")
    out.add_argument("--format", action="append", dest="formats", metavar="FORMAT",
                     choices=FORMATS,
                     help="also write the results in this format (repeatable; the label PNGs are always written): "
                          "coco (RLE JSON, needs pycocotools), youtube-vos (Annotations/ + meta.json), objects "
                          "(per-object tracks JSON); see python -m dinotools.convert")
    eng = p.add_argument_group("engine")
    eng.add_argument("--batch-size", type=int, default=d.batch_size, help="frames per backbone batch")
    eng.add_argument("--prefetch", type=int, default=d.prefetch,
                     help="batches decoded and encoded ahead in background threads (0: plain loop, one thread)")
    eng.add_argument("--backbone-workers", type=int, default=None, metavar="N",
                     help="threads encoding batches at once when --prefetch > 0, each with an equal share of the "
                          "CPU threads (default: 2 on CPU, 1 on CUDA)")


def settings_from_args(args) -> RunSettings:
    """The ``RunSettings`` of parsed arguments (every field found on ``args`` by name)."""
    values = {f.name: getattr(args, f.name) for f in fields(RunSettings) if hasattr(args, f.name)}
    values["init_args"] = parse_kv(getattr(args, "init_arg", []))
    values["refine_args"] = parse_kv(getattr(args, "refine_arg", []), "--refine-arg")
    if getattr(args, "formats", None) is None:
        values.pop("formats", None)  # the default: png only
    if getattr(args, "save_probs", None) not in (None, True, ""):
        values["save_probs"] = Path(args.save_probs)
    return RunSettings(**values)


def cmd_track(args) -> int:
    from dinotools.runs.job import run_video

    if (args.frames is None) == (args.video is None):
        raise UserError("give exactly one of --frames DIR or --video FILE")
    if args.output is None:
        raise UserError("--output DIR is required")
    for flag in ("frames", "video", "mask", "output", "overlay", "report", "save_probs"):
        if getattr(args, flag, None) == "":
            raise UserError(f"--{flag.replace('_', '-')} needs a path, got '' (an empty string)")
    if args.video is not None and args.video.is_dir():
        raise UserError(f"--video {args.video} is a folder: give a video file, or --frames for a folder of images")
    settings = settings_from_args(args)
    report = run_video(settings, args.frames or args.video, args.mask, args.output, resume=args.resume,
                       overwrite=args.overwrite, progress=not args.no_progress)
    if report.extra.get("nothing_to_resume"):
        print(f"nothing to resume: all {report.extra['resumed_from']} frames have outputs in {args.output}")
        return 0
    if report.extra.get("finished_exports"):  # every frame was written: only the exports (and report) were owed
        print(f"finished {args.output}: every frame had its PNG; the exports and the report are written")
        return 0
    start = report.extra.get("resumed_from", 0)
    where = f" (resumed at frame {start})" if start else ""
    print(f"wrote {args.output}{where}: {report.line()}")
    return 0


def cmd_list() -> int:
    from dinotools.registry import list_components

    rows = [(c.kind, c.name, c.source, "ok" if c.ok else f"FAILED: {c.error}") for c in list_components()]
    widths = [max(len(r[i]) for r in rows + [("kind", "name", "source", "")]) for i in range(3)]
    print(f"{'kind':<{widths[0]}}  {'name':<{widths[1]}}  {'source':<{widths[2]}}  status")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    return 0


def cmd_info() -> int:
    import platform

    import torch

    from dinotools import __version__, _ext

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
    from dinotools.ops.propagators import auto_propagator

    auto = auto_propagator()
    choice = getattr(auto, "name", type(auto).__name__)
    if choice == "auto":  # per-call dispatch: the build has no CUDA kernels
        choice = "fused on CPU inputs, torch (PyTorch) on CUDA inputs"
    print(f"propagator 'auto' resolves to: {choice}")
    from dinotools.ops.devices import describe_device, resolve_device

    auto = describe_device(resolve_device("auto"))
    print(f"device 'auto' (the default) resolves to: {auto}" + ("" if "cuda" in auto else " (no CUDA GPU visible)"))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)

    def body() -> int:
        if args.list:
            return cmd_list()
        if args.info:
            return cmd_info()
        if args.demo:
            from dinotools.commands.demo import cmd_demo

            return cmd_demo(settings_from_args(args), args.output, progress=not args.no_progress)
        return cmd_track(args)

    return run_command(body, describe=lambda exc: describe_failure(exc, RunSettings(**_known_settings(args))))


def _known_settings(args) -> dict:
    """The settings an error message can name (without re-parsing what may have failed)."""
    return {f.name: getattr(args, f.name) for f in fields(RunSettings) if hasattr(args, f.name) and f.name != "init_args"}


def entry() -> None:
    raise SystemExit(main())
