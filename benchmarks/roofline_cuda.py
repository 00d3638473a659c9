"""Roofline model of the fused CUDA topk_propagate kernel (csrc/cuda/README.md explains it).

Counts, block by block, exactly what csrc/cuda/topk_propagate_kernel.cu does at a given shape (its
union of windows, 48-column segments, the (row, n-tile) pairs a warp issues, the bytes it stages),
then turns the counts into times with the machine figures below, two ways: `estimate_us` overlaps
MMA, shared memory and L2 (their max per block); `estimate_us_barrier_bound` serialises them in every
64-channel step between the kernel's __syncthreads (one block of 8 warps per SM hides little). Also
the SM fill and a stream-K split's estimate (every SM busy). Pure Python, no GPU:
    python benchmarks/roofline_cuda.py [--h 60 --w 107 --t 8 --d 1024 --m 5 --size 12 --shape circle]
"""
from __future__ import annotations

import argparse
import json
import math

# H200 SXM (GH100, 132 SMs). Datasheet bf16 dense 989 TFLOP/s = 1 m16n8k16 (2048 MAC) per clock per SM
# at 1.83 GHz; 790 TFLOP/s was measured here with cuBLAS (wgmma). mma.sync does not reach wgmma's rate
# on Hopper: MMA_SYNC_FRACTION is an assumption (unmeasured), as is L2_BW (scaled from a public H100
# PCIe measurement of ~5.5 TB/s to 132 SMs at 1.98 GHz). gpu_check.py should measure both.
MACHINE = dict(sms=132, clock=1.83e9, mma_per_clk=1.0, mma_sync_fraction=0.62, smem_bytes_per_clk=128,
               l2_bw=7.2e12, hbm_bw=4.8e12, sm_l2_port_bytes_per_clk=64)
Q_ROWS, Q_COLS, SEGS, SEG_COLS, MT, NT, BUF = 4, 16, 4, 48, 2, 6, 8


def make_window(h, w, size, circle):
    """csrc/window.h: ry, rx and the half width of each row dy."""
    fr = math.floor(min(size, max(h, w)))
    ry, rx = int(min(fr, h - 1)), int(min(fr, w - 1))
    half = {}
    for dy in range(-ry, ry + 1):
        hw = -1
        for dx in range(rx + 1):
            d = math.sqrt(dy * dy + dx * dx) if circle else max(abs(dy), dx)
            if not d <= size:
                break
            hw = dx
        half[dy] = hw
    return ry, rx, half


