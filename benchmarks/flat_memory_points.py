"""Point tracking over a long stream: resident memory stays flat (and the time per frame with many queries).

    python benchmarks/flat_memory_points.py                          # 2,000 frames of 64x96, 1,000 queries
    python benchmarks/flat_memory_points.py --frames 500 --queries 10000 --size 480x854   # speed, DAVIS size
    python benchmarks/flat_memory_points.py --cli                    # through python -m dinotools.points

In-process (default): frames are drawn on the fly (a textured scene drifting in a circle, so the
points never run out), fed to ``track_points`` through the pipelined engine (``--prefetch``),
and each result is dropped; resident memory is sampled after 1, 2, 5, 10, 20, 50, ... frames.
``--cli`` writes the frames as PNGs and runs the command line in a subprocess (the tracks file
then holds N x T positions: that output is the only thing allowed to grow).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def frames(n: int, size, seed: int = 0):
    """``n`` frames ``[H,W,3]`` uint8 cut from one textured scene along a circle of radius 10 px."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h + 24, 0:w + 24]
    scene = np.stack([128 + 70 * np.sin(xx / 6.0 + c) * np.cos(yy / 9.0 - c) for c in range(3)], -1)
    scene = np.clip(scene + rng.normal(0, 8, scene.shape), 0, 255).astype(np.uint8)
    for i in range(n):
        dx, dy = (12 + 10 * np.cos(i / 15), 12 + 10 * np.sin(i / 15))
        yield np.ascontiguousarray(scene[int(dy):int(dy) + h, int(dx):int(dx) + w])


def queries(n: int, size) -> np.ndarray:
    rng = np.random.default_rng(1)
    h, w = size
    return np.stack([np.zeros(n), rng.uniform(0, w, n), rng.uniform(0, h, n)], 1)


def in_process(args, size) -> None:
    from dinotools import create_tracker
    from dinotools.pipeline.point_loop import track_points
    from dinotools.runs.report import RunReport

    tracker = create_tracker("points", backbone="baseline", short_side=min(size), shifts=args.shifts,
                             radius=args.radius)
    report = RunReport(extra={"engine": "pipelined" if args.prefetch > 0 else "plain"})
    t0 = time.perf_counter()
    visible = 0.0
    step_times = []
    for res in track_points(tracker, frames(args.frames, size), queries(args.queries, size),
                            prefetch=args.prefetch, stats=report):
        visible += res.visible.mean()
        report.frame_done()
        if res.index == 0:
            step_times.append(report.stages["propagate"])
    wall = time.perf_counter() - t0
    s = report.summary()
    per_frame = (s["stage_seconds"]["propagate"] - step_times[0]) / max(args.frames - 1, 1)
    print(f"{args.frames} frames of {size[1]}x{size[0]}, {args.queries} queries, shifts {args.shifts}, radius "
          f"{args.radius}: {wall:.1f}s wall; matching {1000 * per_frame:.1f} ms/frame, stage seconds "
          f"{s['stage_seconds']}; visible {100 * visible / args.frames:.0f}% on average")
    _memory(s["rss_mb"], s["peak_ram_mb"])


def through_cli(args, size) -> None:
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="dinotools-points-flat-") as tmp:
        root = Path(tmp)
        (root / "frames").mkdir()
        for i, f in enumerate(frames(args.frames, size)):
            Image.fromarray(f).save(root / "frames" / f"{i:05d}.png", compress_level=1)
        from dinotools.io.queries import write_queries

        write_queries(root / "q.csv", queries(args.queries, size))
        cmd = [sys.executable, "-m", "dinotools.points", "--frames", str(root / "frames"), "--queries",
               str(root / "q.csv"), "--output", str(root / "t.npz"), "--backbone", "baseline", "--short-side",
               str(min(size)), "--shifts", str(args.shifts), "--radius", str(args.radius), "--no-progress",
               "--prefetch", str(args.prefetch)]
        t0 = time.perf_counter()
        peak = 0.0
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        while proc.poll() is None:
            peak = max(peak, _rss_mb(proc.pid))
            time.sleep(0.5)
        print(proc.stdout.read().strip())
        print(f"wall {time.perf_counter() - t0:.1f}s; subprocess peak RSS sampled every 0.5 s: {peak:.0f} MiB")
        if proc.returncode != 0:
            raise SystemExit(f"the run failed with exit code {proc.returncode}")


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _memory(rss_mb: dict, peak: float) -> None:
    rss = {int(k): v for k, v in rss_mb.items()}
    print("resident memory (MiB) after N frames: " + ", ".join(f"{k}: {v:.1f}" for k, v in sorted(rss.items())))
    ref = 100 if 100 in rss else min(rss)
    end = max(rss)
    print(f"growth from frame {ref} to frame {end}: {rss[end] - rss[ref]:+.1f} MiB; peak {peak:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--size", default="64x96", help="HxW of the frames")
    ap.add_argument("--shifts", type=int, default=1)
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("--prefetch", type=int, default=2)
    ap.add_argument("--cli", action="store_true", help="run python -m dinotools.points in a subprocess")
    args = ap.parse_args()
    size = tuple(int(s) for s in args.size.lower().split("x"))
    print(f"load average {os.getloadavg()}")
    (through_cli if args.cli else in_process)(args, size)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
