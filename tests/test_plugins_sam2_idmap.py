"""dinotools-sam2's id-map rules: ranking, overlaps, minimum area, object cap, hole filling."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dinotools.errors import InputError

try:
    import dinotools_sam2  # noqa: F401  (installed plugin)
except ImportError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "dinotools-sam2" / "src"))
from dinotools_sam2.idmap import fill_holes, quality, rank, records_to_id_map  # noqa: E402

H, W = 40, 60


def box(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def rec(mask, iou=0.9, stab=0.96):
    """A SAM 2 automatic-mask record (binary_mask mode) for ``mask``."""
    ys, xs = np.nonzero(mask)
    bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    return {"segmentation": mask, "area": int(mask.sum()), "bbox": bbox, "predicted_iou": iou,
            "point_coords": [[float(xs.mean()), float(ys.mean())]], "stability_score": stab,
            "crop_box": [0.0, 0.0, float(W), float(H)]}


def idmap(records, **kw):
    kw = {"min_area": 0, "max_objects": 255, "max_hole_area": 0, **kw}
    return records_to_id_map(records, (H, W), **kw)


def test_quality_is_iou_times_stability_and_missing_scores_count_as_one():
    assert quality({"predicted_iou": 0.5, "stability_score": 0.8}) == pytest.approx(0.4)
    assert quality({}) == 1.0


def test_rank_by_quality_then_area_then_order():
    small, big = box(0, 5, 0, 5), box(10, 30, 10, 30)
    records = [rec(small, 0.9, 0.9), rec(big, 0.9, 0.9), rec(small, 0.99, 0.99), rec(small, 0.9, 0.9)]
    # record 2 has the best score; 1 beats 0 and 3 on area; 0 beats 3 on generator order
    assert rank(records, [r["segmentation"] for r in records]) == [2, 1, 0, 3]


def test_rank_by_area_keeps_whole_objects_over_their_parts():
    whole, part = box(5, 35, 5, 25), box(5, 12, 10, 20)  # a person and its head
    records = [rec(whole, 0.85, 0.95), rec(part, 0.95, 0.98)]  # SAM 2 often scores the part higher
    split = idmap(records, min_area=50)
    np.testing.assert_array_equal(split == 1, part)  # by quality the object splits in two
    np.testing.assert_array_equal(split == 2, whole & ~part)
    kept = idmap(records, min_area=50, rank_by="area")
    np.testing.assert_array_equal(kept == 1, whole)
    assert kept.max() == 1  # the head has no pixel left
    with pytest.raises(ValueError, match="rank_by"):
        idmap(records, rank_by="size")


def test_higher_ranked_mask_wins_the_overlap_and_ids_follow_rank():
    a, b = box(5, 25, 5, 35), box(15, 35, 20, 50)  # overlap rows 15:25, cols 20:35
    out = idmap([rec(a, 0.85, 0.95), rec(b, 0.95, 0.98)])  # b is better, listed second
    assert out.dtype == np.int32 and out.shape == (H, W)
    np.testing.assert_array_equal(out == 1, b)
    np.testing.assert_array_equal(out == 2, a & ~b)
    assert set(np.unique(out)) == {0, 1, 2}


def test_min_area_counts_the_pixels_left_after_overlap_and_frees_them():
    whole = box(0, 20, 0, 20)  # 400 px, best
    part = box(10, 30, 10, 30)  # 400 px, 300 left once `whole` has its pixels
    under = box(20, 40, 10, 30)  # 400 px, worst; its top half (200 px) is inside what `part` keeps
    records = [rec(under, 0.8, 0.8), rec(part, 0.9, 0.9), rec(whole, 0.99, 0.99)]
    out = idmap(records, min_area=250)  # part keeps 300 >= 250; under keeps 200 < 250 and is dropped
    np.testing.assert_array_equal(out == 1, whole)
    np.testing.assert_array_equal(out == 2, part & ~whole)
    assert out.max() == 2
    out = idmap(records, min_area=350)  # part keeps 300 < 350: dropped, so under has all its 400 px
    np.testing.assert_array_equal(out == 1, whole)
    np.testing.assert_array_equal(out == 2, under)
    assert out.max() == 2


def test_masks_below_min_area_are_dropped_and_ids_stay_consecutive():
    records = [rec(box(0, 10, 0, 10), 0.99, 0.99), rec(box(0, 5, 20, 25), 0.95, 0.95), rec(box(20, 35, 0, 10))]
    out = idmap(records, min_area=100)  # the 25 px square (rank 2) is dropped
    np.testing.assert_array_equal(out == 1, records[0]["segmentation"])
    np.testing.assert_array_equal(out == 2, records[2]["segmentation"])
    assert out.max() == 2


def test_max_objects_keeps_the_best_ranked():
    masks = [box(0, 8, 8 * i, 8 * i + 6) for i in range(6)]
    scores = [0.81, 0.97, 0.85, 0.99, 0.83, 0.9]
    out = idmap([rec(m, s, 1.0) for m, s in zip(masks, scores)], max_objects=3)
    for new_id, i in enumerate([3, 1, 5], start=1):
        np.testing.assert_array_equal(out == new_id, masks[i])
    assert out.max() == 3 and not out[masks[0] | masks[2] | masks[4]].any()


def ring(y0, y1, x0, x1, hole):
    """A filled box with an inner ``hole = (hy0, hy1, hx0, hx1)`` cut out."""
    return box(y0, y1, x0, x1) & ~box(*hole)


def test_small_holes_inside_one_object_are_filled_large_ones_kept():
    small = ring(2, 18, 2, 18, (8, 11, 8, 11))  # 9 px hole
    large = ring(2, 38, 22, 58, (8, 32, 28, 52))  # 576 px hole
    small, large = rec(small, 0.99, 0.99), rec(large)  # `small` ranks first despite its area
    out = idmap([small, large], max_hole_area=100)
    np.testing.assert_array_equal(out == 1, box(2, 18, 2, 18))
    np.testing.assert_array_equal(out == 2, large["segmentation"])
    out = idmap([small, large], max_hole_area=0)  # 0 turns filling off
    np.testing.assert_array_equal(out == 1, small["segmentation"])
    out = idmap([small], max_hole_area=9)  # "smaller than": a 9 px hole stays at 9
    np.testing.assert_array_equal(out == 1, small["segmentation"])
    out = idmap([small], max_hole_area=10)
    np.testing.assert_array_equal(out == 1, box(2, 18, 2, 18))


def test_gaps_between_two_objects_and_notches_at_the_border_are_not_holes():
    left, right = box(5, 30, 5, 20), box(5, 30, 21, 40)  # a 1-px column gap between two objects
    right_with_bar = right | box(5, 6, 19, 21) | box(29, 30, 19, 21)  # enclose the gap top and bottom
    out = idmap([rec(left), rec(right_with_bar)], max_hole_area=100)
    assert (out[6:29, 20] == 0).all()  # enclosed, but by two ids: nobody owns it
    notch = box(0, 20, 0, 20) & ~box(0, 3, 8, 11)  # a 9 px notch open to the top border
    out = idmap([rec(notch)], max_hole_area=100)
    np.testing.assert_array_equal(out == 1, notch)


def test_fill_holes_keeps_objects_inside_a_hole():
    id_map = np.zeros((H, W), np.int32)
    id_map[box(5, 25, 5, 25)] = 1
    id_map[box(10, 20, 10, 20)] = 0  # a 100 px hole in object 1 ...
    id_map[box(13, 17, 13, 17)] = 2  # ... holding object 2: the background ring touches two ids
    out = fill_holes(id_map.copy(), max_hole_area=1000)
    np.testing.assert_array_equal(out, id_map)


def test_rle_records_and_wrong_sizes_are_clear_errors():
    with pytest.raises(InputError, match="binary_mask"):
        idmap([{"segmentation": {"size": [H, W], "counts": [H * W]}, "predicted_iou": 0.9}])
    with pytest.raises(InputError, match=r"\(30, 60\)"):
        idmap([rec(box(0, 5, 0, 5)), {"segmentation": np.ones((30, 60), bool)}])
    with pytest.raises(InputError, match="segmentation"):
        idmap([{"area": 3}])


def test_no_records_give_an_empty_map():
    out = idmap([])
    assert out.shape == (H, W) and not out.any()
