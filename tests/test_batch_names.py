"""Batch list names (issue 20, item 8): NUL, tab and line breaks are refused up front, naming the list file,
its line and the field; CSV is read with the csv module's quoting rules (a quoted cell may hold a line break)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dinotools.batch.listfile import list_videos
from dinotools.batch.sources import BatchInputError
from dinotools.io.masks import write_mask


@pytest.fixture
def clip(tmp_path):
    """``tmp_path/f`` (4 frames 32x32) and ``tmp_path/m.png``."""
    from PIL import Image

    (tmp_path / "f").mkdir()
    for i in range(4):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(tmp_path / "f" / f"{i:05d}.png")
    m = np.zeros((32, 32), np.uint8)
    m[4:12, 4:12] = 1
    write_mask(tmp_path / "m.png", m)
    return tmp_path


def _problems(path):
    with pytest.raises(BatchInputError) as info:
        list_videos(path)
    return info.value.problems


@pytest.mark.parametrize("name,shown", [("a\x00b", "\\x00"), ("a\tb", "\\t"), ("a\nb", "\\n"), ("a\rb", "\\r"),
                                        ("a\u2028b", "\\u2028"), ("a\x1bb", "\\x1b")])
def test_jsonl_name_with_control_character(clip, name, shown):
    rows = [{"frames": "f", "mask": "m.png", "name": "ok"}, {"frames": "f", "mask": "m.png", "name": name}]
    (clip / "l.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (problem,) = _problems(clip / "l.jsonl")
    assert problem.startswith("l.jsonl line 2: name: ") and shown in problem and "\n" not in problem


def test_jsonl_raw_line_separator_inside_a_string(clip):
    """JSON strings may hold U+2028 raw; str.splitlines broke such a line in two."""
    (clip / "l.jsonl").write_text('{"frames": "f", "mask": "m.png", "name": "a\u2028b"}\n')
    assert _problems(clip / "l.jsonl") == ["l.jsonl line 1: name: 'a\\u2028b' holds a control character or "
                                           "line break (\\u2028)"]


def test_csv_quoted_line_break_is_one_cell(clip):
    """The quoted name spans lines 2-3; the next row is line 4 (it was misparsed line by line)."""
    (clip / "l.csv").write_text('frames,mask,name\nf,m.png,"a\nb"\nnope,m.png,c\n')
    problems = _problems(clip / "l.csv")
    assert problems[0] == "l.csv line 2: name: 'a\\nb' holds a control character or line break (\\n)"
    assert problems[1].startswith("l.csv line 4: frames ") and "nope not found" in problems[1]
    assert len(problems) == 2


def test_csv_quoted_commas_comments_and_blank_lines(clip):
    (clip / "f, b").mkdir()
    (clip / "l.csv").write_text('# videos\n\nframes,mask,name\n"f, b",m.png,"one, two"\n\n# x,y\nf,m.png,three\n')
    videos = list_videos(clip / "l.csv")
    assert [(v.name, v.where, v.frames.name) for v in videos] == [("one, two", "l.csv line 4", "f, b"),
                                                                    ("three", "l.csv line 7", "f")]


def test_tab_in_a_path_is_refused(clip):
    (clip / "l.csv").write_text('"f\tx",m.png,a\n')
    assert _problems(clip / "l.csv") == ["l.csv line 1: frames: 'f\\tx' holds a control character or line break (\\t)"]


def test_batch_command_refuses_a_nul_name_up_front(clip, capsys):
    """Was: accepted, then the video failed at run time (exit 3)."""
    from dinotools.commands.batch import main

    (clip / "l.jsonl").write_text(json.dumps({"frames": "f", "mask": "m.png", "name": "a\x00b"}) + "\n")
    code = main(["--list", str(clip / "l.jsonl"), "--output", str(clip / "out"), "--backbone", "baseline",
                 "--short-side", "32", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines() == ["error: l.jsonl line 1: name: 'a\\x00b' holds a control character or line break "
                                "(\\x00)"]
    assert not (clip / "out").exists()
