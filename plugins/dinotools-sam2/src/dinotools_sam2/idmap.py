"""Turn SAM 2's overlapping automatic-mask records into one non-overlapping id map."""
from __future__ import annotations

from typing import Any, List, Mapping, Sequence, Tuple

import cv2
import numpy as np

from dinotools.errors import InputError


def quality(record: Mapping[str, Any]) -> float:
    """Ranking score of one record: ``predicted_iou * stability_score`` (a missing score counts as 1).

    Both are SAM 2's own confidence measures in [0, 1]; the product favours masks that are good on
    both, so a confident but unstable mask (or the reverse) ranks below one that is good on both.
    """
    return float(record.get("predicted_iou", 1.0)) * float(record.get("stability_score", 1.0))


def _mask(record: Mapping[str, Any], shape: Tuple[int, int], index: int) -> np.ndarray:
    """The record's ``segmentation`` as an ``[H,W]`` bool array, checked against the frame shape."""
    seg = record.get("segmentation")
    if seg is None:
        raise InputError(f"mask record {index} has no 'segmentation' (keys: {sorted(record)})")
    if isinstance(seg, dict):
        raise InputError(
            f"mask record {index} holds an RLE dict; build SAM2AutomaticMaskGenerator with "
            f"output_mode='binary_mask' (the dinotools-sam2 initializer does)"
        )
    seg = np.asarray(seg)
    if seg.shape != tuple(shape):
        raise InputError(f"mask record {index} is {seg.shape[:2]} but the frame is {tuple(shape)} (H, W)")
    return seg.astype(bool, copy=False)


RANK_BY = ("quality", "area")


def rank(records: Sequence[Mapping[str, Any]], masks: Sequence[np.ndarray], by: str = "quality") -> List[int]:
    """Record indices, best first.

    ``by="quality"``: quality, then larger mask area, then generator order. ``by="area"``: larger
    area, then quality, then order; whole objects then outrank their parts (SAM 2 returns both),
    so an object is not split into a part and the rest.
    """
    if by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}, got {by!r}")
    areas = [int(m.sum()) for m in masks]
    if by == "area":
        return sorted(range(len(records)), key=lambda i: (-areas[i], -quality(records[i]), i))
    return sorted(range(len(records)), key=lambda i: (-quality(records[i]), -areas[i], i))


def fill_holes(id_map: np.ndarray, max_hole_area: int) -> np.ndarray:
    """Fill background regions smaller than ``max_hole_area`` that lie inside one single object.

    ``id_map [H,W]`` int, 0 = background; changed in place and returned. A hole is a 4-connected
    background component that does not touch the image border and whose 4-neighbours all carry the
    same id; a gap between two different objects is left alone, since neither owns it.
    """
    if max_hole_area <= 0:
        return id_map
    h, w = id_map.shape
    n, comp, stats, _ = cv2.connectedComponentsWithStats((id_map == 0).astype(np.uint8), connectivity=4)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for c in range(1, n):
        x, y, cw, ch, area = stats[c]
        if area >= max_hole_area or x == 0 or y == 0 or x + cw == w or y + ch == h:
            continue
        # The component is strictly inside the frame, so its 1-pixel ring fits in the padded box.
        y0, y1, x0, x1 = y - 1, y + ch + 1, x - 1, x + cw + 1
        hole = (comp[y0:y1, x0:x1] == c).astype(np.uint8)
        ring = cv2.dilate(hole, cross).astype(bool) & ~hole.astype(bool)
        owners = np.unique(id_map[y0:y1, x0:x1][ring])
        if owners.size == 1:  # ring ids are never 0: a 0 neighbour would belong to the component
            id_map[y0:y1, x0:x1][hole.astype(bool)] = owners[0]
    return id_map


def records_to_id_map(
    records: Sequence[Mapping[str, Any]],
    shape: Tuple[int, int],
    *,
    min_area: int = 200,
    max_objects: int = 255,
    max_hole_area: int = 200,
    rank_by: str = "quality",
) -> np.ndarray:
    """SAM 2 automatic-mask records -> ``[H,W]`` int32 id map (0 = background, ids 1..N).

    Rules, in order:
      1. rank records by ``quality`` (predicted_iou * stability_score), then larger area, then
         generator order (``rank_by="area"``: larger area first; see ``rank``);
      2. resolve overlaps greedily: a mask keeps only the pixels no better-ranked kept mask took;
      3. drop a mask whose remaining area is below ``min_area`` (it then takes no pixels, so a
         worse-ranked mask under it can still have them);
      4. stop after ``max_objects`` kept masks;
      5. fill holes smaller than ``max_hole_area`` pixels enclosed by one object (``fill_holes``).
    Ids are 1..N in rank order. ``records``: dicts with an ``segmentation [H,W]`` bool array
    (``area`` is recomputed from it; missing scores count as 1); ``shape``: the frame's (H, W).
    """
    if min_area < 0 or max_objects < 0 or max_hole_area < 0:
        raise ValueError(
            f"min_area, max_objects and max_hole_area must be >= 0, got {min_area}, {max_objects}, {max_hole_area}"
        )
    shape = (int(shape[0]), int(shape[1]))
    masks = [_mask(r, shape, i) for i, r in enumerate(records)]
    id_map = np.zeros(shape, dtype=np.int32)
    next_id = 1
    for i in rank(records, masks, rank_by):
        if next_id > max_objects:
            break
        free = masks[i] & (id_map == 0)  # [H,W]: pixels no better-ranked mask holds
        if int(free.sum()) < max(min_area, 1):  # an empty remainder is never an object
            continue
        id_map[free] = next_id
        next_id += 1
    return fill_holes(id_map, max_hole_area)
