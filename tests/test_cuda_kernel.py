"""The fused CUDA kernel on cuda (when present) and the emulated cuda-emu device in its three schedules.

Expected values come from the dense float64 reference (DensePropagator); the notebook fixtures, ties,
M = 1537, opcheck and more run on the same devices in tests/test_ops.py.
Cases stay small: the emulator runs every CUDA thread of every block on a CPU fiber, and the exact slow
paths (ties beyond the register buffers, k > 8) rescan each query's window several times.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cuda_emu import AVAILABLE as EMU_AVAILABLE
from cuda_emu import (
    SCHEDULES,
    SKIP_REASON,
    OpDevice,
    activated,
    op_devices,
    use_schedule,
)

from dinotools.ops.dense import make_neighborhood_mask
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


# --- launch plans: the ones real GPUs pick (device models), and every plan forced -------------------
# The emulator's device models (set_device) carry each GPU's opt-in shared memory, so the binding's
# plan choice runs as on that GPU; the knob "topk_plan" forces a plan; last_note() says which plan and
# loader (16-byte cp.async, or scalar for odd D / misaligned pointers) the launch used.

PLANS = ("resident3", "resident2", "streamed3", "streamed2")  # the kernel's order (topk_plan = index)
F32, BF16, F16 = torch.float32, torch.bfloat16, torch.float16
# (device, dtype, D, plan, misaligned): around each device's thresholds (sm_90 streams past fp32 D=608
# and bf16 D=1216; sm_80 past fp32 352, bf16 704; sm_86/89 have no room for 3 streamed stages and
# take streamed2 past fp32 96, bf16 192), the notebook default fp32 D=1024, D up to 1280, odd D and
# a pointer 1 element off 16 bytes (both: the scalar loader).
PICKS = [
    ("sm_90", F32, 544, "resident3", False), ("sm_90", F32, 608, "resident2", False),
    ("sm_90", F32, 1024, "streamed3", False), ("sm_90", F32, 1279, "streamed3", False),
    ("sm_90", F32, 640, "streamed3", True),
    ("sm_90", BF16, 1088, "resident3", False), ("sm_90", BF16, 1216, "resident2", False),
    ("sm_90", BF16, 1280, "streamed3", False), ("sm_90", BF16, 1280, "streamed3", True),
    ("sm_90", F16, 1217, "streamed3", False),
    ("sm_80", F32, 288, "resident3", False), ("sm_80", F32, 352, "resident2", False),
    ("sm_80", F32, 1024, "streamed3", False), ("sm_80", F32, 353, "streamed3", False),
    ("sm_80", BF16, 576, "resident3", False), ("sm_80", BF16, 704, "resident2", False),
    ("sm_80", BF16, 705, "streamed3", False), ("sm_80", BF16, 1280, "streamed3", True),
    ("sm_86", F32, 32, "resident3", False), ("sm_86", F32, 96, "resident2", False),
    ("sm_86", F32, 1024, "streamed2", False), ("sm_86", BF16, 64, "resident3", False),
    ("sm_86", BF16, 192, "resident2", False), ("sm_86", BF16, 193, "streamed2", False),
    ("sm_86", BF16, 1280, "streamed2", False), ("sm_86", F16, 1280, "streamed2", True),
    ("sm_89", F32, 97, "streamed2", False), ("sm_89", F32, 1280, "streamed2", True),
    ("sm_89", BF16, 128, "resident2", False), ("sm_89", BF16, 1279, "streamed2", False),
]
# (h, w, t, size, shape): 2 x 2 blocks with borders; a 60-wide frame whose window union spans two
# 48-column segments. top-k 5 (register buffers) or 1 in turn, and 9 (radix select: 5 rescans of each
# window) where radix=True: the forced plans at moderate D (rescans at D = 1280 take minutes here).
SHAPES = [(5, 20, 2, 3, "circle"), (4, 60, 1, 20, "square")]


@contextmanager
def emulated(schedule, request):
    """The emulated device in `schedule` (guarded global memory); sm_90, the automatic plan and exact
    mma rounding again afterwards."""
    with activated(OpDevice(f"cuda-emu-{schedule}", "cpu"), request.node.nodeid) as d:
        try:
            yield d
        finally:
            torch.ops.dinotools_emu.set_device("sm_90")
            torch.ops.dinotools_emu.set_knob("topk_plan", -1)
            torch.ops.dinotools_emu.set_knob("mma_column_rounding", -1)


@pytest.fixture
def emu_turn(request):
    """The emulated device in one schedule, taken in turn by case index (each large-D case runs once:
    the three schedules over all cases, within CI's time). Test ids say "cuda-emu" so that the
    mutation check (.ci/cuda_emu_mutations.py, -k cuda-emu) runs them."""
    with emulated(SCHEDULES[request.node.callspec.params["index"] % len(SCHEDULES)], request) as d:
        yield d


def placed(x, misaligned):
    """x, contiguous; misaligned: its data 1 element past a 16-byte boundary (the scalar loader)."""
    if not misaligned:
        return x.contiguous()
    flat = torch.empty(x.numel() + 1, dtype=x.dtype)[1:]
    assert flat.data_ptr() % 16 != 0
    return flat.copy_(x.flatten()).view(x.shape)


def run_plan(dev, index, d, dtype, misaligned=False, radix=False):
    """(output, float64 reference, the launch's note) on exact (quarter-integer) features."""
    h, w, t, size, shape = SHAPES[index % len(SHAPES)]
    topks = (5, 9, 1) if radix and index % len(SHAPES) == 0 else (5, 1)
    kw = dict(size=size, shape=shape, topk=topks[index // len(SHAPES) % len(topks)], temperature=0.2)
    cur, ctx, p = quantised(h, w, d), quantised(t, h, w, d), probs(t, h, w, 3)
    out = dev.propagate(placed(cur.to(dtype), misaligned), placed(ctx.to(dtype), misaligned), p, **kw)
    return out.double(), reference(cur, ctx, p, **kw), torch.ops.dinotools_emu.last_note()


@pytest.mark.parametrize("index,device,dtype,d,plan,misaligned", [(i, *c) for i, c in enumerate(PICKS)],
                         ids=[f"cuda-emu-{c[0]}-{str(c[1])[6:]}-D{c[2]}-{c[3]}{'-misaligned' if c[4] else ''}" for c in PICKS])
def test_device_models_pick_the_plans_real_gpus_pick(emu_turn, index, device, dtype, d, plan, misaligned):
    torch.ops.dinotools_emu.set_device(device)
    out, expected, note = run_plan(emu_turn, index, d, dtype, misaligned)
    scalar = misaligned or d * torch.finfo(dtype).bits // 8 % 16 != 0
    assert note.split()[:2] == [plan, "scalar" if scalar else "cp.async"], note
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


# Every plan forced on every device model (large D is PICKS' job): streamed plans at D = 160 (2.5
# channel chunks) or 159 for fp32 (odd: scalar loader), resident ones at D = 32 (the 2-stage pipeline at
# small D, which sm_90 never picks). streamed3 needs 110592 bytes, more than sm_86/89's 101376: the
# launch must be refused there, not overrun.
FORCED = [(p, dev, dt) for p in PLANS for dev in ("sm_80", "sm_86", "sm_89", "sm_90") for dt in (F32, BF16)]
REFUSED = {("streamed3", "sm_86"), ("streamed3", "sm_89")}


@pytest.mark.parametrize("index,plan,device,dtype", [(i, *c) for i, c in enumerate(FORCED)],
                         ids=[f"cuda-emu-{c[0]}-{c[1]}-{str(c[2])[6:]}{'-refused' if c[:2] in REFUSED else ''}"
                              for c in FORCED])
def test_every_plan_forced_on_every_device_model(emu_turn, index, plan, device, dtype):
    torch.ops.dinotools_emu.set_device(device)
    torch.ops.dinotools_emu.set_knob("topk_plan", PLANS.index(plan))
    d = 32 if plan.startswith("resident") else (159 if dtype == F32 else 160)
    if (plan, device) in REFUSED:
        with pytest.raises(RuntimeError, match="kernel launch failed"):
            run_plan(emu_turn, index, d, dtype)
        return
    out, expected, note = run_plan(emu_turn, index, d, dtype, radix=True)
    assert note.split()[0] == plan, note
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


TIED = [(plan, dtype, d, topk) for plan in ("streamed3", "streamed2") for dtype, d, topk in ((BF16, 96, 1), (F32, 72, 10))]


@pytest.mark.parametrize("index,plan,dtype,d,topk", [(i, *c) for i, c in enumerate(TIED)],
                         ids=[f"cuda-emu-{c[0]}-{str(c[1])[6:]}-k{c[3]}" for c in TIED])
def test_all_tied_window_on_streamed_plans(emu_turn, index, plan, dtype, d, topk):
    # Every score equal (D/16): the buffers overflow with ties (k=1: 9 window rows x 3 frames over 4
    # segment warps, ~2 columns per lane each: ~13 > 8 per buffer; tie rescan) or k > 8 takes the radix
    # select; streamed plans reload the query tile inside those rescans, over 2-3 channel chunks.
    torch.ops.dinotools_emu.set_knob("topk_plan", PLANS.index(plan))
    h, w, t = 9, 12, 3
    cur, ctx, p = torch.ones(h, w, d) / 4, torch.ones(t, h, w, d) / 4, probs(t, h, w, 3)
    kw = dict(size=4, shape="circle", topk=topk, temperature=0.2)
    out = emu_turn.propagate(cur.to(dtype), ctx.to(dtype), p, **kw)
    assert torch.ops.dinotools_emu.last_note().startswith(plan)
    torch.testing.assert_close(out.double(), reference(cur, ctx, p, **kw), atol=1e-5, rtol=0)


# --- tie rescans on a GPU whose tensor-core rounding depends on the column --------------------------

def _emulated_mma_score(q, v, odd_column):
    """q.v as the emulated mma computes it with knob mma_column_rounding=1 (tp_primitives.cuh): per
    16-channel k-step, the 16 products summed in double, plus the fp32 accumulator, rounded to fp32;
    toward zero in odd columns of the n8 tile. q, v: [D] bf16, D a multiple of 16."""
    acc = np.float32(0)
    x, y = q.double().numpy(), v.double().numpy()
    for k in range(0, x.size, 16):
        s = 0.0
        for e in range(k, k + 16):  # in order, as the emulator sums
            s += x[e] * y[e]
        s += float(acc)
        r = np.float32(s)
        if odd_column and abs(float(r)) > abs(s):
            r = np.nextafter(r, np.float32(0))
        acc = r
    return float(acc)


@pytest.mark.parametrize("index,topk", [(0, 1), (2, 5)], ids=["cuda-emu-forward-k1", "cuda-emu-random-k5"])
def test_tie_rescan_sees_each_candidate_in_the_main_loops_column(emu_turn, index, topk):
    # One random normalised bf16 vector v in every context cell: a query's exact scores are all equal,
    # but the emulated tensor core now rounds odd tile columns toward zero, so for most queries the
    # candidates in odd columns of the main loop's tiles (counted from the block's union start clo)
    # score one notch apart from the even ones. The ties overflow the register buffers; the rescan must
    # keep exactly the candidates of the higher class, which it does only if it puts every candidate in
    # the column the main loop used (a rescan tiled from the window's own first column does not).
    h, w, t, d, size = 14, 20, 3, 128, 6  # 13 window rows x 3 frames: ~15 top-class scores per buffer (8)
    g = torch.Generator().manual_seed(3)
    v = F.normalize(torch.randn(d, generator=g), dim=0).to(BF16)
    cur = F.normalize(torch.randn(h, w, d, generator=g), dim=-1).to(BF16)
    ctx, p = v.expand(t, h, w, d).contiguous(), probs(t, h, w, 3)
    torch.ops.dinotools_emu.set_knob("mma_column_rounding", 1)
    out = emu_turn.propagate(cur, ctx, p, size=size, shape="circle", topk=topk, temperature=0.2)
    window = make_neighborhood_mask(h, w, float(size), "circle")  # [h, w, h, w]
    rx = min(size, w - 1)
    expected, split = torch.empty(h, w, 3, dtype=torch.float64), 0
    for i in range(h):
        for j in range(w):
            even, odd = (_emulated_mma_score(cur[i, j], v, c) for c in (False, True))
            odd_col = (torch.arange(w) - max(0, j // 16 * 16 - rx)).remainder(2).eq(1)  # from the block's clo
            keep = window[i, j] & (odd_col if odd > even else ~odd_col if even > odd else torch.ones(w, dtype=bool))
            split += even != odd
            # exp(s/T - max/T) weights: 1 for the survivors (equal scores); their probabilities' mean.
            expected[i, j] = p[:, keep].double().mean(dim=(0, 1))
    assert split > h * w // 2, split  # most queries tell the two classes apart, else no test
    torch.testing.assert_close(out.double(), expected, atol=1e-6, rtol=0)
