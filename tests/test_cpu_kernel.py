"""The CPU kernel on every instruction-set path this machine can run, its threads, and its override."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import shared_path
from test_ops import RANDOM_CASES, probs, quantised

import dinotools
from dinotools import _ext
from dinotools.errors import ConfigError
from dinotools.ops.propagators import DensePropagator
from dinotools.pipeline import track_video

pytestmark = pytest.mark.skipif(not _ext.HAS_EXT, reason=f"dinotools._C not built: {_ext.LOAD_ERROR}")
if _ext.HAS_EXT:
    from dinotools.ops.fused import fused_propagate

REFERENCE = DensePropagator()


@pytest.fixture(params=_ext.cpu_isas(layout_checks=True) or ["none"])
def isa(request):
    """Runs the test with the CPU kernel forced onto one path, then restores the automatic choice."""
    _ext.set_cpu_isa(request.param)
    yield request.param
    _ext.set_cpu_isa("auto")


# Beyond test_ops.RANDOM_CASES: D around the vector widths (1, 7, 17, 33: tails after 4/8/16 lanes),
# odd h and w (partial 2x2 groups and 4-row work items), M=1 and M=255, k far above, equal to and
# just above the number of candidates, one-row frames.
EDGE_CASES = [
    (9, 11, 3, 1, 3, 2, "circle", 5, 0.2),
    (13, 7, 2, 7, 1, 3, "square", 4, 0.3),
    (6, 15, 2, 17, 255, 4.5, "circle", 6, 0.1),
    (5, 5, 4, 33, 2, 100, "circle", 10**6, 0.5),
    (1, 9, 2, 16, 3, 2, "square", 3, 0.2),
    (1, 5, 1, 4, 2, 1, "square", 3, 0.5),  # k equals the candidates inside, exceeds them at the ends
]


@pytest.mark.parametrize("h,w,t,d,m,size,shape,topk,temperature", RANDOM_CASES + EDGE_CASES)
def test_every_path_matches_reference_on_exact_scores(isa, h, w, t, d, m, size, shape, topk, temperature):
    cur, ctx, p = quantised(h, w, d), quantised(t, h, w, d), probs(t, h, w, m)
    kwargs = dict(size=size, shape=shape, topk=topk, temperature=temperature)
    expected = REFERENCE(cur.double(), ctx.double(), p.double(), **kwargs)
    out = fused_propagate(cur, ctx, p, **kwargs)
    # Quarter-integer features: scores are exact on every path, so ranking and ties match the
    # float64 reference exactly; only the softmax/sum rounding is left.
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)


def test_every_path_matches_reference_on_normalised_features(isa):
    h, w, t, d, m = 17, 23, 4, 96, 3
    cur = F.normalize(torch.randn(d, h, w), dim=0).permute(1, 2, 0)  # non-contiguous
    ctx = F.normalize(torch.randn(t, h, w, d), dim=-1)
    p = probs(t, h, w, m)
    kwargs = dict(size=5, shape="circle", topk=5, temperature=0.2)
    expected = REFERENCE(cur.double(), ctx.double(), p.double(), **kwargs)
    torch.testing.assert_close(fused_propagate(cur, ctx, p, **kwargs).double(), expected, atol=1e-5, rtol=0)


def test_all_candidates_tied_survive(isa):
    # Constant features: every candidate scores the same, so every one ties with the k-th value and
    # the output is the plain mean of the window's probabilities (computed here by hand).
    h, w, t, m = 6, 7, 3, 4
    cur, ctx, p = torch.ones(h, w, 8), torch.ones(t, h, w, 8), probs(t, h, w, m)
    out = fused_propagate(cur, ctx, p, size=1, shape="square", topk=2, temperature=0.1)
    expected = torch.empty(h, w, m, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            window = p[:, max(0, i - 1):i + 2, max(0, j - 1):j + 2].double()
            expected[i, j] = window.reshape(-1, m).mean(0)
    torch.testing.assert_close(out.double(), expected, atol=1e-6, rtol=0)


def test_notebook_fixture_cases_on_every_path(isa):
    cases = torch.load(shared_path("fixtures", "notebook_propagate_cases.pt"), weights_only=False)
    for case in cases:
        out = fused_propagate(case["current"], case["context"], case["context_probs"], size=case["size"],
                              shape=case["shape"], topk=case["topk"], temperature=case["temperature"])
        torch.testing.assert_close(out, case["expected"], atol=1e-5, rtol=0)  # issue 4's tolerance


def test_notebook_loop_on_every_path(isa):
    """The whole tracker loop on each path: every label identical to the notebook's (tolerance 0)."""
    from test_tracker import FixtureBackbone

    for case in torch.load(shared_path("fixtures", "notebook_loop_cases.pt"), weights_only=False):
        prm = case["params"]
        t, (hh, ww) = case["features"].shape[0], case["first_mask"].shape
        tracker = dinotools.create_tracker(
            "label-propagation", backbone=FixtureBackbone(case["features"]), propagator="fused",
            max_context=prm["max_context"], size=prm["size"], shape=prm["shape"], topk=prm["topk"],
            temperature=prm["temperature"], upsample=prm["upsample"], short_side=None,
        )
        frames = (np.zeros((hh, ww, 3), np.uint8) for _ in range(t))
        out = np.stack([r.labels for r in track_video(tracker, frames, case["first_mask"].numpy())])
        np.testing.assert_array_equal(out, case["expected"].numpy())


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_kernel_runs_on_the_threads_torch_is_given(threads, restore_threads):
    # The kernel's own count of threads that entered its parallel region: 1 for any setting when
    # the extension is built without OpenMP (at::parallel_for is then a serial loop).
    torch.set_num_threads(threads)
    h = 8 * threads  # enough 4-row work items for every thread
    cur, ctx, p = quantised(h, 5, 8), quantised(2, h, 5, 8), probs(2, h, 5, 2)
    fused_propagate(cur, ctx, p, size=2, shape="circle", topk=3, temperature=0.2)
    assert torch.ops.dinotools.cpu_threads_used() == threads
    assert _ext.cpu_threads_probe() == threads


