"""``python -m dinotools.points``: tracks and overlay written; every bad input one line, exit code 2."""
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from dinotools.commands.points import main
from dinotools.io.queries import grid_queries, read_queries, write_queries
from dinotools.io.tracks import read_tracks

FAST = ["--backbone", "baseline", "--short-side", "48", "--no-progress", "--prefetch", "0"]


@pytest.fixture
def clip(tmp_path):
    """6 frames of 48x64 (a textured scene drifting right) and a queries CSV; returns (frames, csv, tmp)."""
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(6):
        Image.fromarray(np.ascontiguousarray(scene[6:54, 12 - t:76 - t])).save(folder / f"{t:05d}.png")
    write_queries(tmp_path / "q.csv", np.array([[0, 10, 10], [2, 32.5, 24], [5, 63.9, 47.9]]))
    return folder, tmp_path / "q.csv", tmp_path


def _one_line(capsys, argv, *words):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_tracks_and_overlay(clip, capsys):
    frames, csv, tmp = clip
    code = main(["--frames", str(frames), "--queries", str(csv), "--output", str(tmp / "t.npz"),
                 "--overlay", str(tmp / "o.mp4"), *FAST])
    assert code == 0, capsys.readouterr().err
    assert "3 points x 6 frames" in capsys.readouterr().out
    t = read_tracks(tmp / "t.npz")
    assert t.tracks.shape == (3, 6, 2) and t.tracks.dtype == np.float32 and t.visible.shape == (3, 6)
    assert t.frame_names == [f"{i:05d}" for i in range(6)] and t.frame_size == (48, 64) and t.complete
    np.testing.assert_array_equal(t.queries, read_queries(csv))
    assert np.isnan(t.tracks[1, :2]).all() and t.tracks[1, 2].tolist() == [32.5, 24.0]
    cap = cv2.VideoCapture(str(tmp / "o.mp4"))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert n == 6


