"""``python -m dinotools.batch`` with the local engine on davis2016-mini: same masks as dinotools.run, skipping,
failures recorded while the others go on, a killed worker process replaced, bad input refused up front."""
import json
import os
import shutil
import signal
import subprocess
import sys
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
from PIL import Image

from dinotools.batch import list_videos, run_batch
from dinotools.commands.batch import main
from dinotools.runs.settings import RunSettings

FRAMES = 5


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    root = mini_davis(tmp_path_factory.mktemp("davis"), FRAMES)
    return root, reference(root, tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("workers", [1, 2])
def test_same_masks_as_dinotools_run(tmp_path, davis, workers, capsys):
    root, refs = davis
    out = tmp_path / "out"
    assert main(["--davis", str(root), "--output", str(out), "--workers", str(workers), "--no-progress",
                 *TRACKING]) == 0
    assert "4 video(s): 4 done, 0 skipped" in capsys.readouterr().out
    for seq, expected in refs.items():
        got = masks_of(out / seq)
        assert len(got) == FRAMES
        for i, (a, b) in enumerate(zip(got, expected)):
            np.testing.assert_array_equal(a, b, err_msg=f"{seq} frame {i}")  # exact: 0 differing pixels
    videos = record(out)["videos"]
    assert [v["status"] for v in videos.values()] == ["done"] * 4
    for v in videos.values():
        assert v["frames"] == FRAMES and v["tracked"] == FRAMES and v["fps"] > 0 and v["peak_ram_mb"] > 0
        assert v["loads"] == 1  # every worker loaded the backbone once, whatever it tracked after
    assert record(out)["summary"]["frames"] == 4 * FRAMES
    assert len({v["worker"] for v in videos.values()}) <= workers


def test_rerun_skips_finished_videos(tmp_path, davis, capsys):
    root, _ = davis
    out = tmp_path / "out"
    args = ["--davis", str(root), "--output", str(out), "--no-progress", *TRACKING]
    assert main(args + ["--sequences", "dog", "blackswan"]) == 0
    before = snapshot(out)
    assert main(args) == 0  # two finished, two new
    assert "2 done, 2 skipped" in capsys.readouterr().out
    after = snapshot(out)
    assert {k: after[k] for k in before} == before  # bytes and mtimes: not written again
    videos = record(out)["videos"]
    assert videos["dog"]["status"] == "skipped" and videos["dog"]["frames"] == FRAMES  # earlier figures kept
    assert videos["car-shadow"]["status"] == "done"
    assert main(args + ["--short-side", "64"]) == 2  # other settings: refused, not mixed into one folder
    assert "short_side 96 -> 64" in capsys.readouterr().err


def _bad_inputs(tmp_path, root):
    """A list: two good sequences, a video with a corrupt frame, one with a colour (RGB) mask."""
    corrupt = tmp_path / "corrupt"
    shutil.copytree(root / "JPEGImages/480p/dog", corrupt)
    data = (corrupt / "00002.jpg").read_bytes()
    (corrupt / "00002.jpg").unlink()
    (corrupt / "00002.jpg").write_bytes(data[: len(data) // 3])  # truncated mid-file
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((480, 854, 3), np.uint8)).save(rgb)
    ann = root / "Annotations/480p"
    (tmp_path / "list.csv").write_text(
        "frames,mask,name\n"
        f"{root}/JPEGImages/480p/blackswan,{ann}/blackswan/00000.png,blackswan\n"
        f"corrupt,{ann}/dog/00000.png,broken-frame\n"
        f"{root}/JPEGImages/480p/car-shadow,rgb.png,colour-mask\n"
        f"{root}/JPEGImages/480p/dog,{ann}/dog/00000.png,dog\n"
    )
    return tmp_path / "list.csv"


def test_failed_videos_are_recorded_and_the_others_finish(tmp_path, davis, capsys):
    root, refs = davis
    out = tmp_path / "out"
    args = ["--list", str(_bad_inputs(tmp_path, root)), "--output", str(out), "--no-progress", *TRACKING]
    assert main(args) == 3
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 2 and "2 failed" in captured.out
    assert failed[0].startswith("failed: broken-frame: frame ") and "00002.jpg is unreadable or corrupt" in failed[0]
    assert failed[1].startswith("failed: colour-mask: mask file ") and "colour (RGB) image" in failed[1]
    videos = record(out)["videos"]
    assert {n: v["status"] for n, v in videos.items()} == {
        "blackswan": "done", "broken-frame": "failed", "colour-mask": "failed", "dog": "done"}
    assert videos["broken-frame"]["error"] in failed[0] and "\n" not in videos["broken-frame"]["error"]
    for seq in ("blackswan", "dog"):
        for a, b in zip(masks_of(out / seq), refs[seq]):
            np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in (out / "broken-frame").glob("*.png")) == ["00000.png", "00001.png"]
    assert main(args) == 3  # the rerun retries only the failed ones
    assert "2 skipped (finished earlier), 2 failed" in capsys.readouterr().out


def test_bad_list_is_refused_before_anything_runs(tmp_path, capsys):
    (tmp_path / "l.jsonl").write_text('{"frames": "nowhere", "mask": "m.png"}\n{"frames": 1}\n')
    assert main(["--list", str(tmp_path / "l.jsonl"), "--output", str(tmp_path / "out"), *TRACKING]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: l.jsonl line 1: frames ") and "not found" in err[0]
    assert err[1].startswith("error: l.jsonl line 1: mask ")
    assert err[2].startswith("error: l.jsonl line 2: frames must be a string")
    assert not (tmp_path / "out").exists()


def test_tracker_that_cannot_be_built_stops_the_batch(tmp_path, davis, capsys):
    root, _ = davis
    out = tmp_path / "out"
    assert main(["--davis", str(root), "--output", str(out), "--backbone", "no-such-backbone", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no-such-backbone" in err[0]
    assert {v["status"] for v in record(out)["videos"].values()} == {"pending"}  # nothing run, nothing lost


@pytest.mark.slow  # end to end: starts workers twice (torch imports dominate)
def test_python_api_and_a_killed_worker_process(tmp_path):
    """``run_batch`` with 2 local workers; one worker process is SIGKILLed mid-video: it is replaced and
    its video resumed from the PNGs it wrote, which stay as they were."""
    frames = 24
    root = mini_davis(tmp_path / "davis", frames, ["car-shadow", "dog"])
    ann = root / "Annotations/480p"
    (tmp_path / "l.csv").write_text("".join(f"{root}/JPEGImages/480p/{s},{ann}/{s}/00000.png\n"
                                            for s in ("car-shadow", "dog")))
    settings = RunSettings(backbone="baseline", short_side=160, max_context=3)
    out = tmp_path / "out"
    result = {}
    thread = threading.Thread(target=lambda: result.update(r=run_batch(
        settings, list_videos(tmp_path / "l.csv"), out, workers=2, progress=False)))
    thread.start()
    name, entry = wait_for(lambda: mid_video(out, frames), 300, "a video half written")
    before = snapshot(out)
    os.kill(int(entry["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    thread.join(300)
    batch = result["r"]
    assert batch.exit_code == 0 and batch.summary["done"] == 2
    assert batch.videos[name]["attempts"] == 2 and batch.videos[name]["resumed_from"] >= 2
    assert_complete(out, ["car-shadow", "dog"], frames)
    after = snapshot(out)
    assert {k: after[k] for k in before if k.startswith(name)} == {k: v for k, v in before.items()
                                                                    if k.startswith(name)}


def test_eval_track_on_two_workers_matches_one(tmp_path, davis, capsys):
    """``dinotools.eval --track`` runs on the batch machinery: 2 worker processes give the PNGs and scores of 1."""
    from dinotools.commands.eval import main as eval_main

    root, refs = davis
    scores = {}
    for workers in ("1", "2"):
        out = tmp_path / workers
        assert eval_main(["--davis", str(root), "--track", "--backbone", "baseline", "--short-side", "96",
                          "--max-context", "3", "--out", str(out), "--workers", workers]) == 0
        capsys.readouterr()
        scores[workers] = json.loads((out / "eval_results-val.json").read_text())
        for seq, expected in refs.items():  # and the masks of dinotools.run
            for a, b in zip(masks_of(out / seq), expected):
                np.testing.assert_array_equal(a, b)
        assert record(out)["summary"]["done"] == 4
    assert scores["1"]["J&F-Mean"] == scores["2"]["J&F-Mean"] and scores["2"]["tracking"]["frames"] == 4 * FRAMES


def test_batch_layer_does_not_import_a_command_line():
    code = ("import sys, dinotools.batch, dinotools.batch.local, dinotools.batch.ray_engine; "
            "print(sorted(m for m in sys.modules if m.endswith('cli') or m.endswith('__main__') and 'dinotools' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