def test_output_does_not_depend_on_the_thread_count(restore_threads):
    cur = F.normalize(torch.randn(21, 19, 40), dim=-1)
    ctx, p = F.normalize(torch.randn(3, 21, 19, 40), dim=-1), probs(3, 21, 19, 4)
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        outs.append(fused_propagate(cur, ctx, p, size=4, shape="circle", topk=5, temperature=0.2))
    assert torch.equal(outs[0], outs[1])  # every query is computed in the same order on any thread


def test_unknown_instruction_set_is_named():
    with pytest.raises(ConfigError, match="avx1024"):
        _ext.set_cpu_isa("avx1024")
    assert _ext.cpu_isa() == _ext.cpu_isas()[0]  # unchanged: the best path


def test_auto_picks_the_best_runnable_path_never_the_layout_check():
    isas = _ext.cpu_isas()
    assert isas[-1] == "generic" and "avx512-layout" not in isas
    assert _ext.cpu_isas(layout_checks=True) == isas + ["avx512-layout"]
    _ext.set_cpu_isa("avx512-layout")
    _ext.set_cpu_isa("auto")
    assert _ext.cpu_isa() == isas[0]


def _run_with_env(value, code):
    env = dict(os.environ, DINOTOOLS_CPU_ISA=value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_environment_override_picks_the_path():
    res = _run_with_env("generic", "from dinotools import _ext; print(_ext.cpu_isa())")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "generic"


def test_environment_override_this_cpu_cannot_run_fails_on_use():
    code = ("import torch; from dinotools.ops.fused import fused_propagate\n"
            "fused_propagate(torch.zeros(2, 2, 4), torch.zeros(1, 2, 2, 4), torch.ones(1, 2, 2, 1), size=1, "
            "shape='square', topk=1, temperature=1.0)")
    res = _run_with_env("avx1024", code)
    assert res.returncode != 0
    assert "DINOTOOLS_CPU_ISA" in res.stderr and "avx1024" in res.stderr
