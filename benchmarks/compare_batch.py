"""Many videos: local sequential vs local 2 worker processes vs Ray 2 actors, side by side in one run.

    python benchmarks/compare_batch.py                             # davis2016-mini x2 = 8 videos, 20 frames each
    python benchmarks/compare_batch.py --frames 0 --short-side 480 --rounds 3   # whole sequences
    python benchmarks/compare_batch.py --backbone vits16 --weights W.pth --device cuda --gpus-per-worker 0.5

Every configuration runs the real batch runner (``dinotools.batch.run_batch``: spawning workers or
creating actors, loading the backbone once per worker, tracking, writing PNGs and batch.json) on the
same videos: the davis2016-mini sequences, cut to their first ``--frames`` frames by symlinks and
listed ``--copies`` times under different names. The configurations run in rounds, their order
rotated each round, so load changes hit each alike; the table gives the median wall time per
configuration, videos per minute, and the time per video not spent tracking (wall time x workers
minus the seconds the workers spent inside videos, per video: worker start-up, backbone loads,
scheduling). Ray is started once, before the rounds (its start-up is printed apart); Ray's
overhead per video is its wall time minus the local pool's, per video. The outputs of every
configuration are compared with the sequential run's, pixel for pixel.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from dinotools.batch import Video, run_batch
from dinotools.io.masks import read_mask
from dinotools.runs.settings import RunSettings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-mini"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def subset(root: Path, frames: int, copies: int):
    """Videos of davis2016-mini cut to ``frames`` frames (symlinks in ``root``), listed ``copies`` times."""
    seqs = sorted(p.name for p in (DATA / "JPEGImages/480p").iterdir())
    videos = []
    for seq in seqs:
        src = sorted((DATA / "JPEGImages/480p" / seq).glob("*.jpg"))[: frames or None]
        folder = root / seq
        folder.mkdir(parents=True)
        for f in src:
            (folder / f.name).symlink_to(f)
        mask = DATA / "Annotations/480p" / seq / "00000.png"
        videos += [Video(f"{seq}-{c}", folder, mask, f"{seq} copy {c}") for c in range(copies)]
    return videos


def run(settings, videos, out: Path, engine: str, workers: int, cpus):
    t0 = time.perf_counter()
    result = run_batch(settings, videos, out, engine=engine, workers=workers, overwrite=True, progress=False,
                       cpus_per_worker=cpus)
    wall = time.perf_counter() - t0
    if result.failed:
        raise SystemExit(f"{engine} x{workers}: {result.failed[0][0]} failed: {result.failed[0][1]}")
    inside = sum(e.get("seconds", 0.0) for e in result.videos.values())
    return wall, inside, result.summary["frames"]


def same_outputs(a: Path, b: Path, videos) -> bool:
    for v in videos:
        for png in sorted((a / v.name).glob("*.png")):
            if not np.array_equal(read_mask(png), read_mask(b / v.name / png.name)):
                return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=20, help="first N frames of each sequence (0: all)")
    p.add_argument("--copies", type=int, default=2, help="each sequence listed this many times (4 x copies videos)")
    p.add_argument("--short-side", type=int, default=240)
    p.add_argument("--backbone", default="baseline")
    p.add_argument("--weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cpus-per-worker", type=float, default=None,
                   help="threads per pool worker (default: cores / workers)")
    p.add_argument("--gpus-per-worker", type=float, default=0)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: davis2016-mini lives in ../shared/data beside the repository")
    settings = RunSettings(backbone=args.backbone, weights=args.weights, device=args.device,
                           short_side=args.short_side)
    configs = [("local x1", "local", 1), (f"local x{args.workers}", "local", args.workers)]
    print(f"load average before: {load_average()} ({os.cpu_count()} cores)")
    if not args.skip_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), num_gpus=None if args.gpus_per_worker else 0, include_dashboard=False,
                 object_store_memory=150 * 2**20, log_to_driver=False)
        print(f"ray.init (local Ray start-up, paid once per batch): {time.perf_counter() - t0:.1f} s")
        configs.append((f"ray x{args.workers}", "ray", args.workers))
    times = {name: [] for name, _, _ in configs}
    with tempfile.TemporaryDirectory(prefix="dinotools-batch-bench-") as tmp:
        videos = subset(Path(tmp) / "frames", args.frames, args.copies)
        frames = None
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[: r % len(configs)]
            for name, engine, workers in order:
                out = Path(tmp) / name.replace(" ", "_")
                cpus = args.cpus_per_worker if workers > 1 else None
                if engine == "ray":
                    cpus = cpus or max(1, os.cpu_count() // workers)
                wall, inside, frames = run(settings, videos, out, engine, workers, cpus)
                times[name].append((wall, inside, workers))
                print(f"round {r + 1} {name}: {wall:.1f} s wall, {inside:.1f} s inside videos", flush=True)
        identical = all(same_outputs(Path(tmp) / "local_x1", Path(tmp) / n.replace(" ", "_"), videos)
                        for n in times)
    n = len(videos)
    print(f"\n{n} videos, {frames} frames, backbone {args.backbone}, short side {args.short_side}, "
          f"{args.rounds} round(s), medians")
    print(f"{'configuration':<14} {'wall s':>8} {'videos/min':>11} {'frames/s':>9} {'not tracking s/video':>21}")
    walls = {}
    for name, rows in times.items():
        wall = statistics.median(w for w, _, _ in rows)
        idle = statistics.median((w * k - i) / n for w, i, k in rows)
        walls[name] = wall
        print(f"{name:<14} {wall:8.1f} {60 * n / wall:11.2f} {frames / wall:9.2f} {idle:21.2f}")
    if not args.skip_ray:
        local, ray_name = f"local x{args.workers}", f"ray x{args.workers}"
        print(f"Ray overhead per video vs the local pool: {(walls[ray_name] - walls[local]) / n:+.2f} s "
              f"(ray/local wall ratio {walls[ray_name] / walls[local]:.2f})")
        ray.shutdown()
    print(f"outputs identical to the sequential run: {'yes' if identical else 'NO'}")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
