"""bf16/fp16 features end to end (CUDA --dtype): the tracker keeps them, the PyTorch propagators accept them."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from dinotools.eval.synthetic_clip import make_clip
from dinotools.ops.propagators import DensePropagator, WindowPropagator
from dinotools.trackers.label_propagation import LabelPropagationTracker, feature_dtype

KW = dict(size=3, shape="circle", topk=5, temperature=0.2)


def quantised(*shape):
    """Multiples of 1/4: exact in bf16 and fp16, and every dot product is exact in fp32."""
    return torch.randint(-4, 5, shape) / 4


@pytest.mark.parametrize("backbone_dtype,device,expected", [
    (torch.bfloat16, "cuda", torch.bfloat16),
    (torch.float16, "cuda", torch.float16),
    (torch.float32, "cuda", torch.float32),
    (torch.bfloat16, "cpu", torch.float32),  # CPU kernels are fp32: the notebook-exact default stays
    (None, "cuda", torch.float32),           # a backbone without a dtype attribute
])
def test_feature_dtype_follows_the_backbone_on_cuda(backbone_dtype, device, expected):
    backbone = types.SimpleNamespace() if backbone_dtype is None else types.SimpleNamespace(dtype=backbone_dtype)
    assert feature_dtype(backbone, torch.device(device)) == expected


@pytest.mark.parametrize("prop", [WindowPropagator(), DensePropagator()], ids=["torch", "reference"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_propagators_accept_half_features(prop, dtype):
    cur, ctx = quantised(7, 9, 16), quantised(3, 7, 9, 16)
    p = torch.softmax(torch.randn(3, 7, 9, 4) * 3, dim=-1)
    out = prop(cur.to(dtype), ctx.to(dtype), p, **KW)
    assert out.dtype == torch.float32
    # Scores are computed in fp32 from exactly representable features: the fp32 result, to rounding.
    torch.testing.assert_close(out, prop(cur, ctx, p, **KW), atol=1e-6, rtol=0)


def test_tracker_keeps_a_half_context_when_its_features_are_half():
    frames, masks = make_clip(4, (64, 96))
    tracker = LabelPropagationTracker("baseline", "torch", short_side=None)
    tracker.feature_dtype = torch.bfloat16  # what a bf16 backbone on CUDA selects
    state = tracker.new_state()
    feats = tracker.encode(frames)
    assert feats.dtype == torch.bfloat16
    for f in range(4):
        result = tracker.step(state, feats[f], masks[0].shape, masks[0] if f == 0 else None)
    ctx_feats, ctx_probs = state.context()
    assert ctx_feats.dtype == torch.bfloat16 and ctx_probs.dtype == torch.float32
    assert result.labels.shape == masks[0].shape and np.isin(result.labels, np.unique(masks[0])).all()
