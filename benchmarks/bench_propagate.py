"""asv benchmarks of propagation: time and peak memory of each implementation over the sizes that matter."""
from __future__ import annotations

import torch
import torch.nn.functional as F

GRIDS = {"30x54": (30, 54), "60x107": (60, 107)}  # patch grids of 480x864 / 960x1712 frames at patch 16
IMPLS = ["reference", "torch", "fused", "reference-cuda", "fused-cuda", "fused-cuda-bf16"]  # bf16: --dtype bf16
SETTINGS = dict(size=12, shape="circle", topk=5, temperature=0.2)  # the notebook's defaults


def make_inputs(grid, t, d, m, device="cpu", seed=0):
    """L2-normalised ``current [h,w,D]``, ``context [t,h,w,D]`` and softmax ``probs [t,h,w,M]``."""
    h, w = GRIDS[grid]
    g = torch.Generator().manual_seed(seed)
    cur = F.normalize(torch.randn(h, w, d, generator=g), dim=-1)
    ctx = F.normalize(torch.randn(t, h, w, d, generator=g), dim=-1)
    probs = torch.softmax(torch.randn(t, h, w, m, generator=g) * 3, dim=-1)
    return cur.to(device), ctx.to(device), probs.to(device)


def useful_macs(h, w, t, d):
    """Multiply-adds a windowed propagation cannot avoid: sum over queries of in-frame slots x t x D."""
    from dinotools.ops.window import window_offsets

    offsets, _, _ = window_offsets(h, w, float(SETTINGS["size"]), SETTINGS["shape"])
    oy, ox = offsets[:, 0], offsets[:, 1]
    rows_ok = ((torch.arange(h)[:, None] + oy[None]) >= 0) & ((torch.arange(h)[:, None] + oy[None]) < h)  # [h,K]
    cols_ok = ((torch.arange(w)[:, None] + ox[None]) >= 0) & ((torch.arange(w)[:, None] + ox[None]) < w)  # [w,K]
    inside = rows_ok.sum(0) * cols_ok.sum(0)  # [K] queries whose slot k lies inside the frame
    return float(inside.sum()) * t * d


def make_propagator(impl):
    """The propagator for an implementation name; NotImplementedError (asv: skip) when unavailable."""
    from dinotools.ops.propagators import (
        DensePropagator,
        FusedPropagator,
        WindowPropagator,
        fused_available,
    )

    if impl.startswith("fused") and not fused_available():
        raise NotImplementedError("dinotools._C is not built")
    if "-cuda" in impl and not torch.cuda.is_available():
        raise NotImplementedError("needs a GPU")
    if impl.startswith("fused-cuda"):
        from dinotools import _ext

        if not _ext.CUDA_BUILT:
            raise NotImplementedError("dinotools._C was built without CUDA")
    base = impl.split("-")[0]
    return {"reference": DensePropagator, "torch": WindowPropagator, "fused": FusedPropagator}[base]()


class Propagate:
    """Time of one propagation step; the dense reference is the baseline the others are compared with."""

    params = (IMPLS, list(GRIDS), [1, 8], [384, 1024], [2, 10])
    param_names = ["impl", "grid", "t", "D", "M"]
    timeout = 300
    number = 1  # one call is already 1 ms .. 20 s
    repeat = (1, 3, 20.0)

    def setup(self, impl, grid, t, d, m):
        self.prop = make_propagator(impl)
        self.device = "cuda" if "-cuda" in impl else "cpu"
        self.inputs = make_inputs(grid, t, d, m, self.device)
        if impl.endswith("-bf16"):  # features (not probabilities) in bf16, as the tracker keeps them
            self.inputs = (self.inputs[0].bfloat16(), self.inputs[1].bfloat16(), self.inputs[2])
        if self.device == "cuda":
            self.prop(*self.inputs, **SETTINGS)  # warm-up: context, allocator
            torch.cuda.synchronize()

    def time_propagate(self, impl, grid, t, d, m):
        self.prop(*self.inputs, **SETTINGS)
        if self.device == "cuda":
            torch.cuda.synchronize()


class PropagateMemory:
    """Peak RSS of one CPU propagation step (inputs included). M barely moves it, so M=10 only."""

    params = (["reference", "torch", "fused"], list(GRIDS), [1, 8], [384, 1024])
    param_names = ["impl", "grid", "t", "D"]
    timeout = 300

    def setup(self, impl, grid, t, d):
        self.prop = make_propagator(impl)
        self.inputs = make_inputs(grid, t, d, 10)

    def peakmem_propagate(self, impl, grid, t, d):
        self.prop(*self.inputs, **SETTINGS)


class PropagateCudaMemory:
    """Peak GPU memory (MiB above the inputs) of one step on CUDA; skipped without a GPU."""

    params = (["reference-cuda", "fused-cuda"], list(GRIDS), [1, 8], [384, 1024])
    param_names = ["impl", "grid", "t", "D"]
    timeout = 300

    def setup(self, impl, grid, t, d):
        self.prop = make_propagator(impl)
        self.inputs = make_inputs(grid, t, d, 10, "cuda")
        self.prop(*self.inputs, **SETTINGS)  # warm-up
        torch.cuda.synchronize()

    def track_cuda_peak_mib(self, impl, grid, t, d):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        self.prop(*self.inputs, **SETTINGS)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20

    track_cuda_peak_mib.unit = "MiB"


def _cpu_isas():
    try:
        from dinotools import _ext

        return _ext.cpu_isas() or ["none"]
    except Exception:  # noqa: BLE001 - asv imports this file to list benchmarks: never fail here
        return ["none"]


class CpuKernel:
    """The fused CPU kernel on each instruction set this machine runs (notebook window, t=8), and its
    useful multiply-add rate as a fraction of torch's fp32 matmul rate measured in the same setup."""

    params = (_cpu_isas(), ["30x54"], [384, 1024])
    param_names = ["isa", "grid", "D"]
    timeout = 300
    number = 1
    repeat = (1, 3, 20.0)

    def setup(self, isa, grid, d):
        from dinotools import _ext

        if isa not in _ext.cpu_isas():
            raise NotImplementedError("dinotools._C is not built")
        _ext.set_cpu_isa(isa)
        self.inputs = make_inputs(grid, 8, d, 5)
        self.prop = make_propagator("fused")
        self.prop(*self.inputs, **SETTINGS)  # warm-up

    def teardown(self, isa, grid, d):
        from dinotools import _ext

        if _ext.cpu_isas():
            _ext.set_cpu_isa("auto")

    def time_fused_cpu(self, isa, grid, d):
        self.prop(*self.inputs, **SETTINGS)

    def track_fraction_of_matmul_rate(self, isa, grid, d):
        import time

        h, w = GRIDS[grid]
        a, b = torch.randn(h * w, d), torch.randn(d, 512)

        def best(fn, n=3):
            fn()
            times = []
            for _ in range(n):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            return min(times)

        kernel = useful_macs(h, w, 8, d) / best(lambda: self.prop(*self.inputs, **SETTINGS))
        matmul = h * w * d * 512 / best(lambda: a @ b)
        return kernel / matmul

    track_fraction_of_matmul_rate.unit = "x matmul"
