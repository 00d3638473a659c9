"""Exports (coco, youtube-vos, objects): lossless round trips, independent checks, resume, convert CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest

from dinotools.io.format_convert import convert
from dinotools.errors import InputError, UserError
from dinotools.io.exports import Exports, check_formats, read_png_folder
from dinotools.io.masks import read_mask, write_mask
from dinotools.io.objects import read_objects
from dinotools.io.ytvos import read_youtube_vos

pycocotools = pytest.importorskip("pycocotools", reason="the coco format needs pycocotools (the coco extra)")
from pycocotools import mask as rle  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from dinotools.io.coco import read_coco  # noqa: E402


def synthetic(tmp_path):
    """Label PNGs: an object entering late, one leaving, id 255, an empty frame, touching objects."""
    folder = tmp_path / "png"
    folder.mkdir()
    frames = []
    for t in range(7):
        x = np.zeros((30, 41), np.uint8)
        if t < 4:
            x[2:9, 3 + t:12 + t] = 7
        if t >= 2:
            x[15:28, 20:40] = 255
            x[15:20, 10:20] = 3  # touches 255
        if t == 5:
            x[:] = 0
        x[0, 40] = 9 if t in (1, 6) else x[0, 40]  # a single pixel in a corner
        frames.append(x)
        write_mask(folder / f"{t:05d}.png", x)
    return folder, frames


def test_png_coco_png_is_lossless_and_matches_pycocotools(tmp_path):
    folder, frames = synthetic(tmp_path)
    assert convert(folder, tmp_path / "v.coco.json", "coco") == 7
    coco = COCO(str(tmp_path / "v.coco.json"))  # loads with the reference API
    assert sorted(coco.imgs) == list(range(1, 8)) and coco.dataset["videos"][0]["length"] == 7
    expected = [(t, k) for t, f in enumerate(frames) for k in sorted(set(np.unique(f)) - {0})]
    anns = sorted(coco.anns.values(), key=lambda a: a["id"])
    assert [(a["image_id"] - 1, a["track_id"]) for a in anns] == expected
    for a in anns:  # independent: mask, area and box from the label map itself
        truth = frames[a["image_id"] - 1] == a["track_id"]
        np.testing.assert_array_equal(rle.decode(a["segmentation"]).astype(bool), truth)
        ys, xs = np.nonzero(truth)
        assert a["area"] == truth.sum()
        assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    assert convert(tmp_path / "v.coco.json", tmp_path / "back", "png") == 7
    for t, f in enumerate(frames):
        np.testing.assert_array_equal(read_mask(tmp_path / "back" / f"{t:05d}.png"), f)


def test_png_youtube_vos_png_is_lossless_with_meta(tmp_path):
    folder, frames = synthetic(tmp_path)
    convert(folder, tmp_path / "yv", "youtube-vos", video="clip")
    meta = json.loads((tmp_path / "yv" / "meta.json").read_text())["videos"]["clip"]["objects"]
    ids = sorted({int(k) for f in frames for k in np.unique(f)} - {0})
    assert sorted(int(k) for k in meta) == ids
    for k in ids:
        assert meta[str(k)]["frames"] == [f"{t:05d}" for t, f in enumerate(frames) if (f == k).any()]
    seq = read_youtube_vos(tmp_path / "yv")
    assert seq.video == "clip" and seq.names == [f"{t:05d}" for t in range(7)]
    got = list(seq.frames)
    for (name, labels), f in zip(got, frames):
        np.testing.assert_array_equal(labels, f)
    convert(tmp_path / "yv", tmp_path / "back", "png")
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == [f"{t:05d}.png" for t in range(7)]


def test_objects_tracks_match_an_independent_computation(tmp_path):
    folder, frames = synthetic(tmp_path)
    convert(folder, tmp_path / "o.json", "objects", video="clip")
    data = read_objects(tmp_path / "o.json")
    assert data["frames"] == [f"{t:05d}" for t in range(7)] and (data["height"], data["width"]) == (30, 41)
    assert sorted(data["objects"]) == [3, 7, 9, 255]
    for k, obj in data["objects"].items():
        assert len(obj["track"]) == 7
        present = [t for t, f in enumerate(frames) if (f == k).any()]
        assert obj["frames_present"] == len(present)
        assert (obj["first_frame"], obj["last_frame"]) == (f"{present[0]:05d}", f"{present[-1]:05d}")
        for t, entry in enumerate(obj["track"]):
            assert entry["frame"] == f"{t:05d}" and entry["index"] == t
            ys, xs = np.nonzero(frames[t] == k)
            assert entry["present"] == bool(len(ys)) and entry["area"] == len(ys)
            if len(ys):
                assert entry["box"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
                np.testing.assert_allclose(entry["centroid"], [xs.mean(), ys.mean()], atol=1e-3)
            else:
                assert entry["box"] is None and entry["centroid"] is None


def _round_trip(src, tmp_path):
    """PNG -> coco -> PNG and PNG -> youtube-vos -> PNG; every frame equal to the source's."""
    source = {name: labels for name, labels in read_png_folder(src).frames}
    convert(src, tmp_path / "x.coco.json", "coco")
    convert(tmp_path / "x.coco.json", tmp_path / "from_coco", "png")
    convert(src, tmp_path / "yv", "youtube-vos")
    convert(tmp_path / "yv", tmp_path / "from_yv", "png")
    for out in ("from_coco", "from_yv"):
        back = {name: labels for name, labels in read_png_folder(tmp_path / out).frames}
        assert sorted(back) == sorted(source)
        for name, labels in source.items():
            np.testing.assert_array_equal(back[name], labels, err_msg=f"{out}/{name}")


