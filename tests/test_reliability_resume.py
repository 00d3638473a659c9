"""Issue 12, defects 1 and 10: a resume never destroys an unfinished run's record; random weights are
seeded and the seed checked; SIGTERM/SIGHUP stop a run as Ctrl-C does."""
import json
import os
import signal
import subprocess
import sys
import time

import gated_backbone
import pytest
from conftest import write_demo_clip

from dinotools.commands.run import main
from dinotools.io.masks import read_mask, write_mask
from dinotools.runs.record import MANIFEST

FAST = ["--backbone", "baseline", "--propagator", "torch", "--short-side", "48", "--no-progress"]


@pytest.fixture
def stopped(tmp_path, capsys):
    """A run of 12 frames that stopped at a corrupt frame 8: outputs 0-7 and its run record.
    Returns (argv, frames folder, output folder); frame 8 is repaired."""
    frames, gt = write_demo_clip(tmp_path, 12, (48, 64))
    gt[0][:4, :4] = 1
    write_mask(tmp_path / "mask.png", gt[0])
    out = tmp_path / "out"
    argv = ["--frames", str(frames), "--mask", str(tmp_path / "mask.png"), "--output", str(out), *FAST]
    good = (frames / "00008.png").read_bytes()
    (frames / "00008.png").write_bytes(good[:100])
    assert main(argv) == 2
    (frames / "00008.png").write_bytes(good)
    assert len(list(out.glob("*.png"))) == 8 and (out / MANIFEST).is_file()
    capsys.readouterr()
    return argv, frames, out


def _errors(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_resume_with_a_source_no_longer_than_the_outputs_keeps_the_record(stopped, tmp_path, capsys):
    """Reproduction: --resume with frames no longer than what is written skipped the settings check,
    exited 0 ("nothing to resume") and deleted the record; a correct --resume then failed."""
    argv, frames, out = stopped
    record = (out / MANIFEST).read_bytes()
    (tmp_path / "later").mkdir()
    for p in sorted(frames.glob("*.png"))[8:]:
        p.rename(tmp_path / "later" / p.name)  # the folder now holds exactly the 8 frames written
    assert main(argv + ["--resume"]) == 2
    assert "num_frames 12 -> 8" in _errors(capsys)
    assert main(argv + ["--resume", "--topk", "3"]) == 2  # a changed setting on the same path
    assert "topk 5 -> 3" in _errors(capsys)
    assert (out / MANIFEST).read_bytes() == record  # never deleted nor rewritten
    for p in (tmp_path / "later").iterdir():
        p.rename(frames / p.name)
    assert main(argv + ["--resume"]) == 0  # the correct resume still works
    assert len(list(out.glob("*.png"))) == 12 and not (out / MANIFEST).exists()


@pytest.mark.parametrize("content", ["{not json", "", "[]", '{"frames": 1}', "\x00\xff"])
def test_damaged_record_is_a_one_line_error(stopped, capsys, content):
    argv, _, out = stopped
    (out / MANIFEST).write_text(content)
    assert main(argv + ["--resume"]) == 2
    assert "run record" in _errors(capsys)
    assert (out / MANIFEST).read_text() == content and len(list(out.glob("*.png"))) == 8


def test_edited_mask_is_a_changed_setting(stopped, tmp_path, capsys):
    argv, _, out = stopped
    m = read_mask(tmp_path / "mask.png")
    m[-5:, -5:] = 2
    write_mask(tmp_path / "mask.png", m)
    assert main(argv + ["--resume"]) == 2
    assert "mask_digest" in _errors(capsys)


def test_a_resume_that_fails_keeps_the_record(stopped, capsys):
    argv, frames, out = stopped
    record = (out / MANIFEST).read_bytes()
    (frames / "00009.png").write_bytes(b"corrupt again")
    assert main(argv + ["--resume"]) == 2
    assert (out / MANIFEST).read_bytes() == record and len(list(out.glob("*.png"))) == 9


def test_random_weights_are_seeded_and_the_seed_checked(tmp_path, capsys):
    """Reproduction: --weights random was unseeded, yet --resume treated two such runs as one."""
    frames, gt = write_demo_clip(tmp_path, 6, (32, 32))
    write_mask(tmp_path / "mask.png", gt[0])
    base = ["--frames", str(frames), "--mask", str(tmp_path / "mask.png"), "--backbone", "vits16", "--weights",
            "random", "--short-side", "32", "--propagator", "torch", "--no-progress"]
    for name in ("a", "b"):
        assert main(base + ["--output", str(tmp_path / name), "--seed", "3"]) == 0
    for i in range(6):  # the same seed gives the same weights, so the same outputs
        assert (read_mask(tmp_path / "a" / f"{i:05d}.png") == read_mask(tmp_path / "b" / f"{i:05d}.png")).all()
    good = (frames / "00004.png").read_bytes()
    (frames / "00004.png").write_bytes(b"corrupt")
    assert main(base + ["--output", str(tmp_path / "c"), "--seed", "3"]) == 2
    capsys.readouterr()
    (frames / "00004.png").write_bytes(good)
    assert main(base + ["--output", str(tmp_path / "c"), "--seed", "4", "--resume"]) == 2
    assert "seed 3 -> 4" in _errors(capsys)
    assert json.loads((tmp_path / "c" / MANIFEST).read_text())["seed"] == 3


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_sigterm_stops_like_ctrl_c_and_says_how_to_resume(tmp_path, sig, code):
    """Reproduction: SIGTERM killed the run without finishing the frame being written or a hint.

    The backbone stops before frame 8 until the gate file exists (tests/gated_backbone.py), so the
    signal always finds the run mid-video, however loaded the machine is (it used to race it)."""
    frames, gt = write_demo_clip(tmp_path, 40, (96, 128))
    write_mask(tmp_path / "mask.png", gt[0])
    out, gate = tmp_path / "out", tmp_path / "gate"
    fast = [a if a != "baseline" else gated_backbone.NAME for a in FAST]
    argv = ["--frames", str(frames), "--mask", str(tmp_path / "mask.png"), "--output", str(out), *fast,
            "--short-side", "96"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", DINOTOOLS_TEST_GATE=str(gate), DINOTOOLS_TEST_GATE_AFTER="8")
    proc = subprocess.Popen([sys.executable, gated_backbone.__file__, *argv], stderr=subprocess.PIPE, text=True,
                            env=env)
    deadline = time.monotonic() + 300  # only a guard against a hang: the gate holds the run at frame 8
    while len(list(out.glob("*.png"))) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(sig)
    gate.touch()  # lets the backbone thread finish its batch, so that the run can wind down
    err = proc.communicate(timeout=300)[1]
    written = len(list(out.glob("*.png")))
    assert proc.returncode == code and 6 <= written <= 9, err
    assert f"complete frame(s) in {out}; rerun with --resume" in err and "Traceback" not in err, err
    assert (out / MANIFEST).is_file() and not list(out.glob(".*.tmp"))
    assert all(read_mask(p).shape == (96, 128) for p in out.glob("*.png"))
    gated_backbone.register()
    assert main(argv + ["--resume"]) == 0 and len(list(out.glob("*.png"))) == 40
