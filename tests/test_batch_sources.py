"""Batch inputs: list files (CSV/JSONL), DAVIS roots, up-front validation, and the batch.json record."""
import json

import numpy as np
import pytest
from PIL import Image

from dinotools.batch import (
    BatchInputError,
    BatchRecord,
    Video,
    davis_videos,
    list_videos,
    validate,
)
from dinotools.errors import InputError


def _video_dir(root, name, n=2):
    folder = root / name
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / f"{i:05d}.jpg")
    mask = root / f"{name}.png"
    Image.fromarray(np.ones((8, 8), np.uint8), mode="L").save(mask)
    return folder, mask


def test_csv_with_and_without_header(tmp_path):
    _video_dir(tmp_path, "a")
    _video_dir(tmp_path, "b")
    (tmp_path / "clip.mp4").write_bytes(b"not decoded up front")
    (tmp_path / "with.csv").write_text("name,frames,mask\nfirst,a,a.png\n\n# comment\nsecond,b,b.png\n")
    (tmp_path / "plain.csv").write_text("a,a.png\nclip.mp4,b.png,c\n")
    with_header = list_videos(tmp_path / "with.csv")
    assert [(v.name, v.frames, v.mask, v.where) for v in with_header] == [
        ("first", tmp_path / "a", tmp_path / "a.png", "with.csv line 2"),
        ("second", tmp_path / "b", tmp_path / "b.png", "with.csv line 5"),
    ]
    plain = list_videos(tmp_path / "plain.csv")
    assert [v.name for v in plain] == ["a", "c"]  # default name: the folder's name
    assert plain[1].frames == tmp_path / "clip.mp4"


def test_jsonl_aliases_and_default_name(tmp_path):
    _video_dir(tmp_path, "a")
    (tmp_path / "v.mp4").write_bytes(b"x")
    (tmp_path / "l.jsonl").write_text('{"frames": "a", "mask": "a.png", "name": "x"}\n'
                                      '{"video": "v.mp4", "masks": "a.png"}\n')
    assert [(v.name, v.frames.name) for v in list_videos(tmp_path / "l.jsonl")] == [("x", "a"), ("v", "v.mp4")]


def test_every_bad_row_is_named_by_line(tmp_path):
    _video_dir(tmp_path, "a")
    (tmp_path / "bad.csv").write_text(
        "frames,mask,name\n"
        "a,a.png,ok\n"
        "missing,a.png,m\n"          # line 3: frames not found
        "a,nomask.png,n\n"           # line 4: mask not found
        "a,a.png,ok\n"               # line 5: duplicate output name
        "a,a.png,x,extra\n"          # line 6: too many columns
        "a,,y\n"                     # line 7: no mask
        "a,a.png,../up\n"            # line 8: not a plain folder name
        "a,a.png,OK\n"               # line 9: differs from line 2 only by case
    )
    with pytest.raises(BatchInputError) as err:
        list_videos(tmp_path / "bad.csv")
    lines = err.value.lines()
    assert [line.split(":")[0] for line in lines] == [f"bad.csv line {n}" for n in (3, 4, 5, 6, 7, 8, 9)]
    assert "frames" in lines[0] and "not found" in lines[0]
    assert "mask" in lines[1] and "nomask.png" in lines[1]
    assert "also used by bad.csv line 2" in lines[2]
    assert "4 columns" in lines[3] and "no mask given" in lines[4] and "plain folder name" in lines[5]
    assert "\n" not in str(err.value) and "(and 6 more problem(s))" in str(err.value)


def test_jsonl_bad_lines(tmp_path):
    _video_dir(tmp_path, "a")
    (tmp_path / "bad.jsonl").write_text('{"frames": "a", "mask": "a.png"}\n[1]\n{oops\n'
                                        '{"frames": "a", "mask": "a.png", "colour": 1}\n'
                                        '{"frames": 3, "mask": "a.png"}\n')
    with pytest.raises(BatchInputError) as err:
        list_videos(tmp_path / "bad.jsonl")
    lines = err.value.lines()
    assert [line.split(":")[0] for line in lines] == [f"bad.jsonl line {n}" for n in (2, 3, 4, 5)]
    assert "unknown key(s) colour" in lines[2] and "frames must be a string" in lines[3]


def test_missing_or_empty_list(tmp_path):
    with pytest.raises(InputError, match="list file .* not found"):
        list_videos(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("# nothing\n\n")
    with pytest.raises(InputError, match="holds no video row"):
        list_videos(tmp_path / "empty.csv")
    with pytest.raises(BatchInputError, match="holds no video"):
        validate([])


def _davis(tmp_path, seqs, first_frame=0):
    root = tmp_path / "davis"
    for s in seqs:
        (root / "JPEGImages" / "480p" / s).mkdir(parents=True)
        (root / "Annotations" / "480p" / s).mkdir(parents=True)
        for i in range(first_frame, 3):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "JPEGImages" / "480p" / s / f"{i:05d}.jpg")
        for i in (0, 2):
            Image.fromarray(np.full((8, 8), 255 * (i == 0), np.uint8), mode="L").save(
                root / "Annotations" / "480p" / s / f"{i:05d}.png")
    return root


def test_davis_sequences_sets_and_masks(tmp_path):
    root = _davis(tmp_path, ["b", "a", "c"])
    videos = davis_videos(root)
    assert [v.name for v in videos] == ["a", "b", "c"]
    assert videos[0].mask == root.resolve() / "Annotations/480p/a/00000.png" and videos[0].where == "DAVIS sequence a"
    assert [v.name for v in davis_videos(root, sequences=["c", "a"])] == ["c", "a"]
    assert davis_videos(root, masks="all")[0].mask == root.resolve() / "Annotations/480p/a"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("c\nb\n")
    assert [v.name for v in davis_videos(root, split="val")] == ["c", "b"]
    with pytest.raises(InputError, match="no ImageSets/2017/test.txt"):
        davis_videos(root, split="test")
    with pytest.raises(InputError, match="JPEGImages/480p not found"):
        davis_videos(tmp_path)


def test_davis_first_frame_must_match_first_annotation(tmp_path):
    root = _davis(tmp_path, ["a"], first_frame=1)
    with pytest.raises(BatchInputError, match="first frame is 00001 but the first annotation is 00000.png"):
        davis_videos(root)


def test_record_is_atomic_json_and_refuses_other_settings(tmp_path):
    v = Video("a", tmp_path / "a", tmp_path / "a.png", "x line 1")
    record = BatchRecord(tmp_path, {"topk": 5})
    record.start([v], {"engine": "local"})
    record.update("a", status="done", frames=3, error=None)
    data = json.loads((tmp_path / "batch.json").read_text())
    assert data["videos"]["a"]["status"] == "done" and "error" not in data["videos"]["a"]
    assert not list(tmp_path.glob(".*.tmp"))
    again = BatchRecord(tmp_path, {"topk": 5})
    assert again.previous("a")["status"] == "done"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "00000.png").write_bytes(b"x")  # outputs made with topk 5
    with pytest.raises(InputError, match=r"other settings \(topk 5 -> 3\)"):
        BatchRecord(tmp_path, {"topk": 3}).check_outputs([v], tmp_path)
    kept = BatchRecord(tmp_path, {"topk": 3}, overwrite=True)  # --overwrite keeps every entry until replaced
    assert kept.previous("a")["status"] == "done"
    kept.check_outputs([v], tmp_path)
    (tmp_path / "batch.json").write_text("{trunc")
    with pytest.raises(InputError, match="batch.json is unreadable"):
        BatchRecord(tmp_path, {"topk": 5})
