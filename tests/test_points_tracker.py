"""The point tracker: known motions, queries on any frame, batching, occlusion, streaming state, bad input."""
import cv2
import numpy as np
import pytest
import torch

import dinotools
import dinotools.ops.local_match as lm
from dinotools.backbones.baseline import ColorStatsBackbone
from dinotools.errors import InputError
from dinotools.pipeline import track_points
from dinotools.runs.report import current_rss_mb
from dinotools.trackers.points import PointTracker


def _texture(seed=0, size=(200, 260)):
    """Non-repeating texture (noise smoothed at two scales), so that no window holds a look-alike."""
    rng = np.random.default_rng(seed)
    fine = cv2.GaussianBlur(rng.normal(0, 1, size + (3,)), (0, 0), 2)
    coarse = cv2.GaussianBlur(rng.normal(0, 1, size + (3,)), (0, 0), 8)
    img = 128 + 250 * fine + 900 * coarse
    return np.clip(img, 0, 255).astype(np.uint8)


def _translating(n=6, dx=2, dy=1, size=(96, 128)):
    """Frames where the content moves by (dx, dy) pixels per frame."""
    img = _texture()
    h, w = size
    return [np.ascontiguousarray(img[60 - dy * t:60 - dy * t + h, 70 - dx * t:70 - dx * t + w]) for t in range(n)]


def _tracker(device="cpu", **kw):
    opts = dict(short_side=None, shifts=4, radius=2)
    opts.update(kw)
    return PointTracker(ColorStatsBackbone(grid=4), device=device, **opts)


def _run(tracker, frames, queries):
    out = list(track_points(tracker, frames, queries))
    return np.stack([r.xy for r in out], 1), np.stack([r.visible for r in out], 1)


def test_registered():
    tracker = dinotools.create_tracker("points", backbone="baseline")
    assert isinstance(tracker, PointTracker)


@pytest.mark.parametrize("template_update", [0.0, 0.5])
def test_follows_a_translation(device, template_update):
    frames = _translating()
    rng = np.random.default_rng(0)
    q = np.stack([np.zeros(40), rng.uniform(20, 100, 40), rng.uniform(20, 70, 40)], 1)
    xy, vis = _run(_tracker(device, template_update=template_update), frames, q)
    truth = q[:, None, 1:] + np.arange(6)[None, :, None] * np.array([2, 1])
    err = np.linalg.norm(xy - truth, axis=-1)
    assert np.median(err[:, 5]) < 1.5 and np.mean(err[:, 5] < 4) > 0.85, np.median(err, axis=0)
    assert vis.mean() > 0.9


def test_query_on_a_later_frame_and_at_the_borders():
    frames = _translating()
    q = np.array([[3, 40.5, 30.25], [0, 0.0, 0.0], [0, 128.0, 96.0], [5, 10.0, 90.0]])
    xy, vis = _run(_tracker(), frames, q)
    assert np.isnan(xy[0, :3]).all() and not vis[0, :3].any()
    assert xy[0, 3].tolist() == [40.5, 30.25] and vis[0, 3]  # the query itself, exactly, on its frame
    assert xy[1, 0].tolist() == [0.0, 0.0] and xy[2, 0].tolist() == [128.0, 96.0]
    assert np.isfinite(xy[1:3]).all()
    assert np.isnan(xy[3, :5]).all() and xy[3, 5].tolist() == [10.0, 90.0]


