"""Readers check their input (issue 20, item 5): wrong-typed but valid JSON/CSV/NPZ is a one-line error
naming the file and the field (exit 2 from the commands), never a traceback nor a silent empty result."""
from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from dinotools.errors import InputError
from dinotools.io.masks import read_mask, write_mask

pytest.importorskip("pycocotools")


def _errors(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def labels(tmp_path):
    """A folder of 3 label PNGs (ids 1 and 2, 20x30) and its COCO JSON; returns (png folder, coco path)."""
    from dinotools.commands.convert import main

    folder = tmp_path / "png"
    folder.mkdir()
    for i in range(3):
        m = np.zeros((20, 30), np.uint8)
        m[2:8, 3:9 + i] = 1
        m[10:15, 10:20] = 2
        write_mask(folder / f"{i:05d}.png", m)
    assert main([str(folder), str(tmp_path / "c.json"), "--to", "coco"]) == 0
    return folder, tmp_path / "c.json"


def _edit(path, fn):
    data = json.loads(path.read_text())
    data = fn(data) or data
    path.write_text(json.dumps(data))


def _drop_video_ids(d):
    for im in d["images"]:
        del im["video_id"]


def _set(*keys_value):
    *keys, value = keys_value

    def fn(d):
        obj = d
        for k in keys[:-1]:
            obj = obj[k]
        obj[keys[-1]] = value
    return fn


COCO_CASES = [
    # (edit, words the error must hold); each was a traceback or a silent "0 frames" before
    (lambda d: [d], ["(top level)", "must be an object"]),
    (_set("videos", "abc"), ["videos", "must be an array"]),
    (_set("images", {"a": 1}), ["images", "must be an array"]),
    (_set("images", 0, "width", "wide"), ["images[0].width", "integer"]),
    (_set("annotations", 0, "segmentation", "counts", "zzzz"), ["annotations[0].segmentation.counts", "RLE"]),
    (_set("annotations", 0, "segmentation", "counts", [5, 3]), ["annotations[0].segmentation.counts", "600"]),
    (_set("annotations", 0, "segmentation", "size", [10, 30]), ["annotations[0].segmentation.size", "[20, 30]"]),
    (_set("annotations", 0, "image_id", 99), ["annotations[0].image_id", "99"]),
    (_set("annotations", 0, "track_id", 0), ["annotations[0].track_id", ">= 1"]),
    (_set("annotations", 0, "segmentation", [[1, 2, 3, 4]]), ["annotations[0].segmentation", "polygons"]),
    (_drop_video_ids, ["images[0].video_id", "missing"]),  # was: "0 frames", exit 0
]


@pytest.mark.parametrize("edit,words", COCO_CASES)
def test_convert_bad_coco_is_one_line(labels, tmp_path, capsys, edit, words):
    from dinotools.commands.convert import main

    _, coco = labels
    _edit(coco, edit)
    capsys.readouterr()
    assert main([str(coco), str(tmp_path / "out"), "--to", "png"]) == 2
    line = _errors(capsys)
    assert str(coco) in line and all(w in line for w in words), line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("meta,words", [
    ([1], ["(top level)"]),
    ({"videos": [1, 2]}, ["videos", "must be an object"]),
    ({"videos": {"v": {"objects": {"one": {"frames": []}}}}}, ["videos.v.objects.one", "object ids"]),
    ({"videos": {"v": {"objects": {"1": {"frames": [3]}}}}}, ["videos.v.objects.1.frames[0]", "string"]),
])
def test_convert_bad_youtube_vos_meta(labels, tmp_path, capsys, meta, words):
    from dinotools.commands.convert import main

    folder, _ = labels
    assert main([str(folder), str(tmp_path / "y"), "--to", "youtube-vos", "--video", "v"]) == 0
    (tmp_path / "y" / "meta.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main([str(tmp_path / "y"), str(tmp_path / "out"), "--to", "png"]) == 2
    line = _errors(capsys)
    assert "meta.json" in line and all(w in line for w in words), line


@pytest.mark.parametrize("to", ["coco", "objects"])
def test_file_output_into_an_existing_folder(labels, tmp_path, capsys, to):
    """Was: IsADirectoryError traceback with --overwrite."""
    from dinotools.commands.convert import main

    folder, _ = labels
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("x")
    assert main([str(folder), str(tmp_path / "taken"), "--to", to, "--overwrite"]) == 2
    assert "is a folder" in _errors(capsys) and (tmp_path / "taken" / "keep.txt").read_text() == "x"


def _full_disk_after(n):
    calls = []

    def fail(*args, **kwargs):
        calls.append(1)
        if len(calls) > n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)
    from dinotools.io import format_convert
    real = format_convert.write_mask
    return fail


@pytest.mark.parametrize("existing", [False, True])
def test_full_disk_during_png_convert_leaves_old_or_nothing(labels, tmp_path, capsys, monkeypatch, existing):
    from dinotools.commands.convert import main
    from dinotools.io import format_convert

    _, coco = labels
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        write_mask(out / "old.png", np.ones((4, 4), np.uint8))
    monkeypatch.setattr(format_convert, "write_mask", _full_disk_after(1))
    assert main([str(coco), str(out), "--to", "png", "--overwrite"]) == 2
    assert "No space left" in _errors(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["old.png"] if existing else not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_full_disk_during_coco_convert(labels, tmp_path, capsys, monkeypatch):
    from dinotools.commands.convert import main
    from dinotools.io import coco as coco_module

    folder, _ = labels
    (tmp_path / "o.json").write_text("old")

    def full(f, parts):
        f.write(b"{")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(coco_module, "write_json_stream", full)
    assert main([str(folder), str(tmp_path / "o.json"), "--to", "coco", "--overwrite"]) == 2
    assert "No space left" in _errors(capsys) and (tmp_path / "o.json").read_text() == "old"


def test_good_conversions_still_round_trip(labels, tmp_path):
    from dinotools.commands.convert import main

    folder, coco = labels
    assert main([str(coco), str(tmp_path / "y"), "--to", "youtube-vos"]) == 0
    assert main([str(tmp_path / "y"), str(tmp_path / "back"), "--to", "png"]) == 0
    for p in sorted(folder.glob("*.png")):
        np.testing.assert_array_equal(read_mask(tmp_path / "back" / p.name), read_mask(p))


def test_rle_counts_match_pycocotools():
    from pycocotools import mask as rle

    from dinotools.io.coco import rle_counts

    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = (int(v) for v in rng.integers(1, 80, 2))
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        counts = rle_counts(rle.encode(np.asfortranarray(m))["counts"].decode())
        assert sum(counts) == h * w
        np.testing.assert_array_equal(rle.decode(rle.frPyObjects({"size": [h, w], "counts": counts}, h, w)), m)


def _objects(tmp_path):
    from dinotools.io.objects import ObjectsExport
    from dinotools.io.export_common import Spool

    spool = tmp_path / "spool"
    spool.mkdir()
    w = ObjectsExport(tmp_path / "o.json", "v", ["a", "b"], Spool(spool))
    m = np.zeros((6, 8), np.uint8)
    m[1:3, 2:5] = 1
    w.add(0, m)
    w.add(1, m)
    w.finish()
    return tmp_path / "o.json"


@pytest.mark.parametrize("edit,field", [
    (_set("objects", []), "objects"),
    (_set("objects", "1", "track", "x"), "objects.1.track"),
    (_set("objects", "1", "track", 0, "box", [1, 2]), "objects.1.track[0].box"),
    (_set("objects", "1", "track", 0, "area", -3), "objects.1.track[0].area"),
    (_set("frames", [1, 2]), "frames[0]"),
    (lambda d: d.pop("width") and None, "width"),
])
def test_objects_json_fields(tmp_path, edit, field):
    from dinotools.io.objects import read_objects

    path = _objects(tmp_path)
    assert read_objects(path)["objects"][1]["frames_present"] == 2
    _edit(path, edit)
    with pytest.raises(InputError) as info:
        read_objects(path)
    assert str(info.value).startswith(f"{path}: {field}: ") and "\n" not in str(info.value)


def _tracks(tmp_path, **change):
    arrays = dict(tracks=np.zeros((3, 4, 2), np.float32), visible=np.ones((3, 4), bool),
                  queries=np.zeros((3, 3)), frame_names=np.array(["a", "b", "c", "d"]),
                  frame_size=np.array([48, 64]), complete=np.bool_(True))
    arrays.update(change)
    np.savez(tmp_path / "t.npz", **arrays)
    return tmp_path / "t.npz"


@pytest.mark.parametrize("change,words", [
    (dict(tracks=np.zeros((3, 4), np.float32)), ["tracks", "shape"]),
    (dict(tracks=np.zeros((3, 4, 2), np.int64)), ["tracks", "dtype"]),
    (dict(visible=np.ones((3, 5), bool)), ["visible", "T=4"]),
    (dict(visible=np.ones((3, 4), np.float32)), ["visible", "bool"]),
    (dict(queries=np.zeros((2, 3))), ["queries", "N=3"]),
    (dict(queries=np.full((3, 3), -1.0)), ["queries", "t a frame index"]),
    (dict(frame_names=np.arange(4)), ["frame_names", "str"]),
    (dict(frame_size=np.array([48, 0])), ["frame_size", ">= 1"]),
    (dict(frame_size=np.array([48.0, 64.0])), ["frame_size", "integer"]),
    (dict(complete=np.ones(2, bool)), ["complete", "shape"]),
])
def test_tracks_npz_arrays(tmp_path, change, words):
    from dinotools.io.tracks import read_tracks

    assert read_tracks(_tracks(tmp_path)).tracks.shape == (3, 4, 2)
    path = _tracks(tmp_path, **change)
    with pytest.raises(InputError) as info:
        read_tracks(path)
    assert str(info.value).startswith(f"{path}: {words[0]}: ") and all(w in str(info.value) for w in words)


def test_queries_line_numbers_follow_quoted_line_breaks(tmp_path):
    from dinotools.io.queries import read_queries

    (tmp_path / "q.csv").write_text('t,x,y\n0,"1\n",2\n0,abc,3\n')
    with pytest.raises(InputError, match=r"q.csv line 4: "):
        read_queries(tmp_path / "q.csv")


def test_queries_csv_error_is_an_input_error(tmp_path):
    from dinotools.io.queries import read_queries

    (tmp_path / "q.csv").write_text("t,x,y\n0," + "1" * 200_000 + ",2\n")
    with pytest.raises(InputError, match=r"q.csv line 2: not a CSV row"):
        read_queries(tmp_path / "q.csv")


def test_deeply_nested_json_is_an_input_error(tmp_path):
    """json raises RecursionError (not ValueError) on deep nesting: it was a traceback."""
    from dinotools.io.objects import read_objects

    (tmp_path / "o.json").write_text("[" * 100_000)
    with pytest.raises(InputError, match="not valid JSON"):
        read_objects(tmp_path / "o.json")


def test_batch_record_with_wrong_types(tmp_path):
    """Was: AttributeError when the batch continued ('str' object has no attribute 'get')."""
    from dinotools.batch.record import BatchRecord
    from dinotools.batch.sources import Video

    (tmp_path / "batch.json").write_text(json.dumps({"version": 1, "settings": {"topk": 5}, "videos": {"a": "done"}}))
    with pytest.raises(InputError, match=r"batch.json: videos.a: must be an object"):
        BatchRecord(tmp_path, {"topk": 5}).start([Video("a", tmp_path, tmp_path / "m.png", "x")], {})
    (tmp_path / "batch.json").write_text(json.dumps({"settings": [], "videos": {}}))
    with pytest.raises(InputError, match=r"batch.json: settings: must be an object"):
        BatchRecord(tmp_path, {"topk": 5})


def test_datasets_imageset_not_text(tmp_path):
    from dinotools.io.datasets import DavisDataset

    (tmp_path / "Annotations" / "480p" / "a").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="val.txt: cannot be read"):
        DavisDataset(tmp_path)


@pytest.mark.parametrize("change,words", [
    ({"topk": "5"}, ["topk", "must be an integer"]),
    ({"num_frames": -1}, ["num_frames", ">= 0"]),
    ({"mask_digest": 7}, ["mask_digest", "string"]),
    ({"frames": None}, ["frames", "string"]),
])
def test_run_record_with_wrong_types(tmp_path, change, words):
    """Was: read back as is (a wrong type then read as a changed setting, or used as it came)."""
    from dinotools.runs.record import MANIFEST, read_record, run_record
    from dinotools.runs.settings import RunSettings

    good = run_record(RunSettings(), tmp_path / "f", tmp_path / "m.png", 5, None, {0: np.zeros((2, 2))})
    (tmp_path / MANIFEST).write_text(json.dumps(good))
    assert read_record(tmp_path) == good
    (tmp_path / MANIFEST).write_text(json.dumps({**good, **change}))
    with pytest.raises(InputError) as info:
        read_record(tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / MANIFEST}: {words[0]}: ") and words[1] in msg and "--overwrite" in msg


def test_run_record_nested_too_deep(tmp_path):
    from dinotools.runs.record import MANIFEST, read_record

    (tmp_path / MANIFEST).write_text("[" * 100_000)
    with pytest.raises(InputError, match="run record"):
        read_record(tmp_path)
