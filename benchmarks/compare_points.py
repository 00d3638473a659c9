"""TAP-Vid metrics on generated sequences: the point tracker against two trivial trackers, side by side.

    python benchmarks/compare_points.py                    # baseline backbone, 4 sequences from davis2016-mini
    python benchmarks/compare_points.py --motion 2 --frames 48
    python benchmarks/compare_points.py --backbone vits16 --weights W.pth --short-side 480 --shifts 1 --radius 2

Each sequence is frame 10 of a davis2016-mini sequence (``../shared/data``) seen through a
smoothly moving, deforming camera with pasted occluders (``dinotools.eval.synthetic_points``:
exact tracks and occlusion flags, query-first). Trackers: ``zero`` (every point stays at its
query), ``global`` (one translation per frame pair by phase correlation, no ground truth used)
and ``points`` (``create_tracker("points")``). Metrics as TAP-Vid (``dinotools.eval.points``):
per video at 256x256, then averaged over videos.

The default tracker settings here were chosen on sequences made from the two multi-object clips
(judo, bike; seeds 100-103), not on these: ``--short-side 240`` (frames are 240x320, so no
upsampling), ``--shifts 4`` (features every 4 px), ``--sim-threshold 0.7`` and the baseline with
``grid=4`` (4x4 sub-cells per patch); the other settings are the tracker's defaults.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dinotools import create_backbone, create_tracker, pipeline
from dinotools.commands.run import parse_kv
from dinotools.eval.point_baselines import global_motion, zero_motion
from dinotools.eval.points import THRESHOLDS, evaluate_video, mean_over_videos
from dinotools.eval.synthetic_points import make_sequence

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-mini" / "JPEGImages" / "480p"
SEQUENCES = ("blackswan", "car-shadow", "dog", "motocross-jump")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--motion", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0, help="sequence i uses seed + i")
    ap.add_argument("--backbone", default="baseline")
    ap.add_argument("--backbone-arg", action="append", default=None, metavar="KEY=VALUE",
                    help="default for baseline: grid=4")
    ap.add_argument("--weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--short-side", type=int, default=240)
    ap.add_argument("--shifts", type=int, default=4)
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("--sim-threshold", type=float, default=0.7)
    ap.add_argument("--fb-threshold", type=float, default=1.0)
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the benchmark builds its sequences from ../shared/data")
    bb_args = parse_kv(args.backbone_arg if args.backbone_arg is not None else
                  (["grid=4"] if args.backbone == "baseline" else []))
    if args.weights:
        bb_args["weights"] = args.weights
    backbone = create_backbone(args.backbone, device=args.device, **bb_args)
    tracker = create_tracker("points", backbone=backbone, device=args.device, short_side=args.short_side,
                             shifts=args.shifts, radius=args.radius, sim_threshold=args.sim_threshold,
                             fb_threshold=args.fb_threshold)
    print(f"backbone {args.backbone} {bb_args}; tracker short_side={args.short_side} shifts={args.shifts} "
          f"radius={args.radius} sim_threshold={args.sim_threshold} fb_threshold={args.fb_threshold}")
    print(f"sequences: {args.frames} frames of 240x320, {args.points} points, motion {args.motion}; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    scores = {"zero": [], "global": [], "points": []}
    seconds = {k: 0.0 for k in scores}
    for i, name in enumerate(SEQUENCES):
        image = np.asarray(Image.open(DATA / name / "00010.jpg").convert("RGB"))
        seq = make_sequence(image, num_frames=args.frames, size=(240, 320), num_points=args.points,
                            motion=args.motion, seed=args.seed + i)
        run = {
            "zero": lambda: zero_motion(seq.queries, len(seq.frames)),
            "global": lambda: global_motion(seq.queries, seq.frames, seq.frame_size),
            "points": lambda: _points(tracker, seq),
        }
        for key, fn in run.items():
            t0 = time.perf_counter()
            tracks, occluded = fn()
            seconds[key] += time.perf_counter() - t0
            scores[key].append(evaluate_video(seq.queries, seq.tracks, seq.occluded, tracks, occluded,
                                              seq.frame_size))
        occ = seq.occluded[np.arange(len(seq.frames))[None] > seq.queries[:, :1]].mean()
        print(f"  {name:15s} {len(seq.queries)} queries, {100 * occ:.0f}% of scored point-frames occluded; AJ "
              + ", ".join(f"{k} {v[-1]['average_jaccard']:.3f}" for k, v in scores.items()))
    header = ["tracker", "AJ", "<d_avg", "OA"] + [f"<d{x}" for x in THRESHOLDS] + [f"J{x}" for x in THRESHOLDS]
    print("\nmean over sequences (TAP-Vid, query first, 256x256)")
    print(" | ".join(f"{h:>7s}" for h in header) + " | seconds")
    for key, per_video in scores.items():
        m = mean_over_videos(per_video)
        cells = [m["average_jaccard"], m["average_pts_within_thresh"], m["occlusion_accuracy"]]
        cells += [m[f"pts_within_{x}"] for x in THRESHOLDS] + [m[f"jaccard_{x}"] for x in THRESHOLDS]
        print(f"{key:>7s} | " + " | ".join(f"{c:7.3f}" for c in cells) + f" | {seconds[key]:.1f}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


def _points(tracker, seq):
    out = list(pipeline.track_points(tracker, list(seq.frames), seq.queries))
    return np.stack([r.xy for r in out], 1), ~np.stack([r.visible for r in out], 1)


if __name__ == "__main__":
    main()
