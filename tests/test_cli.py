"""``python -m dinotools.run``: tracking real clips end to end, listing, info, demo, user errors."""
import subprocess
import sys

import numpy as np

from dinotools.commands.run import main
from dinotools.io.masks import read_mask

FAST = ["--backbone", "baseline", "--short-side", "240", "--no-progress"]


def test_davis2016_binary_mask(data_dir, tmp_path):
    seq = data_dir / "davis2016-mini"
    frames = seq / "JPEGImages/480p/car-shadow"
    out = tmp_path / "out"
    code = main(["--frames", str(frames), "--mask", str(seq / "Annotations/480p/car-shadow/00000.png"),
                 "--output", str(out), *FAST])
    assert code == 0
    names = sorted(p.stem for p in frames.iterdir())
    assert sorted(p.stem for p in out.iterdir()) == names  # one output per frame, named like it
    for name in names[1:]:
        labels = read_mask(out / f"{name}.png")
        assert labels.shape == (480, 854) and set(np.unique(labels)) <= {0, 1}
    assert 1 in read_mask(out / f"{names[-1]}.png")


def test_palette_two_objects_and_overlay(data_dir, tmp_path):
    clip = data_dir / "multi-object/bike"
    out = tmp_path / "bike"
    code = main(["--frames", str(clip / "frames"), "--mask", str(clip / "masks/00000.png"), "--output", str(out),
                 "--overlay", str(tmp_path / "bike.mp4"), *FAST])
    assert code == 0
    outputs = sorted(out.iterdir())
    assert len(outputs) == len(list((clip / "frames").iterdir()))
    for p in outputs:
        assert set(np.unique(read_mask(p))) == {0, 1, 2}  # both ids preserved on every frame
    assert (tmp_path / "bike.mp4").stat().st_size > 0


def test_user_errors_are_one_line(data_dir, tmp_path, capsys):
    frames = data_dir / "multi-object/bike/frames"
    assert main(["--frames", str(frames), "--mask", str(tmp_path / "nope.png"), "--output", str(tmp_path / "o"),
                 *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mask") and "nope.png" in err and err.count("\n") == 1
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.png").write_bytes(b"x")
    assert main(["--frames", str(frames), "--mask", str(frames.parent / "masks/00000.png"),
                 "--output", str(tmp_path / "full"), *FAST]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.png").read_bytes() == b"x"  # finished work is never lost
    assert main(["--frames", str(frames), "--mask", str(frames.parent / "masks/00000.png"),
                 "--output", str(tmp_path / "o2"), "--propagator", "fuzed", *FAST]) == 2
    assert "Did you mean 'fused'" in capsys.readouterr().err


def test_list_and_info(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "label-propagation" in out and "built-in" in out
    assert main(["--info"]) == 0
    out = capsys.readouterr().out
    assert "compiled operator" in out and "propagator 'auto' resolves to" in out


def test_demo(tmp_path, capsys):
    assert main(["--demo", "--output", str(tmp_path / "demo"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "backbone baseline" in out
    overall = float(out.split("all objects: mean IoU ")[1].split()[0])
    assert overall > 0.5, out  # the baseline must really follow the demo's objects
    assert len(list((tmp_path / "demo" / "masks").iterdir())) == 24


def test_module_entry_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dinotools.run", "--frames", str(tmp_path / "none"),
                           "--mask", "x.png", "--output", str(tmp_path / "o"), *FAST],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "not found" in proc.stderr


def test_judo_objects_introduced_later(data_dir, tmp_path, caplog):
    """Masks folder with objects introduced at frames 0, 5, 8, 13; 00005.png is 853 px wide."""
    clip = data_dir / "multi-object/judo"
    out = tmp_path / "judo"
    assert main(["--frames", str(clip / "frames"), "--mask", str(clip / "masks"), "--output", str(out), *FAST]) == 0
    assert "00005.png is 853x480 but the frames are 854x480; resized" in caplog.text
    introduced = {1: 0, 2: 5, 3: 8, 4: 13}
    for i, p in enumerate(sorted(out.iterdir())):
        ids = set(np.unique(read_mask(p)).tolist())
        for oid, start in introduced.items():
            assert (oid in ids) == (i >= start), (p.name, oid, ids)
