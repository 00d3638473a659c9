"""CPU backbone in bf16 vs fp32: label agreement of the whole tracker and backbone speed, in one run.

    python benchmarks/compare_dtype_cpu.py [--data ../shared/data/davis2016-mini] [--variant vits16]
        [--short-side 480] [--max-frames 20] [--rounds 3] [--threads N]

The same random-weight DINOv3 (no pretrained weights can be downloaded here) is built twice, fp32 and
bf16 (linear/conv weights in bf16 under autocast, see DINOv3Backbone), and the label-propagation
tracker follows every DAVIS sequence from its first annotation with each. Agreement is the fraction
of pixels, over all tracked frames after the first, whose label is the same with both dtypes (a
numeric property of bf16, measured whether or not the CPU has native bf16). Speed is the backbone
forward alone on the same frames, fp32 and bf16 in interleaved rounds (medians); it only means
something where the CPU has native bf16 (avx512_bf16 or AMX): elsewhere oneDNN emulates bf16.
"""
from __future__ import annotations

import argparse
import copy
import logging
import os
import statistics
import time

import numpy as np
import torch

from dinotools import pipeline

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "davis2016-mini")


def _frames(folder, limit):
    from dinotools.io.frames import open_frames

    out = []
    for i, frame in enumerate(open_frames(folder)):
        if i >= limit:
            break
        out.append(frame)
    return out


def labels_of_run(backbone, frames, first_mask, short_side):
    import dinotools

    tracker = dinotools.create_tracker("label-propagation", backbone=backbone, propagator="auto",
                                       short_side=short_side)
    return np.stack([r.labels for r in pipeline.track_video(tracker, iter(frames), first_mask)])


def forward_seconds(backbones, images, rounds):
    """Median seconds per frame of each backbone's forward, the backbones taking turns each round."""
    times = {name: [] for name in backbones}
    for bb in backbones.values():
        bb(images[:1])  # warm-up (oneDNN primitive creation)
    for _ in range(rounds):
        for name, bb in backbones.items():
            start = time.perf_counter()
            for i in range(images.shape[0]):
                bb(images[i:i + 1])
            times[name].append((time.perf_counter() - start) / images.shape[0])
    return {name: statistics.median(v) for name, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="a DAVIS folder (JPEGImages/, Annotations/)")
    ap.add_argument("--variant", default="vits16")
    ap.add_argument("--short-side", type=int, default=480, help="frames resized to this short side (480: 480p)")
    ap.add_argument("--max-frames", type=int, default=20, help="frames tracked per sequence")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds of the forward")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("dinotools").setLevel(logging.ERROR)  # random weights are intended here

    from dinotools.backbones.dinov3.backbone import DINOv3Backbone, native_bf16
    from dinotools.backbones.dinov3.hub import create
    from dinotools.io.datasets import DavisDataset

    dataset = DavisDataset(args.data, max_frames=args.max_frames)
    torch.manual_seed(0)
    fp32 = create(args.variant, weights="random", dtype="fp32", device="cpu")
    bf16 = DINOv3Backbone(copy.deepcopy(fp32.model), variant=fp32.variant, pretrain=fp32.pretrain, mean=fp32.mean,
                          std=fp32.std, dtype="bf16", device="cpu")  # the same weights, cast
    same, total, first_images = 0, 0, []
    print(f"{args.variant} random weights, short side {args.short_side}, <= {args.max_frames} frames per sequence, "
          f"{torch.get_num_threads()} threads; native bf16 on this CPU: {native_bf16()}")
    for seq in dataset.sequences:
        first, _ = dataset.first_annotation(seq)
        frames = _frames(dataset.frame_dir(seq), args.max_frames)
        a = labels_of_run(fp32, frames, first, args.short_side)
        b = labels_of_run(bf16, frames, first, args.short_side)
        agree, n = int((a[1:] == b[1:]).sum()), a[1:].size
        same, total = same + agree, total + n
        print(f"{seq:>16}: {len(frames)} frames, labels identical on {agree / n:.4%} of pixels after frame 0")
        first_images.append(fp32.preprocess(frames[0], short_side=args.short_side))
    print(f"label agreement bf16 vs fp32: {same / total:.4%} of {total} pixels")
    images = torch.cat(first_images)
    sec = forward_seconds({"fp32": fp32, "bf16": bf16}, images, args.rounds)
    print(f"backbone forward per frame ({tuple(images.shape[-2:])}): fp32 {sec['fp32'] * 1e3:.1f} ms, "
          f"bf16 {sec['bf16'] * 1e3:.1f} ms: bf16 {sec['fp32'] / sec['bf16']:.2f}x fp32's speed"
          + ("" if native_bf16() else " (no native bf16 here: emulated, not the speed of a bf16 CPU)"))
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
