"""Speed and peak-memory ratios of every propagator against the dense reference, side by side in one run.

Usage: python benchmarks/compare_propagators.py [--grid 60x107] [--t 8] [--D 1024] [--M 5] [--repeats 3]
       [--rounds 1] [--threads N] [--impls a,b,...] [--baseline-ref REV] [--all-isas]

Each implementation runs in a fresh subprocess (so one's peak memory cannot hide another's): the
worker builds the inputs in place, records its peak RSS, runs one warm-up call and ``repeats`` timed
calls, and reports the median time and (peak RSS after - peak RSS before the calls), i.e. the extra
memory the propagation needed. With ``--rounds`` > 1 the whole sequence repeats and medians across
rounds are printed, which evens out a shared machine. On a GPU (fused-cuda, reference-cuda) times
use synchronisation and memory is ``torch.cuda.max_memory_allocated`` above the inputs; the bf16 row
is compared with a roofline bound measured in the same run.

CPU rates: every round also times torch's fp32 ``matmul`` ([h*w x D] @ [D x 512], same threads) in
its own worker, and each implementation's useful multiply-add rate (in-frame window slots x t x D,
counted exactly) is divided by that round's matmul rate; ratios are medians over rounds, so on a
shared machine they compare runs taken moments apart. ``x matmul`` compares wall-clock rates (the
targets, meaningful on a quiet machine); ``x matmul/CPU-s`` compares MACs per CPU-second (process
time), i.e. per-core efficiency, which stays readable when other jobs take the cores. ``fused-main`` is the CPU operator of
``--baseline-ref`` (default: the operator issue 13 started from, ``baseline_kernel.ISSUE13_BASELINE``)
built beside this one (benchmarks/baseline_kernel.py); ``fused@ISA`` forces the CPU kernel onto one instruction set (``--all-isas``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CPU_IMPLS = ["reference", "torch", "fused", "fused-main"]
MATMUL_N = 512  # columns of the matmul whose rate is the yardstick
GPU_IMPLS = ["reference-cuda", "fused-cuda", "fused-cuda-bf16"]
SETTINGS = dict(size=12, shape="circle", topk=5, temperature=0.2)


def _inputs(h, w, t, d, m, device, dtype):
    """Inputs built in place, so building them leaves no transient peak above their own size."""
    import torch

    g = torch.Generator().manual_seed(0)
    cur = torch.empty(h, w, d).normal_(generator=g)
    ctx = torch.empty(t, h, w, d).normal_(generator=g)
    for x in (cur, ctx):
        x.div_(torch.linalg.vector_norm(x, dim=-1, keepdim=True))
    probs = torch.empty(t, h, w, m).normal_(generator=g).mul_(3).softmax(dim=-1)
    return cur.to(device, dtype), ctx.to(device, dtype), probs.to(device)


def useful_macs(h, w, t, d):
    """Multiply-adds a windowed propagation cannot avoid (see bench_propagate.useful_macs)."""
    sys.path.insert(0, HERE)
    from bench_propagate import useful_macs as count

    return count(h, w, t, d)


def _cpu_callable(impl):
    """fused-main (another revision's operator), fused@ISA (one instruction set), matmul, or a propagator."""

    sys.path.insert(0, HERE)
    if impl == "fused-main":
        from baseline_kernel import ISSUE13_BASELINE, load_baseline

        op = load_baseline(os.environ.get("DINOTOOLS_BASELINE_REF") or ISSUE13_BASELINE)
        if op is None:
            raise SystemExit("baseline operator not available")
        return lambda cur, ctx, probs, size, shape, topk, temperature: op(cur, ctx, probs, float(size), shape,
                                                                         int(topk), float(temperature))
    from bench_propagate import make_propagator

    if impl.startswith("fused@"):
        from dinotools import _ext

        _ext.set_cpu_isa(impl.split("@", 1)[1])
        impl = "fused"
    return make_propagator(impl)


def worker(impl, h, w, t, d, m, repeats, threads):
    """Runs in the subprocess: prints one JSON line {seconds, extra_mib, ...}."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    if impl == "matmul":
        return matmul_worker(h * w, d, repeats)
    cuda = "-cuda" in impl
    dtype = torch.bfloat16 if impl.endswith("-bf16") else torch.float32
    if cuda:
        sys.path.insert(0, HERE)
        from bench_propagate import make_propagator

        prop = make_propagator(impl.removesuffix("-bf16"))
    else:
        prop = _cpu_callable(impl)
    inputs = _inputs(h, w, t, d, m, "cuda" if cuda else "cpu", dtype)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    sync()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    prop(*inputs, **SETTINGS)  # warm-up (also counts for the peak)
    sync()
    times, cpu0 = [], time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        prop(*inputs, **SETTINGS)
        sync()
        times.append(time.perf_counter() - start)
    cpu_seconds = (time.process_time() - cpu0) / repeats
    if cuda:
        extra = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    out = {"seconds": statistics.median(times), "extra_mib": extra}
    if not cuda:
        out["gmacs"] = useful_macs(h, w, t, d) / out["seconds"] / 1e9
        out["cpu_gmacs"] = useful_macs(h, w, t, d) / cpu_seconds / 1e9  # per CPU-second: per-core efficiency
    if impl.endswith("-bf16"):
        out["roofline_s"] = roofline_seconds(inputs, h, w, t, d, m)
    print(json.dumps(out))


def matmul_worker(rows, d, repeats):
    """torch's fp32 matmul rate on [rows x D] @ [D x 512]: the CPU yardstick of the same run."""
    import torch

    a, b = torch.randn(rows, d), torch.randn(d, MATMUL_N)
    a @ b  # warm-up
    times, cpu0 = [], time.process_time()
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    seconds, macs = statistics.median(times), rows * d * MATMUL_N
    cpu_seconds = (time.process_time() - cpu0) / len(times)
    print(json.dumps({"seconds": seconds, "extra_mib": 0.0, "gmacs": macs / seconds / 1e9,
                      "cpu_gmacs": macs / cpu_seconds / 1e9}))


def roofline_seconds(inputs, h, w, t, d, m):
    """max(bytes that must be read / measured bandwidth, window MACs / measured bf16 matmul rate)."""
    import torch

    def timed(fn, n=20):
        fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - start) / n

    buf = torch.empty(2**28, dtype=torch.uint8, device="cuda")  # 256 MiB copied: read + write
    dst = torch.empty_like(buf)
    bandwidth = 2 * buf.numel() / timed(lambda: dst.copy_(buf))
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    mac_rate = 8192**3 / timed(lambda: a @ a, 10)
    macs = useful_macs(h, w, t, d)  # sum over queries of in-frame candidates x D
    nbytes = sum(x.numel() * x.element_size() for x in inputs) + h * w * m * 4
    return max(nbytes / bandwidth, macs / mac_rate)


