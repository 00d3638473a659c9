"""Query points for the point tracker: a CSV file of ``t,x,y`` rows, or a regular grid on frame 0.

Coordinates are pixels with (0, 0) the top-left corner of the top-left pixel (pixel (row r,
col c) has its centre at (c + 0.5, r + 0.5)); ``t`` is a 0-based frame index.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from dinotools.errors import InputError

COLUMNS = ("t", "x", "y")


def read_queries(path, frame_size: Optional[Tuple[int, int]] = None, num_frames: Optional[int] = None) -> np.ndarray:
    """``path`` (CSV with a header naming the columns ``t``, ``x``, ``y``; other columns are ignored)
    -> ``[N,3]`` float64 ``(t, x, y)``. With ``frame_size`` (H, W) and ``num_frames``, a query outside
    the frame or past the last frame is an error; every error names the file and line."""
    path = Path(path)
    rows = []  # (line where the row starts, cells): a quoted cell may span lines
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: spreadsheets write a BOM
            reader = csv.reader(f)
            end = 0
            for row in reader:
                rows.append((end + 1, row))
                end = reader.line_num
    except FileNotFoundError:
        raise InputError(f"queries file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"queries file {path} cannot be read ({exc})") from None
    except csv.Error as exc:  # e.g. a cell over the csv module's size limit
        raise InputError(f"{path} line {end + 1}: not a CSV row ({exc})") from None
    lines = [(n, row) for n, row in rows if any(cell.strip() for cell in row)]
    if not lines:
        raise InputError(f"queries file {path} is empty: expected a header 't,x,y' and one row per query")
    header_line, header = lines[0]
    names = [cell.strip().lower() for cell in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path} line {header_line}: the header must name the columns t, x, y "
                         f"(missing {', '.join(missing)}; got {','.join(header)!r})")
    cols = [names.index(c) for c in COLUMNS]
    out = []
    for n, row in lines[1:]:
        if len(row) != len(header):
            raise InputError(f"{path} line {n}: expected {len(header)} fields like the header, got {len(row)}")
        try:
            t, x, y = (float(row[c]) for c in cols)
        except ValueError:
            raise InputError(f"{path} line {n}: t, x, y must be numbers, got "
                             f"{', '.join(repr(row[c].strip()) for c in cols)}") from None
        if not all(math.isfinite(v) for v in (t, x, y)):
            raise InputError(f"{path} line {n}: t, x, y must be finite numbers")
        if t < 0 or t != int(t):
            raise InputError(f"{path} line {n}: t={row[cols[0]].strip()} must be a frame index (an integer >= 0)")
        if num_frames is not None and t >= num_frames:
            raise InputError(f"{path} line {n}: frame t={int(t)} is past the last frame "
                             f"(the video has {num_frames} frames, t = 0..{num_frames - 1})")
        if frame_size is not None:
            h, w = frame_size
            if not (0 <= x <= w and 0 <= y <= h):
                raise InputError(f"{path} line {n}: point (x={x:g}, y={y:g}) lies outside the {w}x{h} frame "
                                 f"(0 <= x <= {w}, 0 <= y <= {h})")
        out.append((t, x, y))
    if not out:
        raise InputError(f"queries file {path} has a header but no query rows")
    return np.asarray(out, dtype=np.float64)


def grid_queries(n: int, frame_size: Tuple[int, int]) -> np.ndarray:
    """An ``n x n`` grid of queries on frame 0 at the centres of equal cells: ``[n*n, 3]`` (t, x, y)."""
    if n < 1:
        raise InputError(f"--grid needs N >= 1, got {n}")
    h, w = frame_size
    ys, xs = np.meshgrid((np.arange(n) + 0.5) * h / n, (np.arange(n) + 0.5) * w / n, indexing="ij")
    return np.stack([np.zeros(n * n), xs.ravel(), ys.ravel()], axis=1)


def write_queries(path, queries: np.ndarray) -> None:
    """``queries [N,3]`` (t, x, y) -> a CSV that ``read_queries`` reads back."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for t, x, y in np.asarray(queries, dtype=np.float64):
            writer.writerow([int(t), repr(float(x)), repr(float(y))])
