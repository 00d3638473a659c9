"""One tracker frame (propagation + decode to labels, backbone excluded), the notebook's way vs ours, side by side.

    python benchmarks/compare_tracker_frame.py                    # 960x1712 frames, 60x107 grid, t=8, D=1024, M=5
    python benchmarks/compare_tracker_frame.py --threads 2 --rounds 5 --configs reference-notebook,fused

Configurations (all ``LabelPropagationTracker.step`` on the same features, context and masks):
- ``reference-notebook``: the dense reference propagator (the notebook's all-pairs matmul + masked
  top-k) and the notebook's decode (every channel upsampled to full resolution, stretched, argmax);
- ``reference``: the dense propagator with the patch-grid decode;
- ``torch``: the pure-PyTorch windowed propagator with the patch-grid decode;
- ``fused``: the compiled operator with the patch-grid decode (what ``auto`` runs on the CPU).
Every configuration's labels are checked equal to ``reference-notebook``'s on every timed frame.
Rounds interleave the configurations (order alternating), so load changes hit all alike; the
ratio printed is the median over rounds of the per-round ratio to ``reference-notebook``.
Issue 13's target: ``fused`` >= 20x ``reference-notebook`` on a quiet machine, 2 threads.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from dinotools import create_tracker

CONFIGS = {  # name -> (propagator, full-resolution decode as the notebook)
    "reference-notebook": ("reference", True),
    "reference": ("reference", False),
    "torch": ("torch", False),
    "fused": ("fused", False),
}


def masks(frame_size, objects: int, seed: int) -> np.ndarray:
    """``[H,W]`` uint8 ids 0..objects: ellipses at random places (the first frame's annotation)."""
    rng = np.random.default_rng(seed)
    H, W = frame_size
    yy, xx = np.mgrid[:H, :W]
    out = np.zeros(frame_size, np.uint8)
    for i in range(1, objects + 1):
        cy, cx = rng.uniform(0.2, 0.8) * H, rng.uniform(0.2, 0.8) * W
        ry, rx = rng.uniform(0.08, 0.2) * H, rng.uniform(0.08, 0.2) * W
        out[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = i
    return out


def features(grid, dim: int, seed: int, base=None) -> torch.Tensor:
    """``[h,w,D]`` L2-normalised; near ``base`` (a drifting video) when given."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*grid, dim, generator=g)
    if base is not None:
        x = base + 0.3 * x / dim ** 0.5 * 4
    return F.normalize(x, dim=-1)


def run(args) -> None:
    torch.set_num_threads(args.threads)
    H, W = map(int, args.frame.split("x"))
    grid = (H // 16, W // 16)
    feats = [features(grid, args.D, 0)]
    for i in range(1, args.t + args.frames):
        feats.append(features(grid, args.D, i, feats[-1]))
    first = masks((H, W), args.M - 1, 0)
    trackers, states, labels = {}, {}, {}
    for name in args.configs:
        prop, _ = CONFIGS[name]
        tr = create_tracker("label-propagation", backbone="baseline", propagator=prop, device="cpu",
                            max_context=args.t - 1, short_side=None)
        state = tr.new_state()
        tr.step(state, feats[0], (H, W), mask=first)
        for f in feats[1:args.t]:  # fill the context: the anchor + t-1 recent frames
            tr.step(state, f, (H, W))
        trackers[name], states[name] = tr, state
    times = {n: [] for n in args.configs}
    for r in range(args.rounds):
        order = args.configs if r % 2 == 0 else list(reversed(args.configs))
        for name in order:
            prop, full = CONFIGS[name]
            tr, out = trackers[name], []
            t0 = time.perf_counter()
            for f in feats[args.t:]:  # each configuration's own state: the same features, its own context
                out.append(tr.step(states[name], f, (H, W), return_probs=full).labels)
            times[name].append((time.perf_counter() - t0) / args.frames)
            labels[name] = out
    ref = labels[args.configs[0]]
    print(f"torch {torch.__version__}, {args.threads} threads, frames {H}x{W}, grid {grid[0]}x{grid[1]}, "
          f"t={args.t}, D={args.D}, M={args.M}, radius 12 circle, k=5; {args.rounds} rounds x {args.frames} frames; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'configuration':>20} {'s/frame':>9} {'x ' + args.configs[0]:>24}  labels")
    for name in args.configs:
        ratio = statistics.median(a / b for a, b in zip(times[args.configs[0]], times[name]))
        same = all(np.array_equal(a, b) for a, b in zip(ref, labels[name]))
        print(f"{name:>20} {statistics.median(times[name]):9.3f} {ratio:24.2f}  {'identical' if same else 'DIFFER'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame", default="960x1712", help="HxW of the frames (grid = HxW / 16)")
    p.add_argument("--t", type=int, default=8, help="context frames (anchor + t-1 recent)")
    p.add_argument("--D", type=int, default=1024)
    p.add_argument("--M", type=int, default=5, help="channels: background + M-1 objects")
    p.add_argument("--frames", type=int, default=2, help="timed frames per configuration per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--configs", default=",".join(CONFIGS), type=lambda s: s.split(","))
    args = p.parse_args()
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
    run(args)


if __name__ == "__main__":
    main()