def block_counts(h, w, t, d, size, circle, bi, bj, elt, q_rows=Q_ROWS):
    ry, rx, half = make_window(h, w, size, circle)
    i0, j0 = bi * q_rows, bj * Q_COLS
    ilast, jlast = min(i0 + q_rows, h) - 1, min(j0 + Q_COLS, w) - 1
    rlo, rhi = max(0, i0 - ry), min(h - 1, ilast + ry)
    clo, chi = max(0, j0 - rx), min(w - 1, jlast + rx)
    nch = (chi - clo + SEG_COLS) // SEG_COLS
    ksteps = math.ceil(d / 64) * 4  # channels padded to 64-channel chunks, 16 per k-step
    c = dict(useful_mac=0, mma=0, a_bytes=0, b_bytes=0, l2_bytes=0, scores=0, segments=0)
    frame = []  # one frame's segments in kernel order, per 64-channel chunk: [mma per pair, A, B, L2 bytes]
    for i in range(i0, ilast + 1):  # useful: every (query, in-frame window cell)
        for j in range(j0, jlast + 1):
            for dy, hw in half.items():
                if 0 <= i + dy < h and hw >= 0:
                    c["useful_mac"] += t * (min(w - 1, j + hw) - max(0, j - hw) + 1) * d
    for u in range(rlo, rhi + 1):
        for ch in range(nch):
            v0 = clo + ch * SEG_COLS
            width = min(SEG_COLS, chi - v0 + 1)
            c["l2_bytes"] += t * width * d * elt
            c["segments"] += t
            seg = [[], 0, 0, width * 64 * elt]
            for pair in range(q_rows // MT):
                need = set()
                for r in range(MT):
                    i = i0 + pair * MT + r
                    hw = half.get(u - i, -1) if i < h else -1
                    for n in range(NT):
                        a, e = v0 + 8 * n, min(v0 + width - 1, v0 + 8 * n + 7)
                        if hw >= 0 and a <= e and a <= jlast + hw and e >= j0 - hw:
                            need.add((r, n))
                c["mma"] += t * len(need) * ksteps
                c["scores"] += t * len(need) * 128
                c["a_bytes"] += t * ksteps * 512 * len({r for r, _ in need})
                c["b_bytes"] += t * ksteps * 512 * len({n // 2 for _, n in need})
                seg[0].append(len(need) * 4)  # per 64-channel chunk: 4 k-steps
                seg[1] += 4 * 512 * len({r for r, _ in need})
                seg[2] += 4 * 512 * len({n // 2 for _, n in need})
            frame.append(seg)
    c["l2_bytes"] += q_rows * Q_COLS * d * elt  # the resident query tile, once
    stream = frame * t  # segments of all frames, grouped by 4 into pipeline steps as the kernel does
    c["groups"] = [stream[i:i + SEGS] for i in range(0, len(stream), SEGS)]
    c["chunks"] = math.ceil(d / 64)
    return c


def barrier_bound_clocks(b, mach, mma_rate, l2_per_sm):
    """A block's stream when nothing overlaps across the __syncthreads of each 64-channel step: one
    256-thread block per SM leaves 2 warps per sub-partition (8 of 64), too few to hide ldmatrix and
    mma latency behind each other, so a step costs the busiest sub-partition's MMA (warps (0, seg) and
    (1, seg) share sub-partition seg: a quarter of the SM's tensor rate) plus the step's shared-memory
    reads plus its L2 -> SM bytes (the cp.async issued at the step's start, serialised in the worst case),
    summed over the steps. Returns (clocks, clocks with L2 hidden by the pipeline)."""
    serial = hidden = 0.0
    for group in b["groups"]:
        mma = max(sum(seg[0]) for seg in group) / (mma_rate / 4)  # per sub-partition
        smem = sum(seg[1] + seg[2] for seg in group) / mach["smem_bytes_per_clk"]
        l2 = sum(seg[3] for seg in group) / l2_per_sm
        serial += b["chunks"] * (mma + smem + l2)
        hidden += b["chunks"] * max(mma + smem, l2)
    return serial, hidden


def block_clocks(blocks, mach, mma_rate, active):
    """Per block: MMA, shared-memory, L2 and epilogue clocks, and the estimates built from them."""
    l2_per_sm = min(mach["sm_l2_port_bytes_per_clk"], mach["l2_bw"] / active / mach["clock"])
    out = []
    for b in blocks:
        t_mma = b["mma"] / mma_rate
        t_smem = (b["a_bytes"] + b["b_bytes"]) / mach["smem_bytes_per_clk"]
        t_l2 = b["l2_bytes"] / l2_per_sm
        # epilogue: ~6 instructions per score over 8 warps x 32 lanes, 4 schedulers issuing one a clock
        t_epi = b["scores"] * 6 / 32 / 4
        serial, hidden = barrier_bound_clocks(b, mach, mma_rate, l2_per_sm)
        out.append(dict(mma=t_mma, smem=t_smem, l2=t_l2, epilogue=t_epi, total=max(t_mma, t_smem, t_l2) + t_epi,
                        barrier_bound=serial + t_epi, barrier_l2_hidden=hidden + t_epi))
    return out


def model(h, w, t, d, m, size, shape, mach=MACHINE, elt=2, smem_per_mma=None, cluster_rows=1):
    """smem_per_mma: replace the ldmatrix bytes by this many per MMA (wgmma reads shared memory once per
    64xN tile: ~80 B); cluster_rows: CTAs stacked vertically whose candidate stages are multicast."""
    circle = shape == "circle"
    blocks = [block_counts(h, w, t, d, size, circle, bi, bj, elt)
              for bi in range(math.ceil(h / Q_ROWS)) for bj in range(math.ceil(w / Q_COLS))]
    if cluster_rows > 1:  # the cluster's union is loaded once from L2 and shared by its CTAs
        rows = Q_ROWS * cluster_rows
        big = {(bi, bj): block_counts(h, w, t, d, size, circle, bi, bj, elt, rows)["l2_bytes"]
               for bi in range(math.ceil(h / rows)) for bj in range(math.ceil(w / Q_COLS))}
        nbj = math.ceil(w / Q_COLS)
        for n, b in enumerate(blocks):
            bi, bj = divmod(n, nbj)
            scale = big[(bi // cluster_rows, bj)] / cluster_rows / b["l2_bytes"]
            b["l2_bytes"] *= scale
            b["groups"] = [[[s[0], s[1], s[2], s[3] * scale] for s in g] for g in b["groups"]]
    if smem_per_mma is not None:
        for b in blocks:
            b["a_bytes"], b["b_bytes"] = 0, b["mma"] * smem_per_mma
            b["groups"] = [[[s[0], 0, sum(s[0]) * smem_per_mma, s[3]] for s in g] for g in b["groups"]]
    tot = {k: sum(b[k] for b in blocks) for k in blocks[0] if k not in ("groups", "chunks")}
    active = min(len(blocks), mach["sms"])  # one block per SM (shared memory and 243 registers/thread)
    mma_rate = mach["mma_per_clk"] * mach["mma_sync_fraction"]
    per_block = block_clocks(blocks, mach, mma_rate, active)
    waves = math.ceil(len(blocks) / mach["sms"])
    worst = max(per_block, key=lambda x: x["total"])
    worst_barrier = max(per_block, key=lambda x: x["barrier_bound"])
    us = lambda clk: round(clk / mach["clock"] * 1e6, 1)  # noqa: E731
    useful_bound_us = tot["useful_mac"] * 2 / 989e12 * 1e6
    # Filling the idle SMs: a stream-K split of the (tile, step) list into equal shares, one per SM,
    # each tile's partial register buffers merged at the end (the merge already takes 16 buffers per
    # query): the whole GPU's work over all SMs instead of the slowest block per SM.
    fill = len(blocks) / (waves * mach["sms"])
    every_sm = block_clocks(blocks, mach, mma_rate, mach["sms"])  # L2 shared by all SMs then
    stream_k = {k: us(sum(b[k] for b in every_sm) / mach["sms"]) for k in ("total", "barrier_bound")}
    return {
        "shape": dict(h=h, w=w, t=t, D=d, M=m, size=size, shape=shape, bytes_per_feature=elt),
        "blocks": len(blocks), "active_sms": active, "waves": waves,
        "useful_mac": tot["useful_mac"], "computed_mac": tot["mma"] * 2048,
        "tile_waste": round(tot["mma"] * 2048 / tot["useful_mac"], 2),
        "l2_to_sm_bytes": tot["l2_bytes"], "l2_bytes_per_query_frame": round(tot["l2_bytes"] / (h * w * t)),
        "smem_bytes_per_mma": round((tot["a_bytes"] + tot["b_bytes"]) / tot["mma"], 1),
        "scores_examined": tot["scores"],
        "bound_us_useful_at_989_tflops": round(useful_bound_us, 1),
        "worst_block_us": {k: us(v) for k, v in worst.items()},
        "estimate_us": us(worst["total"]) * waves,  # MMA, shared memory and L2 overlap (max)
        "estimate_us_barrier_bound": us(worst_barrier["barrier_bound"]) * waves,  # serialised per step
        "estimate_us_barrier_l2_hidden": us(max(b["barrier_l2_hidden"] for b in per_block)) * waves,
        "sm_fill": round(fill, 3),
        "stream_k_estimate_us": stream_k,
        "whole_gpu_us_if_perfectly_balanced": {
            "mma": us(tot["mma"] / mma_rate / mach["sms"]),
            "l2": round(tot["l2_bytes"] / mach["l2_bw"] * 1e6, 1),
            "hbm_once": round((t + 1) * h * w * d * elt / mach["hbm_bw"] * 1e6, 1),
        },
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("h", 60), ("w", 107), ("t", 8), ("d", 1024), ("m", 5)):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--size", type=float, default=12)
    ap.add_argument("--shape", default="circle", choices=["circle", "square"])
    ap.add_argument("--l2-tbps", type=float, default=MACHINE["l2_bw"] / 1e12)
    ap.add_argument("--mma-sync-fraction", type=float, default=MACHINE["mma_sync_fraction"],
                    help="fraction of the dense peak the MMAs reach (wgmma: ~0.8, i.e. 790 TFLOP/s)")
    ap.add_argument("--smem-per-mma", type=float, help="what-if: shared-memory bytes per MMA (wgmma ~80)")
    ap.add_argument("--cluster-rows", type=int, default=1, help="what-if: CTAs per cluster sharing stages")
    a = ap.parse_args(argv)
    mach = dict(MACHINE, l2_bw=a.l2_tbps * 1e12, mma_sync_fraction=a.mma_sync_fraction)
    print(json.dumps(model(a.h, a.w, a.t, a.d, a.m, a.size, a.shape, mach, smem_per_mma=a.smem_per_mma,
                           cluster_rows=a.cluster_rows), indent=1))


if __name__ == "__main__":
    main()
