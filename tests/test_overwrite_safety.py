"""Issue 20, items 1 and 4: ``--overwrite`` removes only what an earlier dinotools run wrote (all of it:
no stale exports or probabilities), an output folder that holds an input is refused whatever the flags."""
import os
import shutil

import numpy as np
import pytest
from conftest import write_demo_clip
from PIL import Image

from dinotools.commands.run import main
from dinotools.io.export_common import video_name
from dinotools.io.masks import read_mask, write_mask

FAST = ["--backbone", "baseline", "--propagator", "torch", "--short-side", "48", "--no-progress"]


@pytest.fixture
def clip(tmp_path):
    frames, gt = write_demo_clip(tmp_path, 5, (48, 64))
    gt[0][:4, :4] = 1
    write_mask(tmp_path / "mask.png", gt[0])
    return frames, tmp_path / "mask.png"


def _argv(frames, mask, out, *extra):
    return ["--frames", str(frames), "--mask", str(mask), "--output", str(out), *FAST, *extra]


def _one_line(capsys, *words):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def _foreign_png(path):
    """A PNG some other program wrote (no dinotools mark)."""
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(path)


@pytest.mark.parametrize("flags", [["--overwrite"], [], ["--resume"]])
def test_mask_inside_the_output_folder_is_refused_and_kept(clip, tmp_path, capsys, flags):
    """Reproduction: ``cp M ann/00000.png; run --mask ann/00000.png --output ann --overwrite`` deleted the mask."""
    frames, mask = clip
    (tmp_path / "ann").mkdir()
    shutil.copy(mask, tmp_path / "ann" / "00000.png")
    before = (tmp_path / "ann" / "00000.png").read_bytes()
    assert main(_argv(frames, tmp_path / "ann" / "00000.png", tmp_path / "ann", *flags)) == 2
    _one_line(capsys, "--output", "holds the input")
    assert (tmp_path / "ann" / "00000.png").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["00000.png"]


@pytest.mark.parametrize("case", ["mask-deep", "frames-inside", "output-in-frames", "output-link", "mask-link"])
def test_output_holding_an_input_is_refused(clip, tmp_path, capsys, case):
    """Any depth, either direction, through symlinks: nothing is written or removed."""
    frames, mask = clip
    out = tmp_path / "out"
    if case == "mask-deep":  # the mask two folders below the output folder
        (out / "a" / "b").mkdir(parents=True)
        mask = shutil.copy(mask, out / "a" / "b" / "m.png")
    elif case == "frames-inside":  # the frames folder inside the output folder
        out.mkdir()
        frames = shutil.move(str(frames), out / "frames")
    elif case == "output-in-frames":  # the output folder inside the frames folder
        out = frames / "out"
    elif case == "output-link":  # the output is a symlink to the folder holding the mask
        (tmp_path / "real").mkdir()
        mask = shutil.copy(mask, tmp_path / "real" / "m.png")
        os.symlink(tmp_path / "real", out)
    else:  # the mask given as a symlink inside the output folder, pointing elsewhere
        out.mkdir()
        os.symlink(mask, out / "m.png")
        mask = out / "m.png"
    listing = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(_argv(frames, mask, out, "--overwrite")) == 2
    _one_line(capsys, "--output", "input")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == listing


def test_save_probs_folder_holding_an_input_is_refused(clip, tmp_path, capsys):
    frames, mask = clip
    assert main(_argv(frames, mask, tmp_path / "out", "--save-probs", str(tmp_path))) == 2
    _one_line(capsys, "--save-probs", "holds the input")
    assert not (tmp_path / "out").exists()


def test_overwrite_never_removes_foreign_pngs(clip, tmp_path, capsys):
    """A folder without any earlier run but with someone's PNGs: refused, naming the file; nothing removed."""
    frames, mask = clip
    out = tmp_path / "out"
    out.mkdir()
    _foreign_png(out / "00001.png")
    (out / "notes.txt").write_text("mine")
    assert main(_argv(frames, mask, out, "--overwrite")) == 2
    _one_line(capsys, str(out / "00001.png"), "not written by dinotools")
    assert sorted(p.name for p in out.iterdir()) == ["00001.png", "notes.txt"]
    (out / "00001.png").unlink()  # other files are left alone and do not stop a run
    assert main(_argv(frames, mask, out, "--overwrite")) == 0
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.glob("*.png"))) == 5


def test_overwrite_refuses_a_foreign_png_beside_an_earlier_run(clip, tmp_path, capsys):
    frames, mask = clip
    out = tmp_path / "out"
    assert main(_argv(frames, mask, out)) == 0
    _foreign_png(out / "extra.png")
    assert main(_argv(frames, mask, out, "--overwrite")) == 2
    _one_line(capsys, "extra.png", "not written by dinotools")
    assert len(list(out.glob("*.png"))) == 6  # the earlier run's five and the foreign one: all kept


def test_overwrite_removes_earlier_exports_and_probs(clip, tmp_path):
    """Reproduction: an earlier run's exports and probs/*.npz stayed beside the new PNGs."""
    frames, mask = clip
    out = tmp_path / "out"
    formats = ["--format", "coco", "--format", "objects", "--format", "youtube-vos"]
    assert main(_argv(frames, mask, out, "--save-probs", *formats)) == 0
    video = video_name(frames)
    assert (out / f"{video}.coco.json").is_file() and len(list((out / "probs").glob("*.npz"))) == 5
    (out / "mine.coco.json").write_text('{"not": "dinotools"}')  # a foreign file: left alone
    assert main(_argv(frames, mask, out, "--overwrite")) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(5)] + ["mine.coco.json"]


def test_overwrite_removes_stale_exports_of_another_format_set(clip, tmp_path):
    """Per export: a rerun asking only for coco leaves no objects JSON or youtube-vos folder behind."""
    frames, mask = clip
    out = tmp_path / "out"
    assert main(_argv(frames, mask, out, "--format", "objects", "--format", "youtube-vos")) == 0
    assert main(_argv(frames, mask, out, "--overwrite", "--format", "coco")) == 0
    video = video_name(frames)
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(5)] + [f"{video}.coco.json"]
    np.testing.assert_array_equal(read_mask(out / "00000.png")[:4, :4], 1)
