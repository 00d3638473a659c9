"""Generated point-tracking sequences: exact tracks (warped back onto their source points), flags matching pixels."""
import numpy as np
import pytest
from conftest import shared_path
from PIL import Image

from dinotools.eval.point_baselines import frame_shifts, global_motion, zero_motion
from dinotools.eval.synthetic_points import make_sequence, render


def _texture(seed=0, size=(300, 420)):
    """A deterministic textured RGB image (no shared data needed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    img = np.stack([128 + 60 * np.sin(xx / 7.0 + c) * np.cos(yy / 11.0 - c) for c in range(3)], -1)
    return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def seq():
    return make_sequence(_texture(), num_frames=16, size=(96, 128), num_points=200, seed=3, motion=2.0)


def test_tracks_warp_back_onto_their_source_points(seq):
    for t, warp in enumerate(seq.warps):
        back = warp(seq.tracks[:, t])
        np.testing.assert_allclose(back, seq.source_points, rtol=0, atol=1e-6)
    assert max(w.lipschitz() for w in seq.warps) < 0.5  # the deformation stays invertible


def test_queries_are_first_visible_frames(seq):
    n, t = seq.occluded.shape
    first = seq.queries[:, 0].astype(int)
    assert (~seq.occluded[np.arange(n), first]).all()
    for i in range(n):
        assert seq.occluded[i, :first[i]].all()
    np.testing.assert_array_equal(seq.queries[:, 1:], seq.tracks[np.arange(n), first])
    assert seq.frames.shape == (t, 96, 128, 3) and seq.frames.dtype == np.uint8
    assert len(set(first.tolist())) > 1  # queries on several frames, not only the first


def test_motion_is_smooth_and_zero_motion_is_static():
    s = make_sequence(_texture(), num_frames=12, size=(96, 128), num_points=50, seed=0, motion=1.0)
    step = np.linalg.norm(np.diff(s.tracks, axis=1), axis=-1)
    assert 0 < np.median(step) < 8 and step.max() < 15
    accel = np.linalg.norm(np.diff(s.tracks, n=2, axis=1), axis=-1)
    assert np.median(accel) < 1.0  # velocities change slowly
    still = make_sequence(_texture(), num_frames=6, size=(96, 128), num_points=50, seed=0, motion=0.0,
                          num_occluders=0)
    np.testing.assert_allclose(still.tracks, np.repeat(still.tracks[:, :1], 6, axis=1), atol=1e-9)


def _bilinear(img, x, y):
    """Bilinear sample of ``img [H,W]`` at (x, y) pixels, pixel (r, c) centred at (c + 0.5, r + 0.5)."""
    u, v = x - 0.5, y - 0.5
    c0, r0 = int(np.floor(u)), int(np.floor(v))
    fu, fv = u - c0, v - r0
    return ((1 - fu) * (1 - fv) * img[r0, c0] + fu * (1 - fv) * img[r0, c0 + 1]
            + (1 - fu) * fv * img[r0 + 1, c0] + fu * fv * img[r0 + 1, c0 + 1])


def test_rendered_frames_show_the_source_point_at_the_track(seq):
    """A linear ramp source: bilinear sampling is exact on it, so the frame value at a track must be the
    source value at its point (to cv2's 1/32-px map quantisation); a half-pixel slip would cost 0.4."""
    h, w = 400, 600
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (0.5 * (xx + 0.5) + 0.3 * (yy + 0.5)).astype(np.float32)  # value at (x, y) = 0.5 x + 0.3 y
    checked = 0
    for t in (0, 7, 15):
        frame = render(seq.warps[t], ramp, seq.frame_size)
        for (x, y), (sx, sy) in zip(seq.tracks[:, t], seq.source_points):
            if 2 < x < 126 and 2 < y < 94 and 1 < sx < w - 2 and 1 < sy < h - 2:
                assert _bilinear(frame, x, y) == pytest.approx(0.5 * sx + 0.3 * sy, abs=0.03)
                checked += 1
    assert checked > 200


def test_occlusion_flags_match_the_pasted_pixels():
    """Flat grey scene, flat white occluders, no noise: a frame pixel is white exactly where an occluder is."""
    grey = np.full((200, 300, 3), 80, np.uint8)
    white = np.full((200, 300, 3), 255, np.uint8)
    s = make_sequence(grey, num_frames=10, size=(96, 128), num_points=400, seed=5, noise=0.0,
                      occluder_image=white, num_occluders=4)
    agree = 0
    for t in range(10):
        for i, (x, y) in enumerate(s.tracks[:, t]):
            if not (0 <= x < 128 and 0 <= y < 96):
                assert s.occluded[i, t]  # outside the frame
                continue
            # Skip points within 1.5 px of an occluder's edge (their pixel's centre may fall either side).
            ring = [(x + dx, y + dy) for dx in (-1.5, 0, 1.5) for dy in (-1.5, 0, 1.5)]
            if len({any(o.inside(np.array(p), t) for o in s.occluders) for p in ring}) > 1:
                continue
            white_pixel = s.frames[t, int(y), int(x), 0] == 255
            assert white_pixel == s.occluded[i, t], (i, t)
            agree += 1
    assert agree > 1000 and s.occluded.any() and (~s.occluded).any()


def test_same_seed_same_sequence():
    a = make_sequence(_texture(), num_frames=5, size=(64, 80), num_points=30, seed=9)
    b = make_sequence(_texture(), num_frames=5, size=(64, 80), num_points=30, seed=9)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.tracks, b.tracks)


def test_real_frames_make_a_sequence():
    path = shared_path("data", "davis2016-mini", "JPEGImages", "480p", "dog", "00000.jpg")
    s = make_sequence(np.asarray(Image.open(path).convert("RGB")), num_frames=4, size=(120, 160), num_points=40)
    assert s.frames.shape == (4, 120, 160, 3) and 0 < len(s.queries) <= 40
    np.testing.assert_allclose(s.warps[3](s.tracks[:, 3]), s.source_points, atol=1e-6)


def test_zero_motion_baseline():
    q = np.array([[0, 5.0, 6.0], [2, 1.0, 2.0]])
    tracks, occ = zero_motion(q, 4)
    assert tracks.shape == (2, 4, 2) and (tracks[1] == [1.0, 2.0]).all() and not occ.any()


def test_global_motion_recovers_a_translation():
    img = _texture(1, (200, 260))
    frames = [img[40 - 2 * t:136 - 2 * t, 60 - 3 * t:188 - 3 * t] for t in range(6)]  # content moves +3, +2
    shifts = frame_shifts(frames)
    # OpenCV's sub-pixel peak (a centroid, Hann window) comes out a little short on small frames.
    np.testing.assert_allclose(np.diff(shifts, axis=0), np.tile([3, 2], (5, 1)), atol=0.25)
    q = np.array([[2, 50.0, 40.0], [0, 126.0, 40.0]])
    tracks, occ = global_motion(q, np.stack(frames), (96, 128))
    np.testing.assert_allclose(tracks[0, 5], [59, 46], atol=0.75)
    assert occ[1, 1] and not occ[1, 0]  # pushed past the right edge (x >= 128)
