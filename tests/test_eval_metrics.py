"""J, F, seg2bmap and the disk element on hand-made masks (ALGORITHM.md E.2, E.3)."""
import numpy as np
import pytest

from dinotools.eval.metrics import (
    boundary_f,
    boundary_tolerance,
    disk,
    region_similarity,
    seg2bmap,
)


def official_seg2bmap(seg):
    """Line-by-line transcription of the official _seg2bmap (zero-filled shifted copies)."""
    seg = seg.astype(bool)
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def brute_force_f(gt, pred, r):
    """F by explicit distances: a boundary pixel matches when one of the other's is within r."""
    bg, bp = np.argwhere(official_seg2bmap(gt)), np.argwhere(official_seg2bmap(pred))
    if len(bp) == 0 or len(bg) == 0:
        return None  # the empty cases are tested separately

    def matched(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return (d2 <= r * r).any(axis=1).sum()

    p, rec = matched(bp, bg) / len(bp), matched(bg, bp) / len(bg)
    return 0.0 if p + rec == 0 else 2 * p * rec / (p + rec)


def box(h, w, top, left, bh, bw):
    m = np.zeros((h, w), dtype=bool)
    m[top : top + bh, left : left + bw] = True
    return m


def test_disk_matches_skimage_definition():
    expected2 = np.array([[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]])
    np.testing.assert_array_equal(disk(2), expected2)
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    d8 = disk(8.0)  # the official tool passes the float ceil() result
    assert d8.shape == (17, 17) and d8.dtype == np.uint8
    yy, xx = np.mgrid[-8:9, -8:9]
    np.testing.assert_array_equal(d8, (yy**2 + xx**2 <= 64).astype(np.uint8))


def test_boundary_tolerance():
    assert boundary_tolerance((480, 854)) == 8  # ceil(0.008 * 979.6) = ceil(7.84)
    assert boundary_tolerance((100, 100)) == 2  # ceil(1.13)
    assert boundary_tolerance((480, 854), bound_th=3) == 3  # >= 1 means pixels


@pytest.mark.parametrize("seed", range(4))
def test_seg2bmap_matches_official_transcription(seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((3, 13, 17)) > rng.uniform(0.2, 0.8)
    got = seg2bmap(masks)  # batched
    for m, g in zip(masks, got):
        np.testing.assert_array_equal(g, official_seg2bmap(m))


def test_seg2bmap_one_pixel_and_border_cases():
    m = np.zeros((6, 7), dtype=bool)
    m[2, 3] = True  # interior pixel: boundary is the 2x2 block up-left of it (half-pixel offset)
    expected = np.zeros_like(m)
    expected[1:3, 2:4] = True
    np.testing.assert_array_equal(seg2bmap(m), expected)
    corner = np.zeros((6, 7), dtype=bool)
    corner[-1, -1] = True  # bottom-right pixel itself is never a boundary
    expected = np.zeros_like(corner)
    expected[-2:, -2:] = True
    expected[-1, -1] = False
    np.testing.assert_array_equal(seg2bmap(corner), expected)
    assert not seg2bmap(np.ones((5, 5), bool)).any()  # the image edge is no boundary
    left = box(6, 7, 0, 0, 6, 3)  # touches top, left and bottom edges: only the vertical cut
    np.testing.assert_array_equal(np.argwhere(seg2bmap(left))[:, 1], np.full(6, 2))


def test_region_similarity_cases():
    gt = box(10, 10, 2, 2, 4, 4)
    empty = np.zeros_like(gt)
    assert region_similarity(gt, gt) == 1.0
    assert region_similarity(gt, empty) == 0.0  # empty prediction
    assert region_similarity(empty, gt) == 0.0  # empty ground truth
    assert region_similarity(empty, empty) == 1.0  # both empty: union 0 -> 1
    assert region_similarity(gt, box(10, 10, 2, 4, 4, 4)) == pytest.approx(8 / 24)
    one = box(10, 10, 0, 9, 1, 1)  # one-pixel object on the border
    assert region_similarity(one, one) == 1.0 and region_similarity(one, box(10, 10, 1, 9, 1, 1)) == 0.0
    void = box(10, 10, 2, 4, 4, 2)
    assert region_similarity(gt, box(10, 10, 2, 2, 4, 2), void) == 1.0  # void removed from both counts
    batched = region_similarity(np.stack([gt, empty]), np.stack([empty, empty]))
    np.testing.assert_array_equal(batched, [0.0, 1.0])


def test_boundary_f_empty_cases():
    gt = box(40, 50, 10, 10, 10, 10)
    empty = np.zeros_like(gt)
    full = np.ones_like(gt)
    assert boundary_f(gt, empty) == 0.0  # no predicted boundary: P = 1, R = 0
    assert boundary_f(empty, gt) == 0.0  # no GT boundary: P = 0, R = 1
    assert boundary_f(empty, empty) == 1.0  # both empty: P = R = 1
    assert boundary_f(full, full) == 1.0  # whole image: no boundary on either side
    assert boundary_f(full, gt) == 0.0  # GT without boundary vs a predicted one
    assert boundary_f(gt, gt) == 1.0


def test_boundary_f_one_pixel_objects():
    a, b = box(40, 50, 20, 20, 1, 1), box(40, 50, 20, 21, 1, 1)
    assert region_similarity(a, b) == 0.0
    assert boundary_f(a, b) == 1.0  # boundaries 1 px apart, tolerance 1 px (ceil(0.008*64))
    far = box(40, 50, 5, 45, 1, 1)
    assert boundary_f(a, far) == 0.0


@pytest.mark.parametrize("shift", [0, 1, 2, 3, 5, 9])
def test_boundary_f_matches_brute_force(shift):
    h, w = 60, 80  # r = ceil(0.008 * 100) = 1
    gt = box(h, w, 10, 10, 20, 25)
    pred = box(h, w, 10 + shift // 2, 10 + shift, 22, 25) | box(h, w, 0, 70, 5, 10)  # + a border blob
    expected = brute_force_f(gt, pred, boundary_tolerance((h, w)))
    assert boundary_f(gt, pred) == pytest.approx(expected, abs=1e-12)
    expected3 = brute_force_f(gt, pred, 3)
    assert boundary_f(gt, pred, bound_th=3) == pytest.approx(expected3, abs=1e-12)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differ in shape"):
        region_similarity(np.zeros((4, 5)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="differ in shape"):
        boundary_f(np.zeros((4, 5)), np.zeros((4, 6)))


@pytest.mark.parametrize("seed", range(6))
def test_boundary_f_random_masks_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(12, 30, size=2)
    gt = np.zeros((h, w), bool)
    pred = np.zeros((h, w), bool)
    for m in (gt, pred):  # a few random boxes each, some touching the image border
        for _ in range(rng.integers(1, 4)):
            t, l = rng.integers(0, h - 2), rng.integers(0, w - 2)
            m[t : t + rng.integers(1, h), l : l + rng.integers(1, w)] = True
    for th in (0.008, 2, 4):
        expected = brute_force_f(gt, pred, boundary_tolerance((h, w), th))
        if expected is not None:
            assert boundary_f(gt, pred, bound_th=th) == pytest.approx(expected, abs=1e-12)


def test_j_per_object_is_region_similarity_of_each_gt_object():
    from dinotools.eval.metrics import j_per_object

    gt = np.zeros((6, 8), np.uint8)
    gt[1:3, 1:5] = 1  # 8 px
    gt[4:6, 0:2] = 3  # 4 px
    pred = np.zeros_like(gt)
    pred[1:3, 3:7] = 1  # 4 of its 8 px on object 1: J = 4 / 12
    pred[0, 0] = 2  # an id the ground truth lacks is not scored
    assert j_per_object(gt, pred) == {1: 4 / 12, 3: 0.0}