def run(args):
    impls = args.impls.split(",") if args.impls else CPU_IMPLS + (GPU_IMPLS if args.gpu else [])
    if args.all_isas:
        from dinotools import _ext

        impls += [f"fused@{isa}" for isa in _ext.cpu_isas()]
    if any(not i.endswith(("-cuda", "-bf16")) for i in impls) and "matmul" not in impls:
        impls.append("matmul")  # the yardstick of every CPU rate, timed in each round
    if "fused-main" in impls:
        sys.path.insert(0, HERE)
        from baseline_kernel import ISSUE13_BASELINE, load_baseline

        args.baseline_ref = args.baseline_ref or ISSUE13_BASELINE
        load_baseline(args.baseline_ref)  # build once here, outside every timed worker
    h, w = map(int, args.grid.split("x"))
    rows = {impl: [] for impl in impls}
    env = dict(os.environ, DINOTOOLS_BASELINE_REF=args.baseline_ref or "")
    load = []
    for _ in range(args.rounds):
        load.append(os.getloadavg()[0])
        for impl in [i for i in impls if i in rows]:  # one that failed once is dropped for good
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--grid", args.grid, "--t",
                   str(args.t), "--D", str(args.D), "--M", str(args.M), "--repeats", str(args.repeats),
                   "--threads", str(args.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if res.returncode != 0:
                tail = (res.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{impl}: skipped ({tail})")
                rows.pop(impl, None)
                continue
            rows[impl].append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"\ngrid {h}x{w}, t={args.t}, D={args.D}, M={args.M}, {SETTINGS}, threads={args.threads or 'default'}, "
          f"median of {args.repeats} calls x {args.rounds} round(s); load average at each round's start: "
          f"{', '.join(f'{x:.1f}' for x in load)}; useful MACs {useful_macs(h, w, args.t, args.D):.3e}")
    print(f"{'implementation':>16} {'seconds':>9} {'extra MiB':>10} {'speed vs ref':>13} {'memory vs ref':>14} "
          f"{'GMAC/s':>8} {'x matmul':>9} {'x matmul/CPU-s':>15}")
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in rows.items() if v}
    mm = rows.get("matmul", [])
    for impl, r in med.items():
        ref = med.get("reference-cuda" if "-cuda" in impl else "reference")
        speed = f"{ref['seconds'] / r['seconds']:.1f}x" if ref else "-"
        mem = f"1/{ref['extra_mib'] / max(r['extra_mib'], 1e-3):.0f}" if ref else "-"
        rate = f"{r['gmacs']:8.1f}" if "gmacs" in r else f"{'-':>8}"
        ratio = _round_ratio(rows[impl], mm, lambda a, b: a["gmacs"] / b["gmacs"]) if "gmacs" in r else None
        cpu = _round_ratio(rows[impl], mm, lambda a, b: a["cpu_gmacs"] / b["cpu_gmacs"]) if "gmacs" in r else None
        print(f"{impl:>16} {r['seconds']:9.4f} {r['extra_mib']:10.1f} {speed:>13} {mem:>14} {rate} "
              f"{f'{ratio:9.2f}' if ratio is not None else f'{chr(45):>9}'} "
              f"{f'{cpu:15.2f}' if cpu is not None else f'{chr(45):>15}'}")
    if "fused" in med and "torch" in med:
        print(f"fused CPU vs PyTorch windowed: {med['torch']['seconds'] / med['fused']['seconds']:.1f}x faster")
    if "fused" in rows and "fused-main" in rows:
        ratio = _round_ratio(rows["fused-main"], rows["fused"], lambda a, b: a["seconds"] / b["seconds"])
        print(f"fused CPU vs {args.baseline_ref}'s operator (fused-main): {ratio:.2f}x faster "
              f"(median over rounds of the per-round ratio)")
    if "fused-cuda-bf16" in med:
        r = med["fused-cuda-bf16"]
        print(f"fused CUDA bf16: {r['seconds'] / r['roofline_s']:.1f}x the roofline bound ({r['roofline_s']*1e3:.3f} ms)")


def _round_ratio(a_rows, b_rows, ratio):
    """Median over rounds of ratio(a, b) with a and b from the same round (None without pairs)."""
    pairs = [ratio(a, b) for a, b in zip(a_rows, b_rows)]
    return statistics.median(pairs) if pairs else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="60x107")
    ap.add_argument("--t", type=int, default=8)
    ap.add_argument("--D", type=int, default=1024)
    ap.add_argument("--M", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch's default)")
    ap.add_argument("--impls", default="", help="comma-separated subset (default: all CPU ones + GPU ones)")
    ap.add_argument("--baseline-ref", default=None,
                    help="git revision whose CPU operator is fused-main (default: the one issue 13 started from)")
    ap.add_argument("--all-isas", action="store_true", help="also time fused@ISA for every CPU path here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        h, w = map(int, args.grid.split("x"))
        worker(args.worker, h, w, args.t, args.D, args.M, args.repeats, args.threads)
        return
    import torch

    args.gpu = torch.cuda.is_available()
    run(args)


if __name__ == "__main__":
    main()
