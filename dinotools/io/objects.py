"""Per-object tracks JSON (``--format objects``): per object and frame, present, area, box and centroid.

``{"video", "width", "height", "frames": [names], "objects": {"<id>": {"first_frame", "last_frame",
"frames_present", "track": [{"frame", "index", "present", "area", "box", "centroid"}, ...]}}}``
with one track entry per frame of the video (absent: ``present`` false, ``area`` 0, ``box`` and
``centroid`` null). ``box`` is ``[x, y, width, height]`` in pixels (COCO's convention: the
pixels ``x .. x+width-1``); ``centroid`` ``[x, y]`` is the mean pixel position. Ids are the
label PNGs'; an object is listed from the first frame it appears on.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from dinotools.io.export_common import Spool, json_list, present_ids, write_json_stream
from dinotools.io.masks import atomic_save
from dinotools.io.schemas import OBJECTS, check_json, load_json


def frame_objects(labels: np.ndarray) -> Dict[int, dict]:
    """``{id: {"area", "box", "centroid"}}`` of the objects present in ``labels [H,W]``."""
    ids, areas = present_ids(labels)
    if not len(ids):
        return {}
    flat = labels.ravel().astype(np.int64, copy=False)
    h, w = labels.shape
    ys, xs = np.divmod(np.arange(flat.size), w)
    sum_x = np.bincount(flat, weights=xs, minlength=ids[-1] + 1)
    sum_y = np.bincount(flat, weights=ys, minlength=ids[-1] + 1)
    out = {}
    for k, area in zip(ids, areas):
        mask = labels == k
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        box = [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
        out[int(k)] = {"area": int(area), "box": box,
                       "centroid": [round(float(sum_x[k] / area), 3), round(float(sum_y[k] / area), 3)]}
    return out


class ObjectsExport:
    """Spools one track entry per object per frame (absent entries included), assembles the JSON at ``finish``."""

    def __init__(self, path: Path, video: str, names: Sequence[str], spool: Spool) -> None:
        self.path, self.video, self.names, self.spool = Path(path), video, list(names), spool
        self.summary: Dict[int, dict] = {}  # id -> first_frame, last_frame, frames_present
        self.size, self.done = None, 0  # frames added so far

    def _entry(self, index: int, stats=None) -> str:
        entry = {"frame": self.names[index], "index": index, "present": stats is not None,
                 "area": stats["area"] if stats else 0, "box": stats["box"] if stats else None,
                 "centroid": stats["centroid"] if stats else None}
        return json.dumps(entry, separators=(",", ":"))

    def add(self, index: int, labels: np.ndarray) -> None:
        self.size = self.size or labels.shape
        found = frame_objects(labels)
        for k in sorted(set(found) | set(self.summary)):
            if k not in self.summary:  # first appearance: the frames before it are absent
                self.summary[k] = {"first_frame": self.names[index], "last_frame": None, "frames_present": 0}
                for i in range(index):
                    self.spool.append(f"objects.{k}", self._entry(i))
            stats = found.get(k)
            if stats is not None:
                self.summary[k]["last_frame"] = self.names[index]
                self.summary[k]["frames_present"] += 1
            self.spool.append(f"objects.{k}", self._entry(index, stats))
        self.done = index + 1

    def finish(self) -> None:
        h, w = self.size or (0, 0)
        head = {"video": self.video, "width": w, "height": h, "num_frames": len(self.names)}

        def track(k: int):
            yield from self.spool.lines(f"objects.{k}")
            for i in range(self.done, len(self.names)):  # frames never added (none in a finished run)
                yield self._entry(i)

        def parts():
            yield json.dumps(head)[:-1] + ',\n"frames": ' + json.dumps(self.names) + ',\n"objects": {'
            for n, k in enumerate(sorted(self.summary)):
                yield ("\n" if n == 0 else ",\n") + f'"{k}": ' + json.dumps(self.summary[k])[:-1] + ', "track": '
                yield from json_list(track(k))
                yield "}"
            yield "}}\n"

        atomic_save(self.path, lambda f: write_json_stream(f, parts()))


def read_objects(path) -> dict:
    """The per-object tracks JSON written by ``--format objects`` (ids as ints)."""
    path = Path(path)
    data = check_json(load_json(path, "a dinotools objects JSON"), OBJECTS, path)
    data["objects"] = {int(k): v for k, v in data["objects"].items()}
    return data
