"""Flat memory over a long video: resident memory at frame 500 vs the last frame, through the CLI.

    python benchmarks/flat_memory.py                      # 10,000 frames of 64x96, baseline backbone
    python benchmarks/flat_memory.py --frames 2000 --prefetch 0

Writes N synthetic PNG frames (a square moving over a textured background) to a temp folder,
runs ``python -m dinotools.run`` on them in a subprocess (pipelined engine, PNG outputs,
``--report``), and prints the run's own resident-memory samples (taken after 1, 2, 5, 10, 20,
50, ... frames) plus the subprocess's RSS as read from /proc every 0.5 s.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_frames(folder: Path, n: int, size=(64, 96)) -> Path:
    """``n`` frames ``[H,W,3]`` and the first mask; returns the mask path."""
    h, w = size
    rng = np.random.default_rng(0)
    background = (rng.normal(100, 12, size=(h, w, 3))).clip(0, 255).astype(np.uint8)
    for i in range(n):
        frame = background.copy()
        x = 8 + (i % 60)  # the object sweeps back and forth so the clip never runs out
        frame[16:44, x:x + 24] = (210, 50, 40)
        Image.fromarray(frame).save(folder / f"{i:05d}.png", compress_level=1)
    mask = np.zeros((h, w), np.uint8)
    mask[16:44, 8:32] = 1
    Image.fromarray(mask, mode="L").save(folder.parent / "mask.png")
    return folder.parent / "mask.png"


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--prefetch", type=int, default=2)
    ap.add_argument("--propagator", default="torch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dinotools-flat-") as tmp:
        root = Path(tmp)
        (root / "frames").mkdir()
        t0 = time.perf_counter()
        mask = make_frames(root / "frames", args.frames)
        print(f"wrote {args.frames} frames of 64x96 in {time.perf_counter() - t0:.1f}s")
        cmd = [sys.executable, "-m", "dinotools.run", "--frames", str(root / "frames"), "--mask", str(mask),
               "--output", str(root / "out"), "--backbone", "baseline", "--short-side", "64", "--no-progress",
               "--propagator", args.propagator, "--prefetch", str(args.prefetch), "--report", str(root / "r.json")]
        proc = subprocess.Popen(cmd)
        external = []
        while proc.poll() is None:
            external.append(_rss_mb(proc.pid))
            time.sleep(0.5)
        if proc.returncode != 0:
            raise SystemExit(f"the run failed with exit code {proc.returncode}")
        report = json.loads((root / "r.json").read_text())
    rss = {int(k): v for k, v in report["rss_mb"].items()}
    print(f"{report['frames']} frames in {report['seconds']:.1f}s ({report['fps']:.1f} fps), engine "
          f"{report['engine']}, stage seconds {report['stage_seconds']}")
    print("resident memory (MiB) after N frames: " + ", ".join(f"{k}: {v:.1f}" for k, v in sorted(rss.items())))
    start, end = 500, max(rss)
    if start in rss:
        print(f"growth from frame {start} to frame {end}: {rss[end] - rss[start]:+.1f} MiB (acceptance: < 50 MB)")
    seen = [x for x in external if x == x]
    if seen:
        print(f"external /proc samples: {len(seen)}, min {min(seen):.1f} MiB, max {max(seen):.1f} MiB, "
              f"peak RSS (getrusage) {report['peak_ram_mb']:.1f} MiB")


if __name__ == "__main__":
    main()
