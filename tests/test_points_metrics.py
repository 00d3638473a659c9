"""TAP-Vid metrics against hand-computed cases and an independent per-point loop."""
import numpy as np
import pytest

from dinotools.eval.points import (
    THRESHOLDS,
    evaluate_video,
    evaluation_frames,
    mean_over_videos,
    scale_to_256,
    tapvid_metrics,
)

NAN = np.nan


def _hand_case():
    """Two queries, four frames; every number below is worked out in the test's comments.

    Query 0 (t=0) is scored on frames 1, 2, 3; query 1 (t=1) on frames 2, 3. Frames not scored
    hold garbage (NaN positions, wrong occlusion flags) that must not count.
    """
    queries = np.array([[0, 10, 10], [1, 50, 50]], float)
    gt = np.zeros((2, 4, 2))
    gt[0] = [[10, 10], [20, 20], [30, 30], [40, 40]]
    gt[1] = [[0, 0], [50, 50], [60, 60], [70, 70]]
    gt_occ = np.array([[False, False, False, True], [True, False, False, False]])
    pred = gt.copy()
    pred[0, 1] += [0.3, 0.4]  # distance 0.5: within every threshold
    pred[0, 2] += [3, 0]  # distance 3: within 4, 8, 16
    pred[0, 3] += [100, 0]  # GT occluded: distance does not matter
    pred[1, 0] = [NAN, NAN]  # before the query frame
    pred[1, 1] = [NAN, NAN]  # the query frame itself
    pred[1, 2] += [0, 2]  # distance exactly 2: NOT within 2 (strict), within 4
    pred[1, 3] += [6, 8]  # distance 10: within 16 only
    pred_occ = np.array([[True, False, True, False], [False, True, False, False]])
    return queries, gt, gt_occ, pred, pred_occ


def test_hand_computed_query_first():
    m = tapvid_metrics(*_hand_case())
    # Scored: q0 f1 (vis/vis), q0 f2 (vis/pred occ), q0 f3 (occ/pred vis), q1 f2, q1 f3 (vis/vis): 3 of 5 agree.
    assert m["occlusion_accuracy"] == pytest.approx(3 / 5)
    # GT-visible scored points: q0f1 (d=0.5), q0f2 (d=3), q1f2 (d=2), q1f3 (d=10).
    expected_within = {1: 1 / 4, 2: 1 / 4, 4: 3 / 4, 8: 3 / 4, 16: 4 / 4}
    for x, v in expected_within.items():
        assert m[f"pts_within_{x}"] == pytest.approx(v), x
    assert m["average_pts_within_thresh"] == pytest.approx(3 / 5)
    # Jaccard = TP / (4 GT-visible + FP); predicted visible: q0f1, q0f3 (GT occluded: always FP), q1f2, q1f3.
    # x=1, 2: TP {q0f1}, FP {q0f3, q1f2, q1f3}; x=4, 8: TP {q0f1, q1f2}, FP {q0f3, q1f3}
    # (q0f2 is within but predicted occluded: neither); x=16: TP {q0f1, q1f2, q1f3}, FP {q0f3}.
    expected_jaccard = {1: 1 / 7, 2: 1 / 7, 4: 2 / 6, 8: 2 / 6, 16: 3 / 5}
    for x, v in expected_jaccard.items():
        assert m[f"jaccard_{x}"] == pytest.approx(v), x
    assert m["average_jaccard"] == pytest.approx((1 / 7 + 1 / 7 + 1 / 3 + 1 / 3 + 3 / 5) / 5)


def test_hand_computed_strided():
    # Strided also scores q1 f0: GT occluded but predicted visible, so it disagrees (OA 3/6) and is one
    # more false positive at every threshold; the GT-visible points and so < delta^x are unchanged.
    m = tapvid_metrics(*_hand_case(), query_mode="strided")
    assert m["occlusion_accuracy"] == pytest.approx(3 / 6)
    assert m["pts_within_4"] == pytest.approx(3 / 4)
    assert m["jaccard_1"] == pytest.approx(1 / 8)
    assert m["jaccard_16"] == pytest.approx(3 / 6)


def test_evaluation_frames_and_rounding():
    scored = evaluation_frames(np.array([0, 2.4, 3]), 4)
    assert scored.tolist() == [[False, True, True, True], [False, False, False, True], [False] * 4]
    assert evaluation_frames(np.array([1]), 3, "strided").tolist() == [[True, False, True]]
    with pytest.raises(ValueError, match="query_mode"):
        evaluation_frames(np.array([0]), 3, "last")


