"""The fused CUDA kernel on cuda (when present) and the emulated cuda-emu device in its three schedules.

Expected values come from the dense float64 reference (DensePropagator); the notebook fixtures, ties,
M = 1537, opcheck and more run on the same devices in tests/test_ops.py.
Cases stay small: the emulator runs every CUDA thread of every block on a CPU fiber, and the exact slow
paths (ties beyond the register buffers, k > 8) rescan each query's window several times.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from cuda_emu import AVAILABLE as EMU_AVAILABLE
from cuda_emu import SCHEDULES, SKIP_REASON, activated, op_devices, use_schedule

from dinotools.ops.propagators import DensePropagator

REFERENCE = DensePropagator()


@pytest.fixture(params=op_devices(half=True))
def dev(request):
    """Devices that run the CUDA kernel: cuda when present, and cuda-emu-{forward,reverse,random}
    (with guarded, NaN-poisoned global memory checked after every launch)."""
    with activated(request.param, request.node.nodeid) as d:
        yield d


def quantised(*shape, dtype=torch.float32):
    """Multiples of 1/4 in [-1, 1]: dot products are exact in fp32, fp16 and bf16 with fp32
    accumulation, whatever the order, so every implementation ranks identically and ties are common."""
    return (torch.randint(-4, 5, shape) / 4).to(dtype)


def probs(t, h, w, m):
    return torch.softmax(torch.randn(t, h, w, m) * 3, dim=-1)


def reference(cur, ctx, p, **kw):
    return REFERENCE(cur.double(), ctx.double(), p.double(), **kw)


def run(dev, cur, ctx, p, **kw):
    return dev.propagate(dev.to(cur), dev.to(ctx), dev.to(p), **kw).cpu()


# (h, w, t, D, M, size, shape, topk, temperature): borders, radius > frame, zero radius, k above the
# candidates, k past the register buffer (8) and k = 1000 (radix select), M = 1, D not a multiple of 8.
CASES = [
    (9, 13, 1, 16, 2, 3, "circle", 5, 0.2),
    (6, 20, 3, 24, 1, 2, "circle", 5, 0.2),
    (5, 9, 2, 9, 3, 30, "square", 5, 0.3),
    (6, 6, 2, 12, 3, 0, "circle", 5, 0.2),
    (5, 7, 2, 8, 2, 1, "square", 1000, 0.3),
    (4, 9, 2, 20, 4, 3, "circle", 11, 0.5),
    (3, 1, 3, 9, 2, 2, "square", 4, 1.0),
]


@pytest.mark.parametrize("h,w,t,d,m,size,shape,topk,temperature", CASES)
def test_matches_reference_on_exact_scores(dev, h, w, t, d, m, size, shape, topk, temperature):
    cur, ctx, p = quantised(h, w, d), quantised(t, h, w, d), probs(t, h, w, m)
    kw = dict(size=size, shape=shape, topk=topk, temperature=temperature)
    torch.testing.assert_close(run(dev, cur, ctx, p, **kw).double(), reference(cur, ctx, p, **kw), atol=1e-5, rtol=0)


# (h, w, size, topk): a radius-6 window over 2 frames gives each register buffer (4 segment warps x 4
# lanes per query) more than 8 equal scores, so the buffers overflow with ties (rescan path); k = 10 > 8
# takes the radix select.
@pytest.mark.parametrize("h,w,size,topk", [(8, 12, 6, 1), (8, 12, 6, 5), (3, 10, 3, 10)])
def test_all_tied_window_keeps_every_candidate(dev, h, w, size, topk):
    # Every score equal: ">= k-th" keeps the whole window, far beyond the register buffers.
    t, d, m = 2, 8, 3
    cur, ctx, p = torch.ones(h, w, d) / 4, torch.ones(t, h, w, d) / 4, probs(t, h, w, m)
    kw = dict(size=size, shape="circle", topk=topk, temperature=0.2)
    torch.testing.assert_close(run(dev, cur, ctx, p, **kw).double(), reference(cur, ctx, p, **kw), atol=1e-5, rtol=0)


@pytest.mark.parametrize("m", [255, 2000])
def test_many_objects(dev, m):
    cur, ctx, p = quantised(5, 17, 8), quantised(2, 5, 17, 8), probs(2, 5, 17, m)
    kw = dict(size=2, shape="circle", topk=3, temperature=0.2)
    torch.testing.assert_close(run(dev, cur, ctx, p, **kw).double(), reference(cur, ctx, p, **kw), atol=1e-5, rtol=0)


def test_normalised_features_non_contiguous(dev):
    h, w, t, d, m = 7, 18, 3, 24, 3
    cur = F.normalize(torch.randn(d, h, w), dim=0).permute(1, 2, 0)
    ctx = F.normalize(torch.randn(d, t, h, w), dim=0).permute(1, 2, 3, 0)
    p = probs(t, h, w, 2 * m)[..., ::2]
    assert not (cur.is_contiguous() or ctx.is_contiguous() or p.is_contiguous())
    kw = dict(size=4, shape="circle", topk=5, temperature=0.2)
    torch.testing.assert_close(run(dev, cur, ctx, p, **kw), REFERENCE(cur, ctx, p, **kw), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_features_exact_on_quantised(dev, dtype):
    # Quarter-integers are exact in fp16/bf16 and the tensor-core path accumulates in fp32.
    cur, ctx, p = quantised(6, 21, 40), quantised(3, 6, 21, 40), probs(3, 6, 21, 3)
    kw = dict(size=3, shape="circle", topk=5, temperature=0.2)
    out = run(dev, cur.to(dtype), ctx.to(dtype), p, **kw)
    torch.testing.assert_close(out.double(), reference(cur, ctx, p, **kw), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_features_agree_on_labels(dev, dtype):
    h, w, t, d, m = 8, 20, 3, 64, 4
    cur, ctx = F.normalize(torch.randn(h, w, d), dim=-1), F.normalize(torch.randn(t, h, w, d), dim=-1)
    p = probs(t, h, w, m)
    kw = dict(size=4, shape="circle", topk=5, temperature=0.2)
    out = run(dev, cur.to(dtype), ctx.to(dtype), p, **kw)
    agree = (out.argmax(-1) == REFERENCE(cur, ctx, p, **kw).argmax(-1)).float().mean().item()
    # Rounding the features to 8 (bf16) or 11 (fp16) bits moves near-tied scores across the k-th value.
    assert agree >= 0.9, agree


@pytest.mark.skipif(not EMU_AVAILABLE, reason=SKIP_REASON)
def test_same_bits_across_schedules_and_calls(request):
    cur = F.normalize(torch.randn(4, 10, 32), dim=-1).to(torch.bfloat16)
    ctx = F.normalize(torch.randn(2, 4, 10, 32), dim=-1).to(torch.bfloat16)
    p = probs(2, 4, 10, 5)
    for topk in (5, 9):  # the register path, then the radix path
        outs = []
        for n, name in enumerate(SCHEDULES + ("random",)):
            use_schedule(name, f"{request.node.nodeid}-{n}")
            outs.append(torch.ops.dinotools_emu.topk_propagate(cur, ctx, p, 2.0, "circle", topk, 0.2))
        for out in outs[1:]:
            assert torch.equal(out.view(torch.int32), outs[0].view(torch.int32))
