"""COCO-style video JSON (``--format coco``): one file per video, an RLE mask per object per frame.

Layout (COCO's ``images``/``annotations``/``categories`` plus the video fields of COCO-style video
datasets such as TAO): ``videos [{id, name, width, height, length}]``; ``images [{id, video_id,
frame_index, file_name, width, height}]`` (one per frame, ``id = frame_index + 1``);
``annotations [{id, image_id, video_id, category_id: 1, track_id, segmentation {size, counts},
area, bbox [x, y, w, h], iscrowd: 0}]`` for every object present on a frame, ``track_id`` being
the object's id in the label PNGs; one category ``object`` (dinotools is class-agnostic).
RLEs are pycocotools' compressed encoding, so ``pycocotools.mask.decode`` gives the masks back,
and the file loads with ``pycocotools.coco.COCO``. pycocotools is an optional dependency
(``pip install 'dinotools[coco]'``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from dinotools.errors import InputError, UserError
from dinotools.io.export_common import (
    LabelSequence,
    Spool,
    json_list,
    present_ids,
    write_json_stream,
)
from dinotools.io.masks import atomic_save
from dinotools.io.schemas import COCO, check_json, load_json

CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}


def require_pycocotools():
    """``pycocotools.mask``, or a one-line error saying how to install it."""
    try:
        from pycocotools import mask
    except ImportError:
        raise UserError("the coco format needs pycocotools: pip install 'dinotools[coco]' "
                        "(or pip install pycocotools)") from None
    return mask


def encode(labels: np.ndarray, ids: np.ndarray) -> list:
    """RLEs (pycocotools dicts, ``counts`` as str) of ``labels == id`` for each of ``ids``."""
    rle = require_pycocotools()
    masks = np.asfortranarray((labels[:, :, None] == ids[None, None, :]).astype(np.uint8))  # [H,W,K]
    out = rle.encode(masks)
    for r in out:
        r["counts"] = r["counts"].decode("ascii")
    return out


class CocoExport:
    """Streams one video's COCO JSON: annotations spooled per frame, the file written at ``finish``."""

    def __init__(self, path: Path, video: str, names: Sequence[str], files: Optional[Sequence[str]],
                 spool: Spool) -> None:
        self.path, self.video, self.names = Path(path), video, list(names)
        self.files = list(files) if files is not None else None
        self.spool, self.size, self.next_id = spool, None, 1

    def add(self, index: int, labels: np.ndarray) -> None:
        rle = require_pycocotools()
        self.size = self.size or labels.shape
        h, w = labels.shape
        name = self.files[index] if self.files else self.names[index]
        image = {"id": index + 1, "video_id": 1, "frame_index": index, "width": w, "height": h, "file_name": name}
        self.spool.append("coco.images", json.dumps(image, separators=(",", ":")))
        ids, _ = present_ids(labels)
        if not len(ids):
            return
        rles = encode(labels, ids)
        boxes = rle.toBbox(rles)
        areas = rle.area(rles)
        for k, r, box, area in zip(ids, rles, boxes, areas):
            ann = {"id": self.next_id, "image_id": index + 1, "video_id": 1, "category_id": 1, "track_id": int(k),
                   "segmentation": r, "area": int(area), "bbox": [float(v) for v in box], "iscrowd": 0}
            self.spool.append("coco", json.dumps(ann, separators=(",", ":")))
            self.next_id += 1

    def finish(self) -> None:
        h, w = self.size or (0, 0)
        video = {"id": 1, "name": self.video, "width": w, "height": h, "length": len(self.names)}

        def parts():
            yield '{"info": {"description": "dinotools tracking results", "format": "coco-video"},\n'
            yield f'"videos": [{json.dumps(video)}],\n"images": '
            yield from json_list(self.spool.lines("coco.images"))
            yield ',\n"annotations": '
            yield from json_list(self.spool.lines("coco"))
            yield f',\n"categories": [{json.dumps(CATEGORY)}]}}\n'

        atomic_save(self.path, lambda f: write_json_stream(f, parts()))


