"""``python -m dinotools.points``: SIGTERM mid-run then ``--resume`` gives the uninterrupted run's tracks; a full
disk keeps the tracks and says where; the one-line errors of the run record."""
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from dinotools.commands.points import main
from dinotools.io.queries import write_queries
from dinotools.io.tracks import read_tracks
from dinotools.runs import point_record

FAST = ["--backbone", "baseline", "--short-side", "48", "--no-progress", "--prefetch", "0", "--batch-size", "1"]
STOP_AT = 5  # the blocking backbone waits for SIGTERM when asked for this frame

# Runs dinotools.points with `baseline` replaced by a wrapper giving the same features, except that the
# call for frame STOP_AT first creates READY and blocks until a signal arrived, and the tracker's second
# step creates STEPPED (frame 0 is then tracked): the test sends SIGTERM once both exist (observable
# events, not a guess at timing; with --prefetch the main thread may lag the blocked encoder).
BLOCKING = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from dinotools.backbones.baseline import ColorStatsBackbone
    from dinotools.commands import signals
    from dinotools.registry import register_backbone

    STOPPED = threading.Event()
    raise_interrupt = signals._raise

    def on_signal(signum, frame):  # lets a background encoder thread go on once the signal came
        STOPPED.set()
        raise_interrupt(signum, frame)

    signals._raise = on_signal

    class Blocking(ColorStatsBackbone):
        calls = 0
        def __call__(self, images):
            for _ in range(images.shape[0]):
                if Blocking.calls == {stop}:
                    Path({ready!r}).touch()
                    while not STOPPED.wait(0.05):
                        pass  # in the main thread (--prefetch 0) the signal raises in this loop
                Blocking.calls += 1
            return super().__call__(images)

    register_backbone("baseline", override=True)(Blocking)

    from dinotools.trackers.points import PointTracker

    step, steps = PointTracker.step, [0]

    def counted(self, *args, **kwargs):  # the loop asks for frame 1 only once frame 0 is tracked and kept
        steps[0] += 1
        if steps[0] == 2:
            Path({stepped!r}).touch()
        return step(self, *args, **kwargs)

    PointTracker.step = counted
    from dinotools.commands.points import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture
def clip(tmp_path):
    """12 frames of 48x64 (a textured scene drifting right) and a queries CSV (one query on frame 3)."""
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (60, 100, 3), dtype=np.uint8)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(12):
        Image.fromarray(np.ascontiguousarray(scene[6:54, 20 - t:84 - t])).save(folder / f"{t:05d}.png")
    write_queries(tmp_path / "q.csv", np.array([[0, 10, 10], [3, 32.5, 24], [0, 50, 30], [0, 20, 40]]))
    return folder, tmp_path / "q.csv", tmp_path


def _sigterm_run(argv, ready, tmp_path):
    script = tmp_path / "blocking_points.py"
    stepped = ready.with_name(ready.name + ".stepped")
    script.write_text(BLOCKING.format(stop=STOP_AT, ready=str(ready), stepped=str(stepped)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), *argv], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120  # a safety net against a hang, not the synchronisation
    while not (ready.exists() and stepped.exists()):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached the blocking frame"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("extra", [[], ["--template-update", "0.3"], ["--prefetch", "2", "--batch-size", "2"]])
