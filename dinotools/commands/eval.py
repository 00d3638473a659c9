"""``python -m dinotools.eval``: score a results folder, or track a dataset and score it (with sweeps)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from dinotools.commands.common import KV_HELP, HelpFormatter, Parser, parse_kv, run_command, setup_logging
from dinotools.errors import UserError
from dinotools.eval.davis import evaluate_results
from dinotools.eval.grid import (
    GridRow,
    format_grid,
    parse_grid,
    setting_name,
)
from dinotools.eval.report import format_table, write_reports
from dinotools.io.datasets import DavisDataset
from dinotools.runs.settings import tracker_fields

# Tracker options forwarded only when given, so any registered tracker keeps its own defaults; the
# label-propagation parameters come from their one table (``RunSettings``' tracker_param fields).
TRACKER_OPTIONS = ("propagator", *(f.name for f in tracker_fields()))


def _add_tracker_options(group) -> None:
    group.add_argument("--propagator", default=None, metavar="STR",
                       help="auto, torch, reference or fused (label-propagation default: auto)")
    for f in tracker_fields():
        option = dict(f.metadata["option"])
        kind = option.pop("type", str)
        group.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None, metavar=kind.__name__.upper(),
                           help=f.metadata["help"] + ("" if f.default is None else f" (default {f.default})"), **option)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m dinotools.eval", formatter_class=HelpFormatter,
        description="DAVIS semi-supervised J&F, computed as the official davis2017-evaluation.",
        epilog=f"KEY=VALUE options (--backbone-arg, --tracker-arg, --refine-arg): {KV_HELP}.",
    )
    p.add_argument("--davis", required=True, metavar="ROOT", help="DAVIS root (Annotations/<res>/<seq>/*.png)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--results", metavar="DIR", help="score DIR/<seq>/<frame>.png")
    mode.add_argument("--track", action="store_true", help="track every sequence, then score")
    mode.add_argument("--oracle", action="store_true",
                      help="score the --refine refiner's ceiling: each ground truth downsampled to the tracker's "
                           "patch grid (nearest-exact, one-hot), refined back to full resolution (no tracking)")
    p.add_argument("--sequences", nargs="+", metavar="SEQ", help="only these sequences")
    p.add_argument("--set", default=None, dest="split", help="image set: ImageSets/2017/<set>.txt; a named set must "
                   "exist (default: val when its file exists, else every annotated sequence)")
    p.add_argument("--resolution", default="480p", help="Annotations/<resolution> (default 480p)")
    p.add_argument("--out", metavar="DIR", help="reports (and tracked PNGs) go here; default: --results DIR, "
                   "or ./eval_<tracker>_<backbone> with --track. Scores are always recomputed (the official "
                   "tool reuses CSVs it finds)")
    p.add_argument("--max-frames", type=int, metavar="N", help="use only the first N frames of each sequence")
    p.add_argument("--official-decay", action="store_true",
                   help="reproduce the official tool's uint8 decay bins (wrong beyond 256 evaluated frames)")
    t = p.add_argument_group("tracking (--track)")
    t.add_argument("--tracker", default="label-propagation", help="registered tracker (default label-propagation)")
    t.add_argument("--backbone", help="registered backbone, e.g. baseline or vits16 (required with --track)")
    t.add_argument("--backbone-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the backbone (repeatable), e.g. weights=/path/w.pth")
    t.add_argument("--tracker-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra keyword argument for the tracker (repeatable)")
    _add_tracker_options(t)
    t.add_argument("--refine", metavar="NAME",
                   help="refiner (nearest, bilinear, guided, plugins; default: the tracker's, nearest); with "
                        "--oracle: the refiner scored (default nearest)")
    t.add_argument("--refine-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the refiner (repeatable), e.g. eps=0.001")
    t.add_argument("--every", type=int, default=5, metavar="N",
                   help="with --oracle: every N-th annotated frame (default 5)")
    t.add_argument("--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1 ... "
                   "(default auto)")
    t.add_argument("--batch-size", type=int, default=1, help="frames encoded per backbone call (default 1)")
    t.add_argument("--prefetch", type=int, default=0,
                   help="batches decoded/encoded ahead in background threads (default 0)")
    t.add_argument("--backbone-workers", type=int, default=None, metavar="N",
                   help="with --prefetch: threads encoding batches at once (default: 2 on CPU, 1 on CUDA)")
    t.add_argument("--grid", nargs="+", metavar="KEY=V1,V2",
                   help="sweep tracker arguments, e.g. --grid topk=3,5 temperature=0.1,0.2 size=8,12")
    t.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="the batch runner's engine (default local; ray: pip install 'dinotools[ray]')")
    t.add_argument("--workers", type=int, default=1,
                   help="sequences tracked at once (default 1): processes (local) or Ray actors, each loading the "
                        "backbone once per setting")
    t.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join ('auto'); default: a local Ray")
    t.add_argument("--cpus-per-worker", type=float, help="CPU cores (torch threads) per worker")
    t.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per Ray actor (default 0)")
    t.add_argument("--resume", action="store_true",
                   help="continue an interrupted --track in --out: finished sequences are kept, partial ones "
                        "resumed (default: track every sequence again)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _tracker_kwargs(args) -> Dict[str, Any]:
    kwargs = {k: getattr(args, k) for k in TRACKER_OPTIONS if getattr(args, k) is not None}
    kwargs.update(parse_kv(args.tracker_arg, "--tracker-arg"))
    if args.refine is not None:
        kwargs.update(refiner=args.refine, refiner_kwargs=parse_kv(args.refine_arg, "--refine-arg"))
    elif args.refine_arg:
        raise UserError("--refine-arg needs --refine NAME (the refiner the arguments are for)")
    kwargs["device"] = args.device  # the tracker moves features and propagation there
    return kwargs


def _check_tracker_kwargs(name: str, base: Dict[str, Any], settings: List[Dict[str, Any]]) -> None:
    """Every tracker keyword (options, --tracker-arg, --grid) exists and has a usable value, before any work."""
    from dinotools.registry import REGISTRIES
    from dinotools.runs.limits import check_kwargs, check_tracker_params

    factory = REGISTRIES["tracker"].get(name)
    flags = {k: "--" + k.replace("_", "-") for k in TRACKER_OPTIONS}
    flags.update({k: f"--grid {k}=..." for k in settings[0]})
    check_kwargs("tracker", name, factory, {**base, **settings[0], "backbone": None}, flags, "--tracker-arg")
    if name == "label-propagation":
        for setting in settings:
            check_tracker_params({**base, **setting})


def cmd_results(args, dataset: DavisDataset) -> int:
    evaluation = evaluate_results(None, args.results, dataset=dataset, uint8_decay=args.official_decay)
    print(format_table(evaluation))
    paths = write_reports(evaluation, args.out or args.results)
    print(f"reports: {', '.join(str(p) for p in paths.values())}")
    return 0


def cmd_track(args, dataset: DavisDataset) -> int:
    from dinotools import create_backbone, create_tracker
    from dinotools.eval.track import (
        EvalTrackerFactory,
        describe,
        eval_settings,
        track_dataset,
    )

    if not args.backbone:
        raise UserError("--track needs --backbone NAME (e.g. baseline, or a DINOv3 variant such as vits16)")
    base = _tracker_kwargs(args)
    settings = parse_grid(args.grid) if args.grid else [{}]
    clash = sorted(set(settings[0]) & set(base) - {"device"})
    if clash:
        raise UserError(f"{', '.join(clash)} given both as an option and in --grid; give it once")
    _check_tracker_kwargs(args.tracker, base, settings)
    from dinotools.ops.devices import resolve_device
    from dinotools.registry import REGISTRIES
    from dinotools.runs.limits import check_kwargs
    from dinotools.runs.settings import build_component

    base["device"] = str(resolve_device(args.device))
    backbone_kwargs = parse_kv(args.backbone_arg, "--backbone-arg")
    check_kwargs("backbone", args.backbone, REGISTRIES["backbone"].get(args.backbone), backbone_kwargs,
                 flag="--backbone-arg")
    out_root = Path(args.out or f"eval_{args.tracker}_{args.backbone}")
    batch = {"engine": args.engine, "workers": args.workers, "ray_address": args.ray_address,
             "cpus_per_worker": args.cpus_per_worker, "gpus_per_worker": args.gpus_per_worker}
    in_process = args.engine == "local" and args.workers == 1
    # In this process one backbone serves every setting: weights are loaded once per sweep (batch
    # workers load their own, once per setting).
    backbone = build_component("backbone", args.backbone, create_backbone, device=base["device"],
                               **backbone_kwargs) if in_process else None
    rows = []
    for setting in settings:
        kwargs = {**base, **setting}
        tracker = build_component("tracker", args.tracker, create_tracker, backbone=backbone,
                                  **kwargs) if in_process else None
        factory = EvalTrackerFactory(args.tracker, args.backbone, backbone_kwargs, kwargs)
        run_settings = eval_settings(backbone=args.backbone, tracker=args.tracker, **{**backbone_kwargs, **kwargs})
        # Each setting keeps its own PNGs and reports, so any of them can be re-scored later.
        out = out_root / setting_name(setting) if args.grid else out_root
        run = track_dataset(tracker, dataset, out, batch_size=args.batch_size, prefetch=args.prefetch,
                            workers=args.backbone_workers, settings=run_settings, tracker_factory=factory,
                            resume=args.resume, progress=True, batch=batch)
        evaluation = evaluate_results(None, out, dataset=dataset, uint8_decay=args.official_decay)
        info = {"tracker": args.tracker, "backbone": args.backbone, "tracker_kwargs": kwargs,
                "tracking": run.summary()}
        write_reports(evaluation, out, extra=info)
        metrics = {**evaluation.global_metrics(), "fps": run.fps}
        rows.append(GridRow(setting, metrics))
        if args.grid:
            print(f"{setting_name(setting)}: J&F {metrics['J&F-Mean']:.4f}  J {metrics['J-Mean']:.4f}  "
                  f"F {metrics['F-Mean']:.4f}  {run.fps:.2f} fps", flush=True)
        else:
            print(format_table(evaluation, {"tracker": f"{args.tracker} on {args.backbone}, {kwargs}"}))
            print("\n".join(describe(run)))
            print(f"results and reports: {out}")
    if args.grid:
        print(format_grid(rows))
        print("\n".join(line for line in describe(run) if line.startswith("peak")))  # process-wide peaks
        summary = [{"setting": r.setting, **r.metrics} for r in rows]
        (out_root / "grid_results.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"per-setting results under {out_root}/, summary {out_root / 'grid_results.json'}")
    return 0


def cmd_oracle(args, dataset: DavisDataset) -> int:
    from dinotools.eval.oracle import davis_samples, evaluate_oracle, format_oracle
    from dinotools.ops.devices import resolve_device
    from dinotools.registry import create_refiner

    if args.every < 1:
        raise UserError(f"--every must be >= 1, got {args.every}")
    name = args.refine or "nearest"
    refiner = create_refiner(name, **parse_kv(args.refine_arg, "--refine-arg"))
    short_side = args.short_side if args.short_side is not None else 960
    result = evaluate_oracle(refiner, davis_samples(dataset, args.every), name=name, short_side=short_side,
                             device=resolve_device(args.device))
    print(format_oracle([result], f"oracle (ground truth at the patch grid, short side {short_side}, every "
                                  f"{args.every}th frame): {dataset.root}"))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)

    def body() -> int:
        if args.max_frames is not None and args.max_frames < 3:
            raise UserError("--max-frames must be >= 3 (the first and last frames are not scored)")
        dataset = DavisDataset(args.davis, args.split or "val", args.resolution, args.sequences, args.max_frames,
                               require_split=args.split is not None)
        if args.oracle:
            return cmd_oracle(args, dataset)
        return cmd_track(args, dataset) if args.track else cmd_results(args, dataset)

    return run_command(body, describe=lambda exc: _one_line(exc, args))


def _one_line(exc: Exception, args) -> Optional[str]:
    """Component failures, memory exhaustion and file-system errors as ``dinotools.run`` words them."""
    from dinotools.runs.settings import RunSettings, describe_failure

    known = {k: getattr(args, k) for k in ("backbone", "tracker", "batch_size", "prefetch", "backbone_workers")}
    known.update({k: getattr(args, k) for k in TRACKER_OPTIONS if getattr(args, k) is not None})
    try:
        settings = RunSettings(**{k: v for k, v in known.items() if v is not None})
    except TypeError:
        settings = RunSettings()
    return describe_failure(exc, settings)


def entry() -> None:
    raise SystemExit(main())
