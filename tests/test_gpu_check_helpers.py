"""benchmarks/gpu_measure.py: the roofline's work counts against a naive count, the JSON layout, the inputs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from dinotools import _ext
from dinotools.ops.dense import make_neighborhood_mask

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_measure as gm  # noqa: E402


@pytest.mark.parametrize("h,w,t,d,m,size,shape,topk", [
    (7, 9, 3, 16, 5, 2, "circle", 5), (6, 11, 2, 8, 255, 12, "circle", 5), (5, 5, 1, 4, 1, 0, "square", 3),
    (4, 8, 4, 32, 2, 1.5, "square", 1000),
])
def test_window_work_counts_in_frame_candidates_like_the_dense_mask(h, w, t, d, m, size, shape, topk):
    cand = make_neighborhood_mask(h, w, float(size), shape).sum((2, 3)).long()  # [h,w] cells each query sees
    macs = int(cand.sum()) * t * d + sum(min(topk, int(c) * t) * m for c in cand.flatten())
    nbytes = (h * w * d + t * h * w * d) * 2 + t * h * w * m * 4 + h * w * m * 4
    work = gm.window_work(h, w, t, d, m, size=size, shape=shape, topk=topk, feature_bytes=2)
    assert work == {"macs": macs, "bytes": nbytes}


def test_compact_json_round_trips_and_keeps_leaves_on_one_line():
    value = {"a": {"x": 1.5, "y": [1, 2, 3]}, "b": [{"c": "d"}, 2], "e": "f" * 200, "g": {}}
    text = gm.compact_json(value)
    assert json.loads(text) == value
    assert '"a": {\n' in text and '"y": [1, 2, 3]' in text and '{"c": "d"}' in text


def test_video_like_inputs_are_normalised_probabilities_and_deterministic():
    cur, ctx, probs = gm.video_like(6, 10, 3, 16, 4, seed=3)
    assert cur.shape == (6, 10, 16) and ctx.shape == (3, 6, 10, 16) and probs.shape == (3, 6, 10, 4)
    torch.testing.assert_close(torch.linalg.vector_norm(ctx, dim=-1), torch.ones(3, 6, 10))
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 6, 10))
    assert torch.equal(gm.video_like(6, 10, 3, 16, 4, seed=3)[1], ctx)


@pytest.mark.skipif(not _ext.HAS_EXT, reason=f"dinotools._C not built: {_ext.LOAD_ERROR}")
def test_all_ties_case_passes_on_the_cpu_operator_and_fails_on_a_wrong_one(monkeypatch):
    import gpu_check

    cpu = torch.device("cpu")
    result = gpu_check.all_ties(cpu, gpu_check.PROFILES["quick"])
    assert result["pass"] and set(result["cases"]) == {"bfloat16 k=1", "bfloat16 k=5", "float32 k=1", "float32 k=5"}
    # An operator that keeps one candidate (the query's own cell in frame 0) instead of every tie.
    monkeypatch.setattr(gpu_check, "fused", lambda cur, ctx, probs, **kw: probs[0])
    assert not gpu_check.all_ties(cpu, gpu_check.PROFILES["quick"])["pass"]
    # Non-finite output fails even where the numbers would be close.
    monkeypatch.setattr(gpu_check, "fused", lambda cur, ctx, probs, **kw: torch.full_like(probs[0], float("nan")))
    assert not gpu_check.all_ties(cpu, gpu_check.PROFILES["quick"])["pass"]