def test_sigterm_then_resume_gives_the_uninterrupted_tracks(clip, capsys, extra):
    frames, csv, tmp = clip
    base = ["--frames", str(frames), "--queries", str(csv), *FAST, *extra]
    assert main([*base, "--output", str(tmp / "full.npz")]) == 0, capsys.readouterr().err
    full = read_tracks(tmp / "full.npz")

    out = tmp / "stopped.npz"
    code, err = _sigterm_run([*base, "--output", str(out)], tmp / "ready", tmp)
    assert code == 128 + signal.SIGTERM, err
    assert err.startswith("interrupted by SIGTERM") and err.count("\n") == 1 and "Traceback" not in err, err
    part = read_tracks(out)
    # Background encoding (--prefetch) may block before the main thread has tracked every encoded frame.
    assert not part.complete and 0 < len(part.frame_names) <= STOP_AT
    assert f"the {len(part.frame_names)} frames tracked before it are saved in {out}" in err, err
    assert "--resume" in err, err
    assert point_record.record_path(out).exists() and point_record.state_path(out).exists()

    assert main([*base, "--output", str(out)]) == 2  # a plain rerun must not replace an interrupted run
    assert "--resume" in capsys.readouterr().err
    assert main([*base, "--output", str(out), "--resume"]) == 0, capsys.readouterr().err
    assert f"resumed at frame {len(part.frame_names)}" in capsys.readouterr().out
    resumed = read_tracks(out)
    assert resumed.complete and resumed.frame_names == full.frame_names
    # The documented tolerance (README, "Resuming point tracking"): identical; the baseline backbone's features
    # do not depend on the batch make-up, so --batch-size 2 is identical too.
    np.testing.assert_array_equal(resumed.tracks, full.tracks)
    np.testing.assert_array_equal(resumed.visible, full.visible)
    assert not point_record.record_path(out).exists() and not point_record.state_path(out).exists()
    assert main([*base, "--output", str(out), "--resume"]) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_resume_with_other_settings_is_one_line(clip, capsys):
    frames, csv, tmp = clip
    base = ["--frames", str(frames), "--queries", str(csv), *FAST]
    out = tmp / "stopped.npz"
    code, err = _sigterm_run([*base, "--output", str(out)], tmp / "ready", tmp)
    assert code == 143, err
    assert main([*base, "--output", str(out), "--resume", "--radius", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot resume") and "radius None -> 3" in err and err.count("\n") == 1, err


def test_full_disk_keeps_the_tracks_and_says_where(clip, capsys, monkeypatch, tmp_path):
    from dinotools.io import tracks as tracks_io
    from dinotools.runs import points as runs_points

    frames, csv, tmp = clip
    out, rescue = tmp / "t.npz", tmp_path / "rescue"
    rescue.mkdir()
    real = tracks_io.write_tracks

    def full_disk(path, tracks):
        if path == out:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, tracks)

    monkeypatch.setattr(runs_points, "write_tracks", full_disk)
    monkeypatch.setenv("TMPDIR", str(rescue))
    monkeypatch.setattr("tempfile.tempdir", None)  # gettempdir() reads TMPDIR again
    code = main(["--frames", str(frames), "--queries", str(csv), "--output", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    kept = sorted(rescue.glob("t.rescued-*.npz"))
    assert len(kept) == 1 and str(kept[0]) in err and "move that file" in err, err
    t = read_tracks(kept[0])
    assert t.complete and t.tracks.shape == (4, 12, 2)
    assert not out.exists()


def test_full_disk_and_no_rescue_says_they_are_lost(clip, capsys, monkeypatch, tmp_path):
    from dinotools.runs import points as runs_points

    frames, csv, tmp = clip

    def full_disk(path, tracks):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runs_points, "write_tracks", full_disk)
    code = main(["--frames", str(frames), "--queries", str(csv), "--output", str(tmp / "t.npz"), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "No space left on device" in err and "lost" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_report_and_max_frames(clip, capsys):
    import json

    frames, csv, tmp = clip
    argv = ["--frames", str(frames), "--grid", "2", "--output", str(tmp / "t.npz"), "--report", str(tmp / "r.json"),
            "--max-frames", "7", *FAST]
    assert main(argv) == 0, capsys.readouterr().err
    report = json.loads((tmp / "r.json").read_text())
    assert report["frames"] == 7 and report["queries"] == 4
    assert len(read_tracks(tmp / "t.npz").frame_names) == 7
    assert main([*argv[:-len(FAST)], "--report", str(tmp / "r.txt"), "--overwrite", *FAST]) == 2
    assert capsys.readouterr().err.startswith("error: report ")


def test_a_temp_file_of_a_killed_write_is_removed(clip, capsys):
    """A writer killed between its temp file and the rename (SIGKILL) left ``.t.npz.<pid>.<id>.tmp``
    beside the tracks for good; the next run (here --resume) removes it."""
    frames, csv, tmp = clip
    out = tmp / "t.npz"
    argv = ["--frames", str(frames), "--queries", str(csv), *FAST, "--output", str(out)]
    env = dict(os.environ, DINOTOOLS_TEST_KILL_AT="save:t.npz")
    killed = subprocess.run([sys.executable, "-m", "dinotools.points", *argv], env=env, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert list(tmp.glob(".t.npz.*.tmp"))  # what the kill left
    assert main([*argv, "--resume"]) == 0
    assert not list(tmp.glob(".t.npz.*")) and read_tracks(out).complete
