"""The oracle table of every registered refiner: J, F, J&F and time per frame, plus a side-by-side timing.

    python benchmarks/compare_refiners.py                      # davis2016-mini, every 5th frame, 2 threads
    python benchmarks/compare_refiners.py --multi-object        # also judo and bike (their mask frames)
    python benchmarks/compare_refiners.py --refiners nearest bilinear guided --device cuda
    python benchmarks/compare_refiners.py --refine-arg guided:eps=0.003   # a refiner's parameters

Oracle protocol (issue 15): the ground truth itself, one-hot, downsampled with ``nearest-exact``
to the patch grid the tracker uses (60x107 for 854x480 at short side 960), refined back to full
resolution and scored with ``dinotools.eval``'s J and F (means over objects): the ceiling of any
tracker with that refiner. "ms/frame" times the labels as the tracker gets them without
probabilities, "ms scores" the full-resolution scores and their argmax. The last table times
every refiner on one 854x480 frame with M=5 (its object cut into four, soft at the grid: see
``five_channel_frame``) in interleaved rounds (so load changes hit all alike) and gives the
median and the ratio to ``bilinear``. Refiners that cannot be built
with default arguments (``sam2`` needs weights) are listed as skipped.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import dinotools
from dinotools.eval.oracle import (
    davis_samples,
    evaluate_oracle,
    folder_samples,
    format_oracle,
    grid_probs,
    labels,
)
from dinotools.io.datasets import DavisDataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _refiners(names, args_by_name):
    built, skipped = {}, {}
    for name in names:
        try:
            built[name] = dinotools.create_refiner(name, **args_by_name.get(name, {}))
        except Exception as exc:  # noqa: BLE001 - a plugin refiner may need weights or packages
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return built, skipped


def _parse_args(items):
    out = {}
    for item in items:
        name, _, kv = item.partition(":")
        key, sep, value = kv.partition("=")
        if not sep:
            raise SystemExit(f"--refine-arg expects NAME:KEY=VALUE, got {item!r}")
        from dinotools.eval.grid import parse_value

        out.setdefault(name, {})[key.replace("-", "_")] = parse_value(value)
    return out


def five_channel_frame(sample):
    """``(frame, raw [60,107,5])``: a real frame whose object is cut into 4 vertical strips (4 objects:
    boundaries with and without colour edges), one-hot at the grid, softened by a 3x3 box blur as
    propagated probabilities are near boundaries (renormalised to sum to 1)."""
    gt = np.zeros(sample.gt.shape, np.int64)
    cols = np.nonzero(sample.gt.any(0))[0]
    edges = np.linspace(cols.min(), cols.max() + 1, 5).astype(int)
    for k in range(4):
        gt[:, edges[k]:edges[k + 1]] = np.where(sample.gt[:, edges[k]:edges[k + 1]] > 0, k + 1, 0)
    onehot = grid_probs(gt, (1, 2, 3, 4), (60, 107)).permute(2, 0, 1)[None]  # [1,5,60,107]
    soft = torch.nn.functional.avg_pool2d(onehot, 3, 1, 1, count_include_pad=False)[0].permute(1, 2, 0)
    return sample.frame, soft / soft.sum(-1, keepdim=True)


def side_by_side(refiners, sample, device, rounds: int):
    """Median seconds per refiner (labels path) on one 854x480 frame with M=5, interleaved rounds."""
    frame, raw = five_channel_frame(sample)
    raw = raw.to(device)
    times = {n: [] for n in refiners}
    for r in range(rounds + 1):
        order = list(refiners) if r % 2 else list(reversed(list(refiners)))
        for name in order:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            labels(refiners[name], frame, raw)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if r:  # round 0 warms up
                times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    return {n: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for n, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--davis", type=Path, default=SHARED / "davis2016-mini", help="DAVIS root")
    p.add_argument("--multi-object", action="store_true", help="also judo and bike (../shared/data/multi-object)")
    p.add_argument("--refiners", nargs="+", help="default: every registered refiner")
    p.add_argument("--refine-arg", action="append", default=[], metavar="NAME:KEY=VALUE")
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--short-side", type=int, default=960)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=15, help="rounds of the side-by-side timing")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = args.refiners or [c.name for c in dinotools.list_components("refiner")]
    refiners, skipped = _refiners(names, _parse_args(args.refine_arg))
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    sets = [("davis", lambda: davis_samples(DavisDataset(args.davis), args.every))]
    if args.multi_object:
        for clip in ("judo", "bike"):
            root = SHARED / "multi-object" / clip
            sets.append((clip, lambda root=root: folder_samples(root / "frames", root / "masks", root.name)))
    first = None
    for title, make in sets:
        samples = list(make())
        first = first or samples[len(samples) // 2]
        results = [evaluate_oracle(r, samples, name=n, short_side=args.short_side, device=args.device)
                   for n, r in refiners.items()]
        print()
        print(format_oracle(results, f"oracle on {title} ({len(samples)} frames, short side {args.short_side})"))
    med = side_by_side(refiners, first, args.device, args.rounds)
    base = med.get("bilinear")
    print()
    size = f"{first.frame.shape[1]}x{first.frame.shape[0]}"
    print(f"side by side, {first.sequence}/{first.name} ({size}) with its object "
          f"cut into 4 (M=5, soft), {args.rounds} interleaved rounds, medians of wall time and of process CPU "
          f"time (all threads; on a loaded machine CPU time is the steadier figure):")
    for name, (wall, cpu) in med.items():
        ratio = f"  ({wall / base[0]:.2f}x / {cpu / base[1]:.2f}x bilinear)" if base else ""
        print(f"  {name:<12}{1000 * wall:8.2f} ms wall {1000 * cpu:8.2f} ms CPU{ratio}")
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
