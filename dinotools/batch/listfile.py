"""``--list FILE``: one video per CSV row or JSONL line (frames, mask, output name), problems named by line."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from dinotools.batch.sources import BatchInputError, Video, find_problems, unprintable
from dinotools.errors import InputError

COLUMNS = ("frames", "mask", "name")
ALIASES = {"frames": "frames", "video": "frames", "mask": "mask", "masks": "mask", "name": "name", "output": "name"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


def list_videos(path) -> List[Video]:
    """The videos of a CSV or JSONL list file (by suffix: ``.jsonl``/``.ndjson``/``.json`` are JSONL).

    CSV: columns ``frames,mask,name`` (a header row naming them, in any order, is optional; ``video``
    and ``output`` are accepted aliases; ``name`` may be left out). JSONL: one object per line with
    the same keys. Relative paths are relative to the list file's folder; a missing name is the
    frames folder's name or the video file's stem. Blank lines and lines starting with ``#`` are
    skipped. Bad rows raise one ``BatchInputError`` naming each by line number.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"list file {path} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a BOM from spreadsheet exports is not data
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"list file {path} cannot be read as UTF-8 text ({exc})") from None
    parse = _jsonl_rows if path.suffix.lower() in JSONL_SUFFIXES else _csv_rows
    rows, problems = parse(text, path.name)
    base = path.resolve().parent
    videos = []
    for line, row in rows:
        where = f"{path.name} line {line}"
        bad = next(((k, v) for k, v in row.items() if v and unprintable(v)), None)
        if bad is not None:  # it would break the one-line-per-problem messages, or fail only at run time
            problems.append(f"{where}: {bad[0]}: {bad[1]!r} holds {unprintable(bad[1])}")
            continue
        if not row.get("frames") or not row.get("mask"):
            missing = " and ".join(k for k in ("frames", "mask") if not row.get(k))
            problems.append(f"{where}: no {missing} given")
            continue
        frames, mask = base / Path(row["frames"]).expanduser(), base / Path(row["mask"]).expanduser()
        name = row.get("name") or (frames.stem if frames.suffix else frames.name)
        videos.append(Video(name, frames, mask, where))
    problems += find_problems(videos)
    if problems:  # every bad row at once, in line order
        raise BatchInputError(sorted(problems, key=lambda p: _line_of(p, path.name)))
    if not videos:
        raise InputError(f"list file {path} holds no video row")
    return videos


def _line_of(problem: str, label: str) -> int:
    """The line number of a ``"<label> line N: ..."`` problem (the label may itself hold spaces)."""
    return int(problem[len(label) + len(" line "):].split(":", 1)[0])


def _skip(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def _csv_rows(text: str, label: str) -> Tuple[List[Tuple[int, Dict[str, str]]], List[str]]:
    """Rows read with the csv module's quoting rules over the whole text (a quoted cell may hold a comma or
    a line break), each numbered by the line it starts on; a row starting on a blank or ``#`` line is skipped."""
    raw = text.split("\n")
    dialect = csv.excel_tab if label.lower().endswith(".tsv") else csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows, problems, columns, first, end = [], [], list(COLUMNS), True, 0
    while True:
        line_no = end + 1
        try:
            cells = next(reader, None)
        except csv.Error as exc:  # the reader cannot go on past a broken row
            problems.append(f"{label} line {line_no}: not a CSV row ({exc})")
            break
        end = reader.line_num
        if cells is None:
            break
        if line_no <= len(raw) and _skip(raw[line_no - 1]):
            continue
        cells = [c.strip() for c in cells]
        if first and _header(cells) is not None:
            first, columns = False, _header(cells)
            if "frames" not in columns or "mask" not in columns:
                problems.append(f"{label} line {line_no}: the header must name the columns frames and mask "
                                f"(got {', '.join(cells)})")
            continue
        first = False
        if len(cells) > len(columns):
            problems.append(f"{label} line {line_no}: {len(cells)} columns, expected at most {len(columns)} "
                            f"({', '.join(columns)}); quote paths holding commas")
            continue
        rows.append((line_no, dict(zip(columns, cells))))
    return rows, problems


def _header(cells: List[str]) -> Optional[List[str]]:
    """Column names when ``cells`` is a header row (every cell a known column name)."""
    names = [ALIASES.get(c.lower()) for c in cells]
    if not cells or None in names or len(set(names)) != len(names):
        return None
    return names


def _jsonl_rows(text: str, label: str) -> Tuple[List[Tuple[int, Dict[str, str]]], List[str]]:
    rows, problems = [], []
    for line_no, line in enumerate(text.split("\n"), 1):  # not splitlines: it also breaks at U+2028 and
        line = line.rstrip("\r")  # other separators, which a JSON string may hold
        if _skip(line):
            continue
        where = f"{label} line {line_no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not a JSON object ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object like "
                            f'{{"frames": "...", "mask": "...", "name": "..."}}, got {type(obj).__name__}')
            continue
        unknown = sorted(k for k in obj if k not in ALIASES)
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(ALIASES))})")
            continue
        row = {}
        for key, value in obj.items():
            if value is not None and not isinstance(value, str):
                problems.append(f"{where}: {key} must be a string, got {json.dumps(value)}")
                break
            row[ALIASES[key]] = value
        else:
            rows.append((line_no, row))
    return rows, problems
