"""The fused topk_propagate operator against the notebook fixtures and the dense reference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import shared_path
from cuda_emu import AVAILABLE as EMU_AVAILABLE
from cuda_emu import SCHEDULES, activated, op_devices, use_schedule
from cuda_emu import SKIP_REASON as EMU_SKIP_REASON

from dinotools import _ext
from dinotools.errors import InputError
from dinotools.ops.propagators import DensePropagator

needs_ext = pytest.mark.skipif(not _ext.HAS_EXT, reason=f"dinotools._C not built: {_ext.LOAD_ERROR}")
if _ext.HAS_EXT:
    from dinotools.ops.fused import fused_propagate

REFERENCE = DensePropagator()


@pytest.fixture(params=op_devices())
def dev(request):
    """cpu, cuda (when present) and the emulated CUDA device in its three schedules."""
    with activated(request.param, request.node.nodeid) as d:
        yield d


@pytest.fixture(params=op_devices(half=True))
def half_dev(request):
    """Devices whose kernel takes float16/bfloat16 features: cuda and the emulated one."""
    with activated(request.param, request.node.nodeid) as d:
        yield d


def quantised(*shape, device="cpu", dtype=torch.float32):
    """Features in multiples of 1/4 with |x| <= 1: every dot product is exact in fp32 whatever the
    summation order, so kernel and reference rank candidates identically and ties are common."""
    return (torch.randint(-4, 5, shape) / 4).to(device=device, dtype=dtype)


def probs(t, h, w, m, device="cpu"):
    return torch.softmax(torch.randn(t, h, w, m) * 3, dim=-1).to(device)


@needs_ext
@pytest.mark.parametrize("index", range(8))
def test_notebook_fixture_cases(index, dev):
    case = torch.load(shared_path("fixtures", "notebook_propagate_cases.pt"), weights_only=False)[index]
    args = [dev.to(case[k]) for k in ("current", "context", "context_probs")]
    out = dev.propagate(*args, size=case["size"], shape=case["shape"], topk=case["topk"],
                        temperature=case["temperature"])
    assert out.dtype == torch.float32 and out.shape == case["expected"].shape
    # Acceptance tolerance of issue 4: within 1e-5 of the notebook's own output.
    torch.testing.assert_close(out.cpu(), case["expected"], atol=1e-5, rtol=0)


# (h, w, t, D, M, size, shape, topk, temperature): borders, radius > frame, fractional and zero
# radius, k > number of candidates, k past the kernel's stack top-k (64), 1..12 context frames.
RANDOM_CASES = [
    (9, 13, 1, 16, 2, 3, "circle", 5, 0.2),
    (12, 17, 4, 32, 3, 12, "circle", 5, 0.2),
    (10, 10, 8, 24, 5, 2, "square", 5, 0.1),
    (7, 11, 3, 8, 4, 1.5, "circle", 3, 0.05),
    (6, 9, 12, 16, 1, 5.0, "circle", 7, 0.7),
    (5, 40, 2, 16, 2, 30, "square", 5, 0.2),
    (8, 8, 2, 12, 3, 0, "circle", 5, 0.2),
    (8, 9, 3, 8, 2, 1, "square", 1000, 0.3),
    (11, 7, 5, 20, 10, 4, "circle", 100, 0.5),
    (3, 1, 6, 9, 2, 2, "square", 4, 1.0),
    (4, 6, 2, 8, 255, 2, "circle", 5, 0.2),
    (1, 1, 1, 4, 3, 1, "square", 5, 0.2),
]


@needs_ext
@pytest.mark.parametrize("h,w,t,d,m,size,shape,topk,temperature", RANDOM_CASES)
def test_matches_reference_on_exact_scores(h, w, t, d, m, size, shape, topk, temperature, dev):
    cur, ctx, p = quantised(h, w, d), quantised(t, h, w, d), probs(t, h, w, m)
    kwargs = dict(size=size, shape=shape, topk=topk, temperature=temperature)
    expected = REFERENCE(cur.double(), ctx.double(), p.double(), **kwargs)
    out = dev.propagate(dev.to(cur), dev.to(ctx), dev.to(p), **kwargs)
    # Scores are exact, so only the softmax/sum rounding differs from the float64 reference.
    torch.testing.assert_close(out.cpu().double(), expected, atol=1e-5, rtol=0)


@needs_ext
def test_matches_reference_on_normalised_features_non_contiguous(dev):
    h, w, t, d, m = 14, 19, 5, 48, 4
    # Stored [D, ...] and permuted: every input is non-contiguous.
    cur = F.normalize(torch.randn(d, h, w), dim=0).permute(1, 2, 0)
    ctx = F.normalize(torch.randn(d, t, h, w), dim=0).permute(1, 2, 3, 0)
    p = probs(t, h, w, 2 * m)[..., ::2]
    assert not (cur.is_contiguous() or ctx.is_contiguous() or p.is_contiguous())
    kwargs = dict(size=4, shape="circle", topk=5, temperature=0.2)
    expected = REFERENCE(cur, ctx, p, **kwargs)
    out = dev.propagate(dev.to(cur), dev.to(ctx), dev.to(p), **kwargs)
    torch.testing.assert_close(out.cpu(), expected, atol=1e-5, rtol=0)  # same tolerance as the fixtures


@needs_ext
def test_ties_with_the_kth_value_all_survive(dev):
    # One query, one frame, 1x3 context all equally similar: top-1 keeps all three (">= k-th").
    cur = torch.ones(1, 3, 1)
    ctx = torch.ones(1, 1, 3, 1)
    p = torch.tensor([[[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]]])
    out = dev.propagate(dev.to(cur), dev.to(ctx), dev.to(p), size=2, shape="square", topk=1, temperature=0.1)
    torch.testing.assert_close(out[0, 0].cpu(), torch.tensor([1 / 3, 2 / 3]), atol=1e-6, rtol=0)


@needs_ext
def test_ties_across_frames_and_rows_keep_every_copy_of_the_kth_value(dev):
    # Scores are exact: 2 frames x 3x3 window, top-3 lands inside a run of equal scores, so every
    # candidate equal to the 3rd value survives, in both frames (float64 reference does the same).
    cur = torch.tensor([[[1.0], [1.0], [1.0]], [[1.0], [1.0], [1.0]], [[1.0], [1.0], [1.0]]])
    ctx = torch.tensor([[[1.0], [0.5], [0.5]], [[0.5], [0.25], [0.5]], [[0.25], [0.5], [0.25]]]).expand(2, 3, 3, 1)
    ctx = ctx * torch.tensor([1.0, 0.5]).view(2, 1, 1, 1) + torch.tensor([0.0, 0.25]).view(2, 1, 1, 1)
    p = probs(2, 3, 3, 4)
    kwargs = dict(size=1, shape="square", topk=3, temperature=0.3)
    expected = REFERENCE(cur.double(), ctx.double(), p.double(), **kwargs)
    out = dev.propagate(dev.to(cur), dev.to(ctx.contiguous()), dev.to(p), **kwargs)
    torch.testing.assert_close(out.cpu().double(), expected, atol=1e-6, rtol=0)


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_features_accumulate_in_fp32(dtype, half_dev):
    cur, ctx, p = quantised(10, 12, 16), quantised(3, 10, 12, 16), probs(3, 10, 12, 3)
    kwargs = dict(size=3, shape="circle", topk=5, temperature=0.2)
    expected = REFERENCE(cur.double(), ctx.double(), p.double(), **kwargs)
    out = half_dev.propagate(half_dev.to(cur).to(dtype), half_dev.to(ctx).to(dtype), half_dev.to(p), **kwargs)
    # Quarter-integers are exact in fp16/bf16 and fp32 accumulation keeps the scores exact.
    torch.testing.assert_close(out.cpu().double(), expected, atol=1e-5, rtol=0)


@needs_ext
@pytest.mark.parametrize("bad,match", [
    (dict(current=torch.zeros(4, 5)), "current"),
    (dict(context=torch.zeros(2, 4, 6, 8)), "context"),
    (dict(context_probs=torch.zeros(2, 4, 5, 3, dtype=torch.float64)), "context_probs"),
    (dict(shape="hexagon"), "shape"),
    (dict(topk=0), "topk"),
    (dict(temperature=0.0), "temperature"),
    (dict(size=-1), "size"),
])
def test_bad_arguments_are_named(bad, match):
    args = dict(current=torch.zeros(4, 5, 8), context=torch.zeros(2, 4, 5, 8),
                context_probs=torch.zeros(2, 4, 5, 3), size=2, shape="circle", topk=5, temperature=0.2)
    args.update(bad)
    with pytest.raises(InputError, match=match):
        fused_propagate(args.pop("current"), args.pop("context"), args.pop("context_probs"), **args)


@needs_ext
def test_opcheck(dev):
    samples = [
        (quantised(6, 7, 8), quantised(2, 6, 7, 8), probs(2, 6, 7, 3), 2.0, "circle", 5, 0.2),
        (quantised(5, 4, 4), quantised(3, 5, 4, 4), probs(3, 5, 4, 1), 10.0, "square", 50, 0.5),
    ]
    for cur, ctx, p, *rest in samples:
        args = (dev.to(cur), dev.to(ctx), dev.to(p), *rest)
        torch.library.opcheck(dev.op, args)


@needs_ext
def test_many_objects_m_1537(dev):
    # M = 1537 objects: the old kernel asked 8 warps x 1537 x 4 bytes (> 48 KiB) of shared memory for M.
    cur, ctx, p = quantised(2, 3, 8), quantised(1, 2, 3, 8), probs(1, 2, 3, 1537)
    kwargs = dict(size=1, shape="square", topk=3, temperature=0.2)
    expected = REFERENCE(cur.double(), ctx.double(), p.double(), **kwargs)
    out = dev.propagate(dev.to(cur), dev.to(ctx), dev.to(p), **kwargs)
    torch.testing.assert_close(out.cpu().double(), expected, atol=1e-5, rtol=0)


@pytest.mark.skipif(not EMU_AVAILABLE, reason=EMU_SKIP_REASON)
def test_emulated_results_are_bitwise_identical_whatever_the_schedule(request):
    # Same input, same bits: the order in which threads and blocks run must not change the output.
    h, w, t, d, m = 6, 9, 3, 32, 5
    cur = F.normalize(torch.randn(h, w, d), dim=-1)
    ctx = F.normalize(torch.randn(t, h, w, d), dim=-1)
    p = probs(t, h, w, m)
    outs = []
    for schedule in SCHEDULES + ("random",):
        use_schedule(schedule, request.node.nodeid + str(len(outs)))
        outs.append(torch.ops.dinotools_emu.topk_propagate(cur, ctx, p, 3.0, "circle", 20, 0.5))
    for out in outs[1:]:
        assert torch.equal(out.view(torch.int32), outs[0].view(torch.int32))


@needs_ext
def test_torch_compile_fullgraph():
    cur, ctx, p = quantised(6, 7, 8), quantised(2, 6, 7, 8), probs(2, 6, 7, 3)

    def step(cur, ctx, p):
        return fused_propagate(cur, ctx, p, size=2, shape="circle", topk=3, temperature=0.2) * 2

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(cur, ctx, p), step(cur, ctx, p))


def test_without_extension_auto_falls_back_and_fused_explains(monkeypatch):
    from dinotools import create_propagator
    from dinotools.ops.propagators import WindowPropagator, auto_propagator

    monkeypatch.setattr(_ext, "HAS_EXT", False)
    monkeypatch.setattr(_ext, "LOAD_ERROR", "dinotools._C could not be loaded (ImportError: test)")
    assert isinstance(auto_propagator(), WindowPropagator)
    with pytest.raises(_ext.ExtensionMissingError, match="pip install --no-build-isolation"):
        create_propagator("fused")
