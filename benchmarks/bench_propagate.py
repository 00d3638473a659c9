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


def make_propagator(impl):
    """The propagator for an implementation name; NotImplementedError (asv: skip) when unavailable."""
    from dinotools.propagators import DensePropagator, FusedPropagator, WindowPropagator, fused_available

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