def test_grid_and_video_input(clip, capsys):
    frames, _, tmp = clip
    writer = cv2.VideoWriter(str(tmp / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for p in sorted(frames.iterdir()):
        writer.write(cv2.imread(str(p)))
    writer.release()
    code = main(["--video", str(tmp / "clip.mp4"), "--grid", "3", "--output", str(tmp / "g.npz"), *FAST])
    assert code == 0, capsys.readouterr().err
    t = read_tracks(tmp / "g.npz")
    assert t.tracks.shape == (9, 6, 2)
    np.testing.assert_array_equal(t.queries, grid_queries(3, (48, 64)))
    assert t.queries[:, 1].min() == pytest.approx(64 / 6) and (t.queries[:, 0] == 0).all()


def test_as_a_module(clip):
    frames, csv, tmp = clip
    run = subprocess.run([sys.executable, "-m", "dinotools.points", "--frames", str(frames), "--queries",
                          str(csv), "--output", str(tmp / "m.npz"), *FAST], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    bad = subprocess.run([sys.executable, "-m", "dinotools.points", "--frames", str(frames), "--grid", "2"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


@pytest.mark.parametrize("content,words", [
    ("x,y\n1,2\n", ["q.csv line 1", "missing t"]),
    ("t,x,y\n0,1,2\n0,abc,2\n", ["q.csv line 3", "must be numbers", "'abc'"]),
    ("t,x,y\n0,1\n", ["q.csv line 2", "expected 3 fields"]),
    ("t,x,y\n1.5,1,2\n", ["line 2", "t=1.5", "integer"]),
    ("t,x,y\n-1,1,2\n", ["line 2", "t=-1"]),
    ("t,x,y\n0,nan,2\n", ["line 2", "finite"]),
    ("t,x,y\n6,1,2\n", ["line 2", "past the last frame", "6 frames"]),
    ("t,x,y\n0,1,2\n\n0,65,2\n", ["line 4", "outside the 64x48 frame"]),
    ("t,x,y\n0,1,-0.5\n", ["line 2", "outside"]),
    ("t,x,y\n", ["no query rows"]),
    ("", ["is empty"]),
])
def test_bad_csv(clip, capsys, content, words):
    frames, csv, tmp = clip
    csv.write_text(content)
    _one_line(capsys, ["--frames", str(frames), "--queries", str(csv), "--output", str(tmp / "t.npz"), *FAST],
              *words)
    assert not (tmp / "t.npz").exists()


def test_csv_with_extra_columns_and_any_order(clip, capsys):
    frames, csv, tmp = clip
    csv.write_text("id,y,t,x\n7,20,1,30\n8, 5 ,0, 6\n")
    assert main(["--frames", str(frames), "--queries", str(csv), "--output", str(tmp / "t.npz"), *FAST]) == 0
    assert read_tracks(tmp / "t.npz").queries.tolist() == [[1, 30, 20], [0, 6, 5]]


def test_bad_arguments_and_outputs(clip, capsys):
    frames, csv, tmp = clip
    base = ["--queries", str(csv), *FAST]
    out = ["--output", str(tmp / "t.npz")]
    _one_line(capsys, [*base, *out], "--frames DIR or --video FILE")
    _one_line(capsys, ["--frames", str(frames), *base, *out, "--video", str(tmp / "v.mp4")], "exactly one")
    _one_line(capsys, ["--frames", str(frames), *FAST, *out], "--queries FILE.csv or --grid N")
    _one_line(capsys, ["--frames", str(frames), *base, *out, "--grid", "3"], "exactly one")
    _one_line(capsys, ["--frames", str(frames), *FAST, *out, "--grid", "0"], "--grid needs N >= 1")
    _one_line(capsys, ["--frames", str(frames), *base], "--output FILE.npz is required")
    _one_line(capsys, ["--frames", str(frames), *base, "--output", str(tmp / "t.csv")], "must end in .npz")
    _one_line(capsys, ["--frames", str(frames), *base, "--output", str(tmp / "nope" / "t.npz")], "does not exist")
    _one_line(capsys, ["--frames", str(frames), *base, "--output", str(tmp)], "must end in .npz")
    (tmp / "t.npz").write_bytes(b"old")
    _one_line(capsys, ["--frames", str(frames), *base, *out], "exists", "--overwrite")
    assert (tmp / "t.npz").read_bytes() == b"old"
    _one_line(capsys, ["--frames", str(frames), *base, "--output", str(tmp / "u.npz"), "--overlay",
                       str(tmp / "o.avi")], "must end in .mp4")
    _one_line(capsys, ["--frames", str(frames), "--queries", str(tmp / "none.csv"), "--output",
                       str(tmp / "u.npz"), *FAST], "none.csv not found")
    _one_line(capsys, ["--frames", str(tmp / "none"), *base, "--output", str(tmp / "u.npz")], "not found")
    _one_line(capsys, ["--frames", str(frames), *base, "--output", str(tmp / "u.npz"), "--backbone", "nope"],
              "unknown backbone 'nope'")
    _one_line(capsys, ["--frames", str(frames), *base, "--output", str(tmp / "u.npz"), "--radius", "0"],
              "--radius 0: radius of tracker points must be an integer in [1, 256], got 0")
    _one_line(capsys, ["--frames", str(frames), *base, "--output", str(tmp / "u.npz"), "--backbone-arg", "grid"],
              "KEY=VALUE")
    assert not (tmp / "u.npz").exists()


def test_corrupt_frame_keeps_the_frames_before(clip, capsys):
    frames, csv, tmp = clip
    (frames / "00004.png").write_bytes((frames / "00004.png").read_bytes()[:100])
    _one_line(capsys, ["--frames", str(frames), "--queries", str(csv), "--output", str(tmp / "t.npz"), *FAST],
              "00004.png", "corrupt", "the 4 frames tracked before it are saved", "complete=False")
    t = read_tracks(tmp / "t.npz")
    assert not t.complete and t.tracks.shape == (3, 4, 2) and t.frame_names[-1] == "00003"


def test_read_tracks_rejects_other_files(tmp_path):
    from dinotools.errors import InputError

    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(InputError, match="not a dinotools tracks file"):
        read_tracks(tmp_path / "x.npz")
    (tmp_path / "y.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="unreadable or corrupt"):
        read_tracks(tmp_path / "y.npz")
    with pytest.raises(InputError, match="not found"):
        read_tracks(tmp_path / "z.npz")
