"""Pipelined engine vs the plain loop, side by side, end to end (decode, backbone, propagate, PNG write).

    python benchmarks/compare_engine.py                       # baseline on davis2016-mini + vits16 random
    python benchmarks/compare_engine.py --skip-baseline --frames 20 --rounds 7
    python benchmarks/compare_engine.py --skip-vit --short-side 960
    python benchmarks/compare_engine.py --device cuda --skip-baseline --vit vitl16 --vit-short-side 960 \
        --dtype bf16 --batch 8 --notebook        # the H200 target: pipelined bf16 vs the notebook's fp32 loop

Part 1 tracks every davis2016-mini sequence with the weight-free baseline backbone and prints
the per-stage report of each engine. Part 2 tracks one sequence with a DINOv3 backbone of
random weights (speed does not depend on the values). Each part runs the two engines in
interleaved rounds (the order alternates) with one tracker object, so load changes hit both
alike; it prints the median wall time per engine and the median of the per-round ratios, and
the process CPU time: on a shared machine a process with more busy threads also gets a larger
share of the cores, which the "cores busy" figure makes visible.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Optional

from dinotools import create_tracker
from dinotools.io.frames import open_frames
from dinotools.runs.job import run_job

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-mini"


def _sequences(names):
    seqs = [(DATA / "JPEGImages/480p" / n, DATA / "Annotations/480p" / n / "00000.png") for n in names]
    missing = [str(f) for f, _ in seqs if not f.is_dir()]
    if missing:
        raise SystemExit(f"davis2016-mini not found ({missing[0]}): it lives in ../shared/data beside the repo")
    return seqs


class _Head:
    """The first ``n`` frames of a frame source (``names`` and iteration), so runs can be short."""

    def __init__(self, source, n: Optional[int]) -> None:
        self.source, self.names = source, source.names[:n]

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return itertools.islice(iter(self.source), len(self.names))


def _run_all(tracker, seqs, prefetch: int, batch: int, workers: Optional[int] = None, limit: Optional[int] = None):
    """Tracks every sequence; returns (wall seconds, CPU seconds, summed stage seconds, frames)."""
    stages, frames = {}, 0
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="dinotools-cmp-") as tmp:
        for frames_dir, mask in seqs:
            out = Path(tmp) / frames_dir.name
            out.mkdir()
            rep = run_job(tracker, _Head(open_frames(frames_dir), limit), {0: mask}, out, batch_size=batch, progress=False,
                          prefetch=prefetch, workers=workers).summary()
            frames += rep["frames"]
            for k, v in rep["stage_seconds"].items():
                stages[k] = stages.get(k, 0.0) + v
    return time.perf_counter() - t0, time.process_time() - c0, stages, frames


def compare(title: str, tracker, seqs, rounds: int, batch: int, prefetch: int, limit: Optional[int],
            workers: Optional[int] = None, notebook=None) -> None:
    """The engines in interleaved rounds: the per-frame loop (batch 1, one thread), the plain loop
    with the same batch, the pipelined engine and, given ``notebook`` (a tracker set up as the
    notebook: fp32, dense reference propagation), the notebook-style loop. Ratios are per round,
    then the median."""
    configs = {"plain, batch 1": (tracker, 0, 1, None), f"plain, batch {batch}": (tracker, 0, batch, None),
               f"pipelined, batch {batch}": (tracker, prefetch, batch, workers)}
    if notebook is not None:
        configs = {"notebook-style loop": (notebook, 0, 1, None), **configs}
    for trk, *_ in configs.values():  # warm-up: first-call allocations, kernel choice
        _run_all(trk, seqs[:1], prefetch, batch, workers, batch * 2)
    times = {name: [] for name in configs}
    cpu = {name: [] for name in configs}
    stages = {}
    for r in range(rounds):
        names = list(configs) if r % 2 == 0 else list(configs)[::-1]
        for name in names:
            wall, cpu_s, st, frames = _run_all(*configs[name][:1], seqs, *configs[name][1:], limit)
            times[name].append(wall)
            cpu[name].append(cpu_s)
            stages[name] = st
        print(f"  round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in configs))
    print(f"{title}: {frames} frames per run, {rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    for name in configs:
        med, med_cpu = statistics.median(times[name]), statistics.median(cpu[name])
        st = ", ".join(f"{k} {v:.2f}s" for k, v in stages[name].items())
        print(f"  {name:20s}: median {med:.2f}s ({frames / med:.2f} fps), CPU {med_cpu:.1f}s "
              f"({med_cpu / med:.2f} cores busy); stages of the last round: {st}")
    piped = f"pipelined, batch {batch}"
    for base in configs:
        if base == piped:
            continue
        ratios = [b / p for b, p in zip(times[base], times[piped])]
        print(f"  speed-up {piped} over {base}: median of per-round ratios {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short-side", type=int, default=480, help="part 1 (baseline) short side")
    ap.add_argument("--vit", default="vits16")
    ap.add_argument("--vit-short-side", type=int, default=224)
    ap.add_argument("--vit-sequence", default="car-shadow")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--propagator", default="auto", help="as the CLI: fused when built")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--prefetch", type=int, default=2)
    ap.add_argument("--workers", type=int, default=None, help="backbone workers of the pipelined engine (default auto)")
    ap.add_argument("--notebook", action="store_true",
                    help="also time the notebook-style loop: fp32, batch 1, dense reference propagation")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=None, help="first N frames of each sequence (default all)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-vit", action="store_true")
    args = ap.parse_args()
    common = dict(propagator=args.propagator, device=args.device)
    if not args.skip_baseline:
        tracker = create_tracker("label-propagation", backbone="baseline", short_side=args.short_side, **common)
        seqs = _sequences(["blackswan", "car-shadow", "dog", "motocross-jump"])
        compare(f"baseline backbone, davis2016-mini, short side {args.short_side}", tracker, seqs, args.rounds,
                args.batch, args.prefetch, args.frames, args.workers)
    if not args.skip_vit:
        kwargs = {"weights": "random", **({"dtype": args.dtype} if args.dtype else {})}
        tracker = create_tracker("label-propagation", backbone=args.vit, short_side=args.vit_short_side,
                                 backbone_kwargs=kwargs, **common)
        notebook = None
        if args.notebook:
            notebook = create_tracker("label-propagation", backbone=args.vit, short_side=args.vit_short_side,
                                      backbone_kwargs={"weights": "random", "dtype": "fp32"}, propagator="reference",
                                      device=args.device)
        compare(f"{args.vit} (random weights, {args.dtype or 'fp32'}), {args.vit_sequence}, short side "
                f"{args.vit_short_side}", tracker, _sequences([args.vit_sequence]), args.rounds, args.batch,
                args.prefetch, args.frames, args.workers, notebook)


if __name__ == "__main__":
    main()
