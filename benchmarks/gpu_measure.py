"""Measuring helpers of gpu_check.py: timers, the two ceilings, roofline counts, deterministic inputs, a synthetic clip."""
from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, device: torch.device, *, warmup: int = 3, repeats: int = 10) -> dict:
    """Milliseconds per ``fn()``: median, min and max of ``repeats`` calls after ``warmup`` untimed ones.

    On a GPU each call is bracketed by CUDA events (device time of everything the call launched,
    its launch gaps included); on the CPU by ``perf_counter``.
    """
    for _ in range(warmup):  # module load, kernel choice, allocator growth stay out of the numbers
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "repeats": repeats}


def copy_bandwidth(device: torch.device, nbytes: int) -> dict:
    """Device-to-device copy rate of random bytes, counting bytes read plus bytes written."""
    g = torch.Generator(device=device).manual_seed(1)
    src = torch.randint(0, 256, (nbytes,), dtype=torch.uint8, device=device, generator=g)
    dst = torch.empty_like(src)
    t = median_ms(lambda: dst.copy_(src), device, repeats=10)
    return {"bytes_per_s": 2 * nbytes / (t["median_ms"] / 1e3), "buffer_mib": nbytes / 2**20, **t}


def matmul_rate(device: torch.device, n: int, dtype: torch.dtype) -> dict:
    """``n x n x n`` matrix product of random data through PyTorch: multiply-accumulates per second."""
    g = torch.Generator(device=device).manual_seed(2)
    a = torch.randn(n, n, device=device, generator=g).to(dtype)
    b = torch.randn(n, n, device=device, generator=g).to(dtype)
    t = median_ms(lambda: a @ b, device, repeats=10)
    return {"macs_per_s": n**3 / (t["median_ms"] / 1e3), "n": n, "dtype": str(dtype).removeprefix("torch."), **t}


def window_work(h: int, w: int, t: int, d: int, m: int, *, size: float, shape: str, topk: int,
                feature_bytes: int) -> dict:
    """Useful multiply-accumulates and the fewest device-memory bytes of one propagation call.

    MACs: one D-long dot product per (query, in-frame window cell, context frame), plus M per
    surviving candidate (min(k, candidates); ties add a few). Bytes: every input read once
    (features at ``feature_bytes`` each, float32 probabilities) and the float32 output written once.
    """
    from dinotools.ops.window import window_offsets

    offsets, _, _ = window_offsets(h, w, float(size), shape)
    oy, ox = offsets[:, 0], offsets[:, 1]  # [K]
    ys, xs = torch.arange(h)[:, None] + oy[None], torch.arange(w)[:, None] + ox[None]  # [h,K], [w,K]
    rows_ok, cols_ok = (ys >= 0) & (ys < h), (xs >= 0) & (xs < w)
    cand = (rows_ok[:, None, :] & cols_ok[None, :, :]).sum(-1)  # [h, w] in-frame cells per query
    macs = int(cand.sum()) * t * d + int(torch.clamp(cand * t, max=topk).sum()) * m
    nbytes = (h * w * d + t * h * w * d) * feature_bytes + t * h * w * m * 4 + h * w * m * 4
    return {"macs": macs, "bytes": nbytes}


def video_like(h: int, w: int, t: int, d: int, m: int, *, seed: int = 0):
    """CPU float32 ``current [h,w,D]``, ``context [t,h,w,D]``, ``probs [t,h,w,M]`` of a moving scene.

    M regions (cells of random centres), each with its own prototype feature plus per-patch noise,
    drift one patch to the right per frame; probabilities are a noisy softmax around each patch's
    region. Unlike i.i.d. features the propagated labels mean something, so label agreement
    between precisions is measured where it matters.
    """
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(m, 2, generator=g) * torch.tensor([h, w])
    protos = torch.randn(m, d, generator=g)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")

    def frame(shift):
        pos = torch.stack([yy, xx - shift], -1)  # [h,w,2]
        label = torch.cdist(pos.view(-1, 2), centres).argmin(1).view(h, w)  # [h,w]
        feat = F.normalize(protos[label] + 0.7 * torch.randn(h, w, d, generator=g), dim=-1)
        probs = torch.softmax(4 * F.one_hot(label, m).float() + torch.randn(h, w, m, generator=g), -1)
        return feat, probs

    cur, _ = frame(0.0)
    ctx, probs = zip(*(frame(float(tau - t)) for tau in range(t)))
    return cur, torch.stack(ctx), torch.stack(probs)


def quantised(*shape, seed: int):
    """Features in multiples of 1/4: exact dot products, and many exact ties."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-4, 5, shape, generator=g) / 4


class Head:
    """The first ``n`` frames of a frame source (``names``, ``len`` and iteration), for short runs."""

    def __init__(self, source, n: int) -> None:
        self.source, self.names = source, source.names[:n]

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return itertools.islice(iter(self.source), len(self.names))


def write_clip(folder: Path, n: int, width: int, height: int, seed: int = 0):
    """``n`` JPEG frames (``width x height``) of three ellipses moving over a textured background, and
    frame 0's mask (ids 1..3) as an indexed PNG. Returns ``(frames folder, mask path, frames [H,W,3])``."""
    import cv2

    from dinotools.io.masks import write_mask

    rng = np.random.default_rng(seed)
    frames_dir = folder / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 3)
    objects = [((0.25, 0.4), (0.12, 0.2), (220, 40, 40), (1.0, 0.3)), ((0.6, 0.6), (0.1, 0.15), (40, 60, 220), (-0.8, 0.5)),
               ((0.45, 0.2), (0.08, 0.1), (230, 210, 40), (0.5, -0.6))]
    frames, first_mask = [], None
    for i in range(n):
        img, mask = texture.copy(), np.zeros((height, width), np.uint8)
        for oid, ((cx, cy), (rx, ry), colour, (vx, vy)) in enumerate(objects, start=1):
            centre = (int(cx * width + vx * i * width / 200) % width, int(cy * height + vy * i * height / 200) % height)
            axes = (max(1, int(rx * width)), max(1, int(ry * height)))
            cv2.ellipse(img, centre, axes, 0, 0, 360, colour, -1)
            cv2.ellipse(mask, centre, axes, 0, 0, 360, oid, -1)
        cv2.imwrite(str(frames_dir / f"{i:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        frames.append(img)
        first_mask = mask if first_mask is None else first_mask
    mask_path = folder / "00000.png"
    write_mask(mask_path, first_mask)
    return frames_dir, mask_path, frames


def mib(nbytes: float) -> float:
    return round(nbytes / 2**20, 1)


def rounded(value, digits: int = 4):
    """Floats to ``digits`` significant digits, recursively, so the JSON stays readable."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def compact_json(value, indent: str = "") -> str:
    """JSON with each innermost object or list on one line (when short), nested ones indented."""
    flat = json.dumps(value)
    nested = isinstance(value, dict) and any(isinstance(v, (dict, list)) for v in value.values()) or (
        isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value))
    if not nested and len(flat) + len(indent) <= 150:
        return flat
    inner = indent + " "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {compact_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list):
        return "[\n" + ",\n".join(inner + compact_json(v, inner) for v in value) + f"\n{indent}]"
    return flat