def test_scaling_to_256():
    # A 128 x 512 (H x W) frame: x shrinks by 2, y grows by 2.
    assert scale_to_256(np.array([512.0, 128.0]), (128, 512)).tolist() == [256, 256]
    queries = np.array([[0, 100, 50]], float)
    gt = np.array([[[100, 50], [100, 50]]], float)
    pred = gt.copy()
    pred[0, 1] += [3, 0]  # 3 px in x -> 1.5 at 256: within 2, not within 1
    occ = np.zeros((1, 2), bool)
    m = evaluate_video(queries, gt, occ, pred, occ, (128, 512))
    assert (m["pts_within_1"], m["pts_within_2"]) == (0.0, 1.0)
    pred[0, 1] = gt[0, 1] + [0, 1]  # 1 px in y -> 2 at 256: not within 2 (strict)
    m = evaluate_video(queries, gt, occ, pred, occ, (128, 512))
    assert (m["pts_within_2"], m["pts_within_4"]) == (0.0, 1.0)


def _naive(queries, gt, gt_occ, pred, pred_occ):
    """Per point, per frame, in Python: the definitions read straight off the TAP-Vid paper."""
    n, t = gt_occ.shape
    agree = scored = 0
    within = {x: 0 for x in THRESHOLDS}
    visible = 0
    tp = {x: 0 for x in THRESHOLDS}
    fp = {x: 0 for x in THRESHOLDS}
    for i in range(n):
        for f in range(t):
            if f <= round(queries[i, 0]):
                continue
            scored += 1
            agree += bool(gt_occ[i, f]) == bool(pred_occ[i, f])
            d = float(np.hypot(*(pred[i, f] - gt[i, f])))
            visible += not gt_occ[i, f]
            for x in THRESHOLDS:
                close = d < x
                within[x] += close and not gt_occ[i, f]
                if not pred_occ[i, f]:
                    if close and not gt_occ[i, f]:
                        tp[x] += 1
                    else:
                        fp[x] += 1
    out = {"occlusion_accuracy": agree / scored}
    for x in THRESHOLDS:
        out[f"pts_within_{x}"] = within[x] / visible
        out[f"jaccard_{x}"] = tp[x] / (visible + fp[x])
    out["average_pts_within_thresh"] = np.mean([out[f"pts_within_{x}"] for x in THRESHOLDS])
    out["average_jaccard"] = np.mean([out[f"jaccard_{x}"] for x in THRESHOLDS])
    return out


def test_random_batch_matches_naive_loop_and_per_track():
    rng = np.random.default_rng(0)
    b, n, t = 3, 7, 9
    queries = np.stack([rng.integers(0, 5, (b, n)), rng.uniform(0, 256, (b, n)), rng.uniform(0, 256, (b, n))], -1)
    gt = rng.uniform(0, 256, (b, n, t, 2))
    pred = gt + rng.normal(0, 6, gt.shape)
    gt_occ = rng.random((b, n, t)) < 0.3
    pred_occ = rng.random((b, n, t)) < 0.3
    batch = tapvid_metrics(queries, gt, gt_occ, pred, pred_occ)
    for v in range(b):
        expected = _naive(queries[v], gt[v], gt_occ[v], pred[v], pred_occ[v])
        for k, e in expected.items():
            assert batch[k][v] == pytest.approx(e, abs=1e-12), k
    # Per track: a single query's video is that track.
    tracks = tapvid_metrics(queries, gt, gt_occ, pred, pred_occ, per_track=True)
    assert tracks["jaccard_8"].shape == (b, n)
    one = tapvid_metrics(queries[1, 4:5], gt[1, 4:5], gt_occ[1, 4:5], pred[1, 4:5], pred_occ[1, 4:5])
    assert tracks["jaccard_8"][1, 4] == pytest.approx(one["jaccard_8"], nan_ok=True)


def test_nothing_to_score_is_nan_and_bad_shapes_raise():
    queries = np.array([[3, 0, 0]], float)  # the last frame: nothing after it
    gt = np.zeros((1, 4, 2))
    occ = np.zeros((1, 4), bool)
    m = tapvid_metrics(queries, gt, occ, gt, occ)
    assert np.isnan(m["occlusion_accuracy"]) and np.isnan(m["average_jaccard"])
    with pytest.raises(ValueError, match="pred_tracks"):
        tapvid_metrics(queries, gt, occ, gt[:, :3], occ)
    with pytest.raises(ValueError, match="queries"):
        tapvid_metrics(queries[:, :2], gt, occ, gt, occ)


def test_mean_over_videos():
    assert mean_over_videos([{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 0.5}]) == {"a": 0.5, "b": 0.25}
