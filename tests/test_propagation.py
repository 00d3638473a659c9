"""Notebook parity of propagate/make_neighborhood_mask, and the windowed propagator vs the oracle."""
import pytest
import torch

import dinotools
from dinotools.ops.dense import make_neighborhood_mask, propagate
from dinotools.ops.window import window_offsets, window_propagate


def load_cases(fixtures_dir):
    return torch.load(fixtures_dir / "notebook_propagate_cases.pt", weights_only=False)


def test_notebook_propagate_cases(fixtures_dir):
    """Our dense functions reproduce the notebook: identical masks, max abs diff <= 1e-6."""
    for case in load_cases(fixtures_dir):
        mask = make_neighborhood_mask(case["h"], case["w"], case["size"], case["shape"])
        assert torch.equal(mask, case["neighborhood_mask"])
        out = propagate(case["current"], case["context"], case["context_probs"], mask, case["topk"],
                        case["temperature"])
        assert out.shape == case["expected"].shape and out.dtype == torch.float32
        assert (out - case["expected"]).abs().max() <= 1e-6


@pytest.mark.parametrize("name", ["reference", "torch", "auto"])
def test_registered_propagators_match_fixtures(fixtures_dir, name):
    """Every registered propagator reproduces the notebook cases within 1e-6 (ties included)."""
    prop = dinotools.create_propagator(name)
    for case in load_cases(fixtures_dir):
        out = prop(case["current"], case["context"], case["context_probs"], size=case["size"],
                   shape=case["shape"], topk=case["topk"], temperature=case["temperature"])
        assert (out - case["expected"]).abs().max() <= 1e-6, (name, case["h"], case["w"], case["size"])


def random_inputs(h, w, t, m, d, quantise=False):
    cur = torch.nn.functional.normalize(torch.randn(h, w, d), dim=-1)
    ctx = torch.nn.functional.normalize(torch.randn(t, h, w, d), dim=-1)
    if quantise:  # coarse values make many exact ties between candidates
        cur, ctx = (cur * 2).round() / 2, (ctx * 2).round() / 2
    probs = torch.softmax(torch.randn(t, h, w, m), dim=-1)
    return cur, ctx, probs


@pytest.mark.parametrize(
    "h,w,t,m,size,shape,topk,temp",
    [
        (1, 1, 1, 1, 12, "circle", 5, 0.2),  # k larger than the number of candidates
        (5, 7, 3, 2, 0, "square", 1, 0.1),  # radius 0: only the same cell
        (9, 4, 2, 3, 2.5, "circle", 3, 0.7),
        (6, 11, 12, 4, 3, "square", 10, 0.05),  # 12 context frames
        (4, 30, 2, 2, 100, "circle", 7, 0.2),  # radius larger than the frame
        (13, 10, 8, 5, float("inf"), "square", 5, 0.2),
        (17, 9, 1, 2, 12, "circle", 5, 0.2),  # not a multiple of the tile size
    ],
)
@pytest.mark.parametrize("block", [1, 8])
def test_window_matches_reference(h, w, t, m, size, shape, topk, temp, block):
    cur, ctx, probs = random_inputs(h, w, t, m, 8)
    mask = make_neighborhood_mask(h, w, size, shape)
    expected = propagate(cur, ctx, probs, mask, topk, temp)
    out = window_propagate(cur, ctx, probs, size=size, shape=shape, topk=topk, temperature=temp, block=block)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


def test_window_ties_and_noncontiguous():
    cur, ctx, probs = random_inputs(8, 9, 4, 3, 6, quantise=True)
    cur_nc = cur.transpose(0, 1).contiguous().transpose(0, 1)  # same values, non-contiguous strides
    ctx_nc = ctx.permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    assert not cur_nc.is_contiguous() and not ctx_nc.is_contiguous()
    mask = make_neighborhood_mask(8, 9, 2, "circle")
    expected = propagate(cur, ctx, probs, mask, 3, 0.2)
    out = window_propagate(cur_nc, ctx_nc, probs, size=2, shape="circle", topk=3, temperature=0.2)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


def test_window_offsets_radius_semantics():
    off, ry, rx = window_offsets(100, 100, 12.0, "circle")
    assert len(off) == 441 and ry == rx == 12  # the notebook's circle of radius 12: 441 cells
    off, _, _ = window_offsets(100, 100, 12.0, "square")
    assert len(off) == 625  # 25 x 25
    off, ry, rx = window_offsets(3, 5, 12.0, "square")
    assert (ry, rx) == (2, 4) and len(off) == 5 * 9  # clipped to what the frame can hold
