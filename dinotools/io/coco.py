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
    (by name; default the only one). The JSON is read whole (the masks are decoded per frame).
    """
    rle = require_pycocotools()
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        videos, images, anns = data.get("videos") or [{"id": None, "name": path.stem}], data["images"], \
            data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a COCO JSON with images and annotations ({exc})") from None
    if video is None and len(videos) > 1:
        raise InputError(f"{path} holds {len(videos)} videos; choose one: {', '.join(v['name'] for v in videos)}")
    chosen = videos[0] if video is None else next((v for v in videos if v.get("name") == video), None)
    if chosen is None:
        raise InputError(f"{path} has no video named {video!r}")
    vid = chosen.get("id")
    frames = sorted((im for im in images if vid is None or im.get("video_id") == vid),
                    key=lambda im: (im.get("frame_index", 0), im["id"]))
    by_image = {}
    for a in anns:
        if "track_id" not in a:
            raise InputError(f"{path}: annotation {a.get('id')} has no track_id (the object's id)")
        by_image.setdefault(a["image_id"], []).append(a)

    def labels() -> Iterator[Tuple[str, np.ndarray]]:
        for im in frames:
            h, w = int(im["height"]), int(im["width"])
            top = max((a["track_id"] for a in by_image.get(im["id"], [])), default=0)
            out = np.zeros((h, w), dtype=np.uint8 if top <= 255 else np.uint16)
            for a in by_image.get(im["id"], []):
                seg = dict(a["segmentation"])
                if isinstance(seg.get("counts"), list):  # uncompressed RLE: compress it first
                    seg = rle.frPyObjects(seg, h, w)
                mask = rle.decode(seg).astype(bool)
                if mask.shape != out.shape:
                    raise InputError(f"{path}: annotation {a.get('id')} is {mask.shape[1]}x{mask.shape[0]} but its "
                                     f"image {im['file_name']} is {w}x{h}")
                out[mask] = a["track_id"]
            yield Path(im["file_name"]).stem, out

    names = [Path(im["file_name"]).stem for im in frames]
    return LabelSequence(chosen.get("name") or path.stem, names, labels(), dict(chosen))