@pytest.mark.parametrize("seq", ["blackswan", "car-shadow", "dog", "motocross-jump"])
def test_round_trips_are_lossless_on_davis2016_mini(data_dir, tmp_path, seq):
    _round_trip(data_dir / "davis2016-mini" / "Annotations" / "480p" / seq, tmp_path)


def test_round_trips_are_lossless_on_judo(data_dir, tmp_path):
    _round_trip(data_dir / "multi-object" / "judo" / "masks", tmp_path)  # one mask is 853 px wide


def test_missing_pycocotools_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    with pytest.raises(UserError, match=r"pip install 'dinotools\[coco\]'"):
        check_formats(["coco"])
    assert check_formats(["objects", "png", "objects"]) == ["png", "objects"]
    with pytest.raises(InputError, match="unknown --format 'tiff'"):
        check_formats(["tiff"])


def test_exports_stream_through_the_spool_and_finish_atomically(tmp_path):
    folder, frames = synthetic(tmp_path)
    names = [f"{t:05d}" for t in range(7)]
    ex = Exports(["png", "coco", "youtube-vos", "objects"], folder, "clip", names)
    ex.start()
    for t in range(4):
        ex.add(t, frames[t])
    # mid-run: records are on disk, no final file exists yet
    assert (folder / ".dinotools-export").is_dir()
    assert not (folder / "clip.coco.json").exists() and not (folder / "clip.objects.json").exists()
    assert not (folder / "youtube-vos" / "meta.json").exists()
    # as a resume at frame 4: the spool is rebuilt from the PNGs of frames 0-3 (garbage there is dropped)
    (folder / ".dinotools-export" / "coco").write_text("garbage\n")
    ex2 = Exports(["png", "coco", "youtube-vos", "objects"], folder, "clip", names)
    ex2.start(4)
    for t in range(4, 7):
        ex2.add(t, frames[t])
    ex2.finish()
    assert not (folder / ".dinotools-export").exists()
    convert(folder, tmp_path / "ref.coco.json", "coco", video="clip")
    convert(folder, tmp_path / "ref.objects.json", "objects", video="clip")
    assert (folder / "clip.coco.json").read_bytes() == (tmp_path / "ref.coco.json").read_bytes()
    assert (folder / "clip.objects.json").read_bytes() == (tmp_path / "ref.objects.json").read_bytes()


def test_readers_name_bad_inputs(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        read_coco(tmp_path / "bad.json")
    with pytest.raises(InputError, match="not a YouTube-VOS results folder"):
        read_youtube_vos(tmp_path)
    with pytest.raises(InputError, match="no label PNGs"):
        read_png_folder(tmp_path)


def test_convert_command_line(tmp_path):
    folder, frames = synthetic(tmp_path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "dinotools.commands.convert", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    ok = run(folder, tmp_path / "c.json", "--to", "coco")
    assert ok.returncode == 0 and "7 frames" in ok.stdout
    again = run(folder, tmp_path / "c.json", "--to", "coco")
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    bad = run(tmp_path / "c.json", tmp_path / "o.json", "--to", "objects", "--video", "nope")
    assert bad.returncode == 2 and "no video named 'nope'" in bad.stderr
