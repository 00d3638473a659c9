"""``batch --points --engine ray`` on a local Ray (2 CPUs): the tracks of ``python -m dinotools.points``, then
a rerun skips every video. Pattern of test_batch_ray.py (a file of its own: that one is the mask batches').

Needs ``pip install 'dinotools[ray]'``; skipped without Ray, except under ``CI=true``, where it fails.
"""
import os

import pytest
from batch_data import mini_davis, record
from test_batch_points import POINTS, SEQS, assert_same, reference

from dinotools.commands.batch import main

try:
    import ray
except ImportError:
    if os.environ.get("CI") == "true":
        raise ImportError("CI=true: CI must install Ray (pip install 'dinotools[ray]') so that these tests run")
    pytest.skip("Ray is not installed (pip install 'dinotools[ray]')", allow_module_level=True)


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, object_store_memory=150 * 2**20, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_points_give_the_tracks_of_dinotools_points(tmp_path, ray_session, capsys):
    root = mini_davis(tmp_path / "davis", 4, SEQS)
    refs = reference(root, tmp_path / "ref", grid=3)
    out = tmp_path / "out"
    argv = ["--davis", str(root), "--output", str(out), "--points", "--grid", "3", "--engine", "ray",
            "--workers", "2", "--no-progress", *POINTS]
    assert main(argv) == 0, capsys.readouterr().err
    assert f"{len(SEQS)} video(s): {len(SEQS)} done" in capsys.readouterr().out
    assert_same(out, refs, atol=1e-3)  # actors run torch with 1 thread: float sums in another order
    videos = record(out)["videos"]
    assert all(v["status"] == "done" and v["actor"].startswith("dinotools-batch-") for v in videos.values())
    assert main(argv) == 0
    assert f"0 done, {len(SEQS)} skipped" in capsys.readouterr().out
