"""The plugin packages under plugins/, installed, are found through entry points and usable by name.

They must be installed first (CI: ``pip install --no-build-isolation --no-deps ./plugins/<each>``).
Without them these tests skip, except when ``CI=true``: then they fail, so CI proves discovery.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys

import numpy as np
import pytest

import dinotools
from dinotools.interfaces import MaskInitializer, Propagator
from dinotools.pipeline import track_video

# distribution -> (component kind, entry-point name, "module:attr")
PLUGINS = {
    "dinotools-example-propagator": ("propagator", "example-knn",
                                     "dinotools_example_propagator:NearestNeighbourPropagator"),
    "dinotools-sam2": ("initializer", "sam2", "dinotools_sam2:Sam2AutomaticInitializer"),
}


def installed(dist: str) -> str:
    """The installed version of ``dist``; skip (fail under CI=true) when it is not installed."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        why = f"plugin {dist} is not installed: pip install --no-build-isolation --no-deps ./plugins/{dist}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (CI=true: CI must install the plugin packages)")
        pytest.skip(why)


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dinotools.run", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("dist", sorted(PLUGINS))
def test_listed_with_distribution_and_version(dist):
    version = installed(dist)
    kind, name, target = PLUGINS[dist]
    found = [c for c in dinotools.list_components(kind) if c.name == name]
    assert len(found) == 1, [c.name for c in dinotools.list_components(kind)]
    comp = found[0]
    assert comp.source == f"{dist}=={version}"
    assert comp.target == target and comp.error is None and comp.ok


def test_example_knn_by_name_is_a_top1_propagator():
    installed("dinotools-example-propagator")
    knn = dinotools.create_propagator("example-knn")
    assert isinstance(knn, Propagator)
    gen = np.random.default_rng(0)
    t, h, w, d, m = 3, 7, 9, 16, 4
    import torch

    unit = lambda *s: torch.nn.functional.normalize(torch.from_numpy(gen.standard_normal(s)).float(), dim=-1)
    current, context = unit(h, w, d), unit(t, h, w, d)
    probs = torch.softmax(torch.from_numpy(gen.standard_normal((t, h, w, m))).float(), dim=-1)
    reference = dinotools.create_propagator("reference")
    for size, shape in [(2, "circle"), (1.5, "square"), (0, "circle"), (50, "square")]:
        # the built-in oracle with topk=1 copies the best candidate's probs (no ties in random features)
        expected = reference(current, context, probs, size=size, shape=shape, topk=1, temperature=0.1)
        got = knn(current, context, probs, size=size, shape=shape, topk=5, temperature=0.2)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)  # float32 re-summation only


def test_example_knn_tie_rule():
    installed("dinotools-example-propagator")
    import torch

    t, h, w, m = 2, 4, 5, 40
    feats = torch.ones(t, h, w, 1)  # every candidate ties
    probs = torch.eye(m)[torch.arange(t * h * w)].reshape(t, h, w, m)  # a distinct one-hot per cell
    got = dinotools.create_propagator("example-knn")(feats[0], feats, probs, size=1, shape="square", topk=1,
                                                     temperature=1.0)
    for i in range(h):
        for j in range(w):
            # naive rule: the first in-frame offset in row-major order, in frame 0
            dy, dx = next((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if 0 <= i + dy < h and 0 <= j + dx < w)
            assert torch.equal(got[i, j], probs[0, i + dy, j + dx]), (i, j)


def moving_square(n=5, h=96, w=160, obj_id=3):
    """Frames with a red square moving one 16-px patch per frame, and its true id maps."""
    frames, truth = [], []
    for t in range(n):
        f = np.full((h, w, 3), (60, 110, 60), np.uint8)
        m = np.zeros((h, w), np.uint8)
        f[32:64, 16 + 16 * t:48 + 16 * t] = (220, 40, 40)
        m[32:64, 16 + 16 * t:48 + 16 * t] = obj_id
        frames.append(f)
        truth.append(m)
    return frames, truth


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_tracker_uses_the_plugin_propagator_by_name():
    installed("dinotools-example-propagator")
    frames, truth = moving_square()
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", propagator="example-knn",
                                       short_side=None, size=4)
    results = list(track_video(tracker, frames, truth[0]))
    assert len(results) == len(frames)
    for r, m in zip(results, truth):
        assert r.labels.shape == m.shape and set(np.unique(r.labels)) <= {0, 3}  # ids kept as given
        # patch-aligned square of a distinct colour: top-1 matching finds every patch (IoU >= 0.9)
        assert iou(r.labels == 3, m == 3) >= 0.9, r.index


def test_sam2_initializer_by_name_with_an_injected_generator():
    installed("dinotools-sam2")
    frames, truth = moving_square(n=1)

    class Generator:
        def generate(self, image):
            seg = truth[0] > 0
            return [{"segmentation": seg, "area": int(seg.sum()), "predicted_iou": 0.9, "stability_score": 0.97}]

    init = dinotools.create_initializer("sam2", generator=Generator(), min_area=10)
    assert isinstance(init, MaskInitializer)
    np.testing.assert_array_equal(init(0, frames[0]), (truth[0] > 0).astype(np.int32))


def test_cli_lists_the_plugins_with_their_source():
    versions = {dist: installed(dist) for dist in PLUGINS}
    out = run_cli("--list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for dist, (kind, name, _) in PLUGINS.items():
        row = [ln.split() for ln in lines if ln.split()[:2] == [kind, name]]
        assert row and row[0][2] == f"{dist}=={versions[dist]}" and row[0][3] == "ok", out.stdout


def test_cli_tracks_with_the_plugin_propagator_and_reaches_the_sam2_plugin(tmp_path):
    installed("dinotools-example-propagator")
    installed("dinotools-sam2")
    from PIL import Image

    from dinotools.io.masks import read_mask, write_mask

    frames, truth = moving_square(n=3)
    (tmp_path / "frames").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / "frames" / f"{i:05d}.png")
    write_mask(tmp_path / "mask.png", truth[0])
    out = run_cli("--frames", tmp_path / "frames", "--mask", tmp_path / "mask.png", "--output", tmp_path / "out",
                  "--backbone", "baseline", "--propagator", "example-knn", "--short-side", 96, "--size", 4,
                  "--no-progress")
    assert out.returncode == 0, out.stderr
    for i, m in enumerate(truth):
        assert iou(read_mask(tmp_path / "out" / f"{i:05d}.png") == 3, m == 3) >= 0.9, i  # as in the API test
    # --init sam2 reaches the plugin; a missing checkpoint is its one-line user error (exit 2)
    out = run_cli("--frames", tmp_path / "frames", "--output", tmp_path / "out2", "--backbone", "baseline",
                  "--init", "sam2", "--init-arg", f"checkpoint={tmp_path / 'missing.pt'}")
    assert out.returncode == 2 and "missing.pt" in out.stderr and "Traceback" not in out.stderr, out.stderr