def test_batched_equals_one_by_one(monkeypatch):
    """With the checks off, queries do not interact: tracking all at once (and in tiny chunks) equals
    tracking each alone."""
    tracker = _tracker(sim_threshold=-1.0, fb_threshold=float("inf"))
    feats = tracker.encode(_translating(n=4))
    rng = np.random.default_rng(1)
    q = np.stack([rng.integers(0, 2, 12), rng.uniform(30, 100, 12), rng.uniform(25, 70, 12)], 1).astype(float)

    def run(queries):
        state = tracker.new_state(queries)
        return np.stack([tracker.step(state, f, (96, 128)).xy for f in feats], 1)

    together = run(q)
    alone = np.concatenate([run(q[i:i + 1]) for i in range(len(q))])
    monkeypatch.setattr(lm, "CHUNK_ELEMENTS", 1000)
    chunked = run(q)
    np.testing.assert_allclose(together, alone, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(together, chunked, atol=1e-4, equal_nan=True)


def test_occluder_hides_points_and_they_come_back():
    """A static scene; a flat black box covers the left half on frames 3-5."""
    frames = [f.copy() for f in [_translating(n=1)[0]] * 9]
    for t in (3, 4, 5):
        frames[t][:, :64] = 0
    q = np.array([[0, x, y] for x in (16.0, 40.0) for y in (20.0, 50.0, 75.0)]
                 + [[0, x, y] for x in (90.0, 112.0) for y in (20.0, 50.0, 75.0)])
    xy, vis = _run(_tracker(), frames, q)
    hidden = slice(0, 6)
    assert not vis[hidden, 3:6].any(), vis
    assert vis[6:, :].all(), vis
    assert vis[hidden, 7:].mean() > 0.8  # found again once the box is gone
    assert np.abs(xy[:, 8] - q[:, 1:]).max() < 3


def test_shifted_features_are_patches_at_sub_patch_offsets():
    tracker = PointTracker(ColorStatsBackbone(grid=2), shifts=4, short_side=None, center=False)
    img = _texture()[:64, :96]
    images = tracker.preprocess([img])  # [1,3,64,96]
    dense = tracker._shifted(images)  # [1,16,24,D]
    assert dense.shape[1:3] == (16, 24)
    for i, j in [(0, 0), (1, 3), (6, 9), (11, 18)]:  # cells whose patch lies inside the image
        y, x = i * 4, j * 4
        patch = tracker.backbone(images[:, :, y:y + 16, x:x + 16])[0, 0, 0]
        torch.testing.assert_close(dense[0, i, j], patch, rtol=0, atol=1e-5)


def test_pixels_and_grid_coordinates():
    for shifts in (1, 2):
        tracker = PointTracker(ColorStatsBackbone(), shifts=shifts, short_side=None)
        frame = _texture()[:64, :96]
        state = tracker.new_state(np.array([[0, 24.0, 8.0]]))  # the centre of patch (row 0, col 1)
        tracker.step(state, tracker.encode([frame])[0], frame.shape[:2])
        # shifts=1: patch (0, 1) is cell (0, 1); shifts=2: cells are half patches, the same patch is (0, 2).
        assert state.pos[0].tolist() == [1.0 * shifts, 0.0]
        xy = torch.tensor([[0.0, 0.0], [13.7, 60.2], [96.0, 64.0]])
        torch.testing.assert_close(state.to_pixels(state.to_grid(xy)), xy)


def test_state_stays_flat_over_a_long_stream():
    tracker = _tracker(shifts=1)
    rng = np.random.default_rng(0)
    frames = _translating(n=2)
    q = np.stack([np.zeros(50), rng.uniform(0, 128, 50), rng.uniform(0, 96, 50)], 1)
    state = tracker.new_state(q)
    feats = tracker.encode(frames)
    d = feats.shape[-1]
    rss = {}
    for i in range(200):
        tracker.step(state, feats[i % 2].clone(), (96, 128))
        if i in (50, 199):
            rss[i] = current_rss_mb()
    # The only per-video state: a few vectors per query and the last frame's features.
    sizes = [t.numel() for t in (state.anchor, state.template, state.pos, state.centre, state.visible)]
    assert sizes == [50 * d, 50 * d, 100, 100, 50] and state.prev_features.shape == (6, 8, d)
    assert rss[199] - rss[50] < 20, rss


def test_bad_input():
    tracker = _tracker()
    frames = _translating(n=3)
    with pytest.raises(InputError, match=r"query 1 \(x=130, y=5\) lies outside the 128x96 frame"):
        list(track_points(tracker, frames, np.array([[0, 5.0, 5.0], [0, 130.0, 5.0]])))
    with pytest.raises(InputError, match="t=1.5 must be an integer"):
        tracker.new_state(np.array([[1.5, 5.0, 5.0]]))
    with pytest.raises(InputError, match=r"\[N,3\]"):
        tracker.new_state(np.zeros((2, 2)))
    with pytest.raises(InputError, match=r"frame\(s\) 7, but the video has only 3 frames"):
        list(track_points(tracker, frames, np.array([[0, 5.0, 5.0], [7, 5.0, 5.0]])))
    with pytest.raises(InputError, match="same size"):
        list(track_points(tracker, frames + [np.zeros((64, 128, 3), np.uint8)], np.array([[0, 5.0, 5.0]])))
    with pytest.raises(dinotools.errors.ConfigError, match="shifts"):
        PointTracker(ColorStatsBackbone(), shifts=0)


def test_scene_motion_field_by_hand():
    from dinotools.trackers.scene_motion import scene_motion

    # A 10x10 grid in 2x2 cells. Top-left cell: motions (1,0), (2,0), (9,9) -> median (2, 0) per coordinate.
    # Bottom-right cell: one point only -> the overall median. Overall medians (lower): x of
    # [1, 2, 9, 5] -> 2, y of [0, 0, 9, 5] -> 0.
    points = torch.tensor([[1.0, 1.0], [2.0, 3.0], [4.0, 4.0], [8.0, 8.0]])
    motion = torch.tensor([[1.0, 0.0], [2.0, 0.0], [9.0, 9.0], [5.0, 5.0]])
    field = scene_motion(points, motion, (10, 10), bins=2)
    at = torch.tensor([[0.5, 0.5], [9.0, 9.0], [9.0, 0.0]])
    assert field(at).tolist() == [[2.0, 0.0], [2.0, 0.0], [2.0, 0.0]]
    many = torch.tensor([[6.0, 1.0]] * 3 + [[1.0, 1.0]] * 3)
    field = scene_motion(many, torch.tensor([[0.0, 3.0], [0.0, 1.0], [0.0, 2.0]] + [[4.0, 4.0]] * 3), (10, 10), 2)
    assert field(torch.tensor([[7.0, 2.0], [0.0, 0.0]])).tolist() == [[0.0, 2.0], [4.0, 4.0]]
    none = scene_motion(torch.zeros(0, 2), torch.zeros(0, 2), (10, 10))
    assert none(torch.ones(3, 2)).tolist() == [[0.0, 0.0]] * 3
