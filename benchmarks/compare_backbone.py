"""Side-by-side DINOv3 backbone speed: bf16/fp16 vs fp32 and batched vs one frame at a time.

    python benchmarks/compare_backbone.py --variants vits16 vitl16 --size 224 224 --batch 4
    python benchmarks/compare_backbone.py --device cuda --variants vitl16 --size 960 1696 --batch 8

Random weights (speed does not depend on the values). The configurations are timed in
interleaved rounds so that load changes hit all of them alike; medians are reported, and the
ratios are per-frame times (> 1 means the first named mode is faster).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from dinotools.backbones.dinov3.hub import create


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timer(backbone, x: torch.Tensor, chunk: int):
    """A callable running ``x`` through the backbone ``chunk`` frames per forward; returns seconds."""

    def run() -> float:
        _sync(backbone.device)
        t0 = time.perf_counter()
        for i in range(0, x.shape[0], chunk):
            backbone(x[i:i + chunk])
        _sync(backbone.device)
        return time.perf_counter() - t0

    return run


def compare(variant: str, size, batch: int, repeats: int, device: str, half: str, compile: bool) -> dict:
    """``{mode: median seconds per frame}`` for fp32/half x batched/unbatched."""
    torch.manual_seed(0)
    x = torch.randn(batch, 3, *size, device=device)
    runs = {}
    for dtype in ("fp32", half):
        backbone = create(variant, weights="random", dtype=dtype, device=device, compile=compile)
        runs[f"{dtype} batch{batch}"] = _timer(backbone, x, batch)
        runs[f"{dtype} batch1"] = _timer(backbone, x, 1)
    times = {k: [] for k in runs}
    for _ in range(2):  # warm-up (allocator, kernels, compile)
        for fn in runs.values():
            fn()
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(fn() / batch)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["vits16", "vitl16"])
    p.add_argument("--size", nargs=2, type=int, default=[224, 224], metavar=("H", "W"))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--half", default="bf16", choices=["bf16", "fp16"])
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the feature extractor")
    args = p.parse_args(argv)
    logging.getLogger("dinotools").setLevel(logging.ERROR)  # random weights are intended: no warning
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = args.size
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, input {h}x{w} "
          f"({(h // 16) * (w // 16)} patches), batch {args.batch}, {args.repeats} interleaved rounds, medians")
    for variant in args.variants:
        t = compare(variant, (h, w), args.batch, args.repeats, args.device, args.half, args.compile)
        for mode, sec in t.items():
            print(f"  {variant:10s} {mode:14s} {sec * 1e3:9.1f} ms/frame  {1 / sec:8.2f} frames/s")
        b, hf = args.batch, args.half
        print(f"  {variant:10s} speed-up {hf}/fp32: batch{b} x{t[f'fp32 batch{b}'] / t[f'{hf} batch{b}']:.2f}, "
              f"batch1 x{t['fp32 batch1'] / t[f'{hf} batch1']:.2f}; batched/unbatched: fp32 "
              f"x{t['fp32 batch1'] / t[f'fp32 batch{b}']:.2f}, {hf} x{t[f'{hf} batch1'] / t[f'{hf} batch{b}']:.2f}")


if __name__ == "__main__":
    main()