def read_coco(path, video: Optional[str] = None) -> LabelSequence:
    """One video's label maps from a COCO video JSON (``meta``: its ``videos`` record).

    Frames are the video's images in ``frame_index`` order, named by their ``file_name`` stem;
    each annotation's mask is painted with its ``track_id``. ``video``: which video of the file
    (by name; default the only one). The JSON is read and checked whole (schema, references,
    RLE sizes) before any frame is given out; the masks are decoded per frame.
    """
    rle = require_pycocotools()
    path = Path(path)
    data = check_json(load_json(path, "a COCO video JSON"), COCO, path)
    images, anns = data["images"], data["annotations"]
    videos = data.get("videos") or [{"id": None, "name": path.stem}]
    label = lambda v: str(v.get("name", v["id"]))  # noqa: E731
    if video is None and len(videos) > 1:
        raise InputError(f"{path}: videos: holds {len(videos)} videos; choose one with --video: "
                         f"{', '.join(label(v) for v in videos)}")
    chosen = videos[0] if video is None else next((v for v in videos if v.get("name") == video), None)
    if chosen is None:
        raise InputError(f"{path}: videos: no video named {video!r}")
    vid = chosen["id"]
    if vid is not None:  # the file lists videos: an image must say which one it is a frame of
        bad = next((i for i, im in enumerate(images) if "video_id" not in im), None)
        if bad is not None:
            raise InputError(f"{path}: images[{bad}].video_id: missing (the file lists videos, so each image "
                             f"needs the id of its video)")
    frames = sorted((im for im in images if vid is None or im["video_id"] == vid),
                    key=lambda im: (im.get("frame_index", 0), im["id"]))
    if not frames:
        raise InputError(f"{path}: images: no image of video {label(chosen)!r} (video_id {vid})")
    sizes = {im["id"]: (im["height"], im["width"]) for im in images}
    by_image = {}
    for n, a in enumerate(anns):
        if a["image_id"] not in sizes:
            raise InputError(f"{path}: annotations[{n}].image_id: no image has id {a['image_id']}")
        check_rle(a["segmentation"], sizes[a["image_id"]], f"{path}: annotations[{n}].segmentation")
        by_image.setdefault(a["image_id"], []).append(a)

    def labels() -> Iterator[Tuple[str, np.ndarray]]:
        for im in frames:
            h, w = int(im["height"]), int(im["width"])
            top = max((a["track_id"] for a in by_image.get(im["id"], [])), default=0)
            out = np.zeros((h, w), dtype=np.uint8 if top <= 255 else np.uint16)
            for a in by_image.get(im["id"], []):
                seg = dict(a["segmentation"])
                if isinstance(seg["counts"], list):  # uncompressed RLE: compress it first
                    seg = rle.frPyObjects(seg, h, w)
                out[rle.decode(seg).astype(bool)] = a["track_id"]
            yield Path(im["file_name"]).stem, out

    names = [Path(im["file_name"]).stem for im in frames]
    return LabelSequence(label(chosen) if chosen.get("name") else path.stem, names, labels(), dict(chosen))


def check_rle(seg: dict, size: Tuple[int, int], where: str) -> None:
    """An ``InputError`` unless ``seg`` is an RLE of an image of ``size`` (H, W) whose runs cover it exactly.

    pycocotools' decoder does not check the runs (too few leave pixels unset, too many write past
    the mask), so the counts are checked here first.
    """
    if tuple(seg["size"]) != tuple(size):
        raise InputError(f"{where}.size: {list(seg['size'])} but its image is {list(size)} (height, width)")
    counts = seg["counts"]
    if isinstance(counts, str):
        try:
            counts = rle_counts(counts)
        except ValueError as exc:
            raise InputError(f"{where}.counts: not a compressed RLE ({exc})") from None
    total = sum(counts)
    if total != size[0] * size[1]:
        raise InputError(f"{where}.counts: the runs cover {total} pixels, the image has {size[0] * size[1]}")


def rle_counts(text: str) -> list:
    """The run lengths of a COCO compressed RLE string (the inverse of ``rleToString`` in COCO's maskApi.c).

    pycocotools has no Python function for this: written out here, to check counts before decoding.
    Each run is a variable-length integer in 6-bit digits (chars 48..111), 0x20 the continuation bit,
    0x10 the sign bit of the last digit; runs from the third on are stored as differences to the
    run two before.
    """
    runs, p = [], 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            if p >= len(text):
                raise ValueError("the string ends inside a run")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {text[p]!r} at {p} is outside '0'..'o'")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError(f"run {len(runs)} is negative")
        runs.append(x)
    return runs
