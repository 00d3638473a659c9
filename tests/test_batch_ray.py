"""``--engine ray`` on a local Ray (2 CPUs): same masks as dinotools.run; one actor killed mid-video (ray.kill)
is retried on a new actor or recorded as failed, and the rerun finishes it; never silently lost.

Needs ``pip install 'dinotools[ray]'``; skipped without Ray, except under ``CI=true``, where it fails.
"""
import os
import threading

import numpy as np
import pytest
from batch_data import (
    TRACKING,
    assert_complete,
    masks_of,
    mid_video,
    mini_davis,
    record,
    reference,
    snapshot,
    wait_for,
)

from dinotools.batch import davis_videos, run_batch
from dinotools.commands.batch import main
from dinotools.runs.settings import RunSettings

try:
    import ray
except ImportError:
    if os.environ.get("CI") == "true":
        raise ImportError("CI=true: CI must install Ray (pip install 'dinotools[ray]') so that these tests run")
    pytest.skip("Ray is not installed (pip install 'dinotools[ray]')", allow_module_level=True)

FRAMES = 5


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, object_store_memory=150 * 2**20, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    root = mini_davis(tmp_path_factory.mktemp("davis"), FRAMES)
    return root, reference(root, tmp_path_factory.mktemp("reference"))


def test_ray_gives_the_masks_of_dinotools_run(tmp_path, davis, ray_session, capsys):
    root, refs = davis
    out = tmp_path / "out"
    assert main(["--davis", str(root), "--output", str(out), "--engine", "ray", "--workers", "2", "--no-progress",
                 *TRACKING]) == 0
    assert "4 video(s): 4 done" in capsys.readouterr().out
    for seq, expected in refs.items():
        got = masks_of(out / seq)
        assert len(got) == FRAMES
        for i, (a, b) in enumerate(zip(got, expected)):
            np.testing.assert_array_equal(a, b, err_msg=f"{seq} frame {i}")  # exact
    videos = record(out)["videos"]
    assert all(v["status"] == "done" and v["loads"] == 1 and v["actor"].startswith("dinotools-batch-")
               for v in videos.values())
    assert len({v["actor"] for v in videos.values()}) <= 2
    assert main(["--davis", str(root), "--output", str(out), "--engine", "ray", "--no-progress", *TRACKING]) == 0
    assert "0 done, 4 skipped" in capsys.readouterr().out


@pytest.mark.slow  # end to end: starts workers twice (torch imports dominate)
@pytest.mark.parametrize("retries", [0, 1])
def test_killed_actor_video_is_retried_or_failed_then_finished(tmp_path, ray_session, retries):
    frames = 24
    seqs = ["car-shadow", "dog"]
    root = mini_davis(tmp_path / "davis", frames, seqs)
    settings = RunSettings(backbone="baseline", short_side=160, max_context=3)
    out = tmp_path / "out"

    def batch():
        return run_batch(settings, davis_videos(root), out, engine="ray", workers=2, retries=retries, progress=False)

    result = {}
    thread = threading.Thread(target=lambda: result.update(r=batch()))
    thread.start()
    name, entry = wait_for(lambda: mid_video(out, frames), 300, "a video half written by an actor")
    before = snapshot(out)
    ray.kill(ray.get_actor(entry["actor"]))
    thread.join(300)
    first = result["r"]
    killed = first.videos[name]
    if retries:  # resumed on a new actor in the same run
        assert first.exit_code == 0 and killed["status"] == "done" and killed["attempts"] == 2
        assert killed["resumed_from"] >= 2 and killed["actor"] != entry["actor"]
    else:  # recorded, with its reason; the other video finished
        assert first.exit_code == 3 and killed["status"] == "failed"
        assert "worker died while tracking it" in killed["error"] and entry["actor"] in killed["error"]
        assert [n for n, _ in first.failed] == [name]
        again = batch()  # the rerun resumes it from the frames written before the kill
        assert again.exit_code == 0 and again.videos[name]["resumed_from"] >= 2
        assert again.summary["skipped"] == 1 and again.summary["done"] == 1
    assert_complete(out, seqs, frames)
    after = snapshot(out)
    assert {k: after[k] for k in before if k.startswith(name + "/")} == {
        k: v for k, v in before.items() if k.startswith(name + "/")}


def test_eval_track_on_ray(tmp_path, davis, ray_session, capsys):
    from dinotools.commands.eval import main as eval_main

    root, refs = davis
    out = tmp_path / "eval"
    assert eval_main(["--davis", str(root), "--track", "--backbone", "baseline", "--short-side", "96",
                      "--max-context", "3", "--out", str(out), "--engine", "ray", "--workers", "2"]) == 0
    assert "J&F-Mean" in capsys.readouterr().out and (out / "eval_results-val.json").is_file()
    for seq, expected in refs.items():
        for a, b in zip(masks_of(out / seq), expected):
            np.testing.assert_array_equal(a, b)
    assert all(v["actor"].startswith("dinotools-batch-") for v in record(out)["videos"].values())


def test_actor_of_a_replaced_batch_exits_without_writing(tmp_path, davis, ray_session):
    """Issue 20: actors outlive a SIGKILLed driver by seconds; once a rerun has taken the folder over
    (a new generation), an old actor stops at its next write (here: before its video starts)."""
    from dinotools.batch.ray_engine import RayEngine
    from dinotools.batch.safety import Fence
    from dinotools.batch.worker import Task

    root, _ = davis
    out = tmp_path / "out"
    out.mkdir()
    old = Fence.take_over(out)
    Fence.take_over(out)  # the rerun
    video = next(v for v in davis_videos(root) if v.name == "dog")
    finished = {}

    class Events:
        def submitted(self, task): ...

        def message(self, kind, name, *payload): ...

        def requeued(self, task, reason): ...

        def finished(self, task, result):
            finished[task.video.name] = result

    engine = RayEngine(RunSettings(backbone="baseline", short_side=96, max_context=3), 1, retries=0)
    engine.run([Task(video, out / "dog", resume=False, overwrite=False, fence=old)], Events())
    assert finished["dog"]["status"] == "failed" and "worker died" in finished["dog"]["error"]
    assert not (out / "dog").exists()
