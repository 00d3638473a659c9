"""Time per frame of the point tracker's step (matching, checks, update) for many queries, by feature width.

    python benchmarks/points_speed.py                              # 10,000 queries, 30x54 grid (480x854 at 480)
    python benchmarks/points_speed.py --queries 1000 10000 --dims 54 384 1024 --shifts 1 2 --frames 10

Features are random unit vectors (the step's cost does not depend on their values; the
backbone's own cost is benchmarks/compare_backbone.py's). Configurations run in interleaved
rounds, so load changes hit all alike; the median per-frame time of each is printed with the
load average. On a shared machine, read the ratios, not the absolute figures.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import numpy as np
import torch

from dinotools.backbones.baseline import ColorStatsBackbone
from dinotools.trackers.points import PointTracker


def setup(queries: int, dim: int, shifts: int, grid, size):
    tracker = PointTracker(ColorStatsBackbone(), shifts=shifts)  # the backbone is not called
    h, w = grid[0] * shifts, grid[1] * shifts
    feats = [torch.nn.functional.normalize(torch.randn(h, w, dim), dim=-1) for _ in range(2)]
    rng = np.random.default_rng(0)
    q = np.stack([np.zeros(queries), rng.uniform(0, size[1], queries), rng.uniform(0, size[0], queries)], 1)
    state = tracker.new_state(q)
    tracker.step(state, feats[0], size)
    return tracker, state, feats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, nargs="+", default=[10000])
    ap.add_argument("--dims", type=int, nargs="+", default=[54, 384, 1024], help="54: baseline grid=4")
    ap.add_argument("--shifts", type=int, nargs="+", default=[1])
    ap.add_argument("--grid", default="30x54", help="patch grid hxw (480x854 at short side 480: 30x54)")
    ap.add_argument("--frames", type=int, default=5, help="timed steps per configuration and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    grid = tuple(int(s) for s in args.grid.split("x"))
    size = (grid[0] * 16, grid[1] * 16)
    configs = list(itertools.product(args.queries, args.dims, args.shifts))
    prepared = {c: setup(*c, grid, size) for c in configs}
    times = {c: [] for c in configs}
    print(f"torch threads {args.threads}; load average {os.getloadavg()}")
    for r in range(args.rounds):
        for c in (configs if r % 2 == 0 else configs[::-1]):
            tracker, state, feats = prepared[c]
            t0 = time.perf_counter()
            for i in range(args.frames):
                tracker.step(state, feats[(i + 1) % 2], size)
            times[c].append((time.perf_counter() - t0) / args.frames)
    print(f"{'queries':>8} {'dim':>5} {'shifts':>6} {'ms/frame':>9} {'us/query':>9}")
    for (n, d, s), ts in times.items():
        med = statistics.median(ts)
        print(f"{n:>8} {d:>5} {s:>6} {1000 * med:>9.1f} {1e6 * med / n:>9.2f}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
