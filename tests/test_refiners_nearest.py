"""`nearest` and `bilinear` refiners: naive references; patch-grid labels equal the full-resolution ones."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dinotools.refiners import BilinearRefiner, NearestRefiner, first_argmax
from dinotools.refiners.nearest import nearest_index


def legacy_nearest(n_in: int, n_out: int) -> np.ndarray:
    """torch's legacy ``nearest`` source index, written out from ATen's UpSample.h (float32 arithmetic)."""
    if n_out == n_in:
        return np.arange(n_out)
    if n_out == 2 * n_in:
        return np.arange(n_out) >> 1
    scale = np.float32(np.float32(n_in) / np.float32(n_out))
    return np.array([min(int(math.floor(np.float32(i) * scale)), n_in - 1) for i in range(n_out)])


def full_labels(raw: torch.Tensor, size) -> np.ndarray:
    """Today's full-resolution decode: nearest upsampling, per-channel min-max, first argmax."""
    up = F.interpolate(raw.permute(2, 0, 1)[None].float(), size=size, mode="nearest")
    lo, hi = up.amin(dim=(2, 3), keepdim=True), up.amax(dim=(2, 3), keepdim=True)
    return first_argmax(((up - lo) / (hi - lo)).nan_to_num(nan=0.0)[0]).cpu().numpy()


def random_raw(g, h, w, m, device, levels=None):
    """``[h,w,M]`` softmax-like weights; ``levels`` quantises them so ties across cells and channels abound."""
    x = torch.rand(h, w, m, generator=g)
    if levels:
        x = (x * levels).floor() / levels
    return x.to(device)


@pytest.mark.parametrize("n_in", [1, 2, 3, 7, 16, 60, 107, 135])
def test_nearest_index_is_torch_legacy_arithmetic(n_in):
    for n_out in sorted({1, 2, n_in - 1, n_in, n_in + 1, 2 * n_in, 3 * n_in, 480, 854, 1712, 1000, 37} - {0}):
        np.testing.assert_array_equal(nearest_index(n_in, n_out).numpy(), legacy_nearest(n_in, n_out))


def test_nearest_scores_match_a_naive_loop(device):
    g = torch.Generator().manual_seed(1)
    raw = random_raw(g, 5, 7, 3, device)
    size = (13, 9)  # taller and narrower than the grid
    scores = NearestRefiner()(size, raw).cpu().double().numpy()
    rows, cols, r = legacy_nearest(5, 13), legacy_nearest(7, 9), raw.cpu().double().numpy()
    up = np.array([[[r[rows[y], cols[x], c] for x in range(9)] for y in range(13)] for c in range(3)])
    lo, hi = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(scores, (up - lo) / (hi - lo), rtol=0, atol=1e-6)


@pytest.mark.parametrize("levels", [None, 2, 4])
def test_grid_labels_equal_full_resolution_labels(device, levels):
    """Many random sizes, output larger and smaller than the grid, quantised values (ties), M from 1."""
    g = torch.Generator().manual_seed(7 + (levels or 0))
    refiner = NearestRefiner()
    for trial in range(150):
        h, w = (int(v) for v in torch.randint(1, 24, (2,), generator=g))
        H, W = (int(v) for v in torch.randint(1, 70, (2,), generator=g))
        if trial % 5 == 0:
            H, W = max(1, h // 2), max(1, w - 1)  # smaller than the grid: unread cells must not count
        m = [1, 2, 3, 5, 9][trial % 5]
        raw = random_raw(g, h, w, m, device, levels)
        if trial % 3 == 0:  # non-contiguous input
            raw = raw.transpose(0, 1).contiguous().transpose(0, 1)
        got = refiner.channels((H, W), raw)
        assert got.shape == (H, W) and got.device.type == "cpu"
        np.testing.assert_array_equal(got.long().numpy(), full_labels(raw, (H, W)), err_msg=f"{(h, w, m, H, W)}")


def test_grid_labels_ignore_cells_the_upsampling_never_reads():
    """A 4x4 grid shrunk to 2x2 reads cells (0,0),(0,2),(2,0),(2,2); an extreme value elsewhere must not
    stretch the channel (the full-resolution decode never sees it)."""
    raw = torch.zeros(4, 4, 2)
    raw[..., 0] = 0.5
    raw[..., 1] = torch.tensor([[0.1, 0, 0.6, 0], [0, 9, 0, 0], [0.2, 0, 0.3, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(nearest_index(4, 2).numpy(), [0, 2])
    expected = full_labels(raw, (2, 2))
    np.testing.assert_array_equal(expected, [[0, 1], [1, 1]])  # channel 1 stretched over {0.1,0.6,0.2,0.3}
    np.testing.assert_array_equal(NearestRefiner().channels((2, 2), raw).numpy(), expected)


def test_grid_labels_use_a_small_dtype_and_many_channels():
    g = torch.Generator().manual_seed(3)
    raw = random_raw(g, 6, 8, 300, "cpu", levels=3)
    got = NearestRefiner().channels((20, 30), raw)
    assert got.dtype == torch.int16
    np.testing.assert_array_equal(got.long().numpy(), full_labels(raw, (20, 30)))


def naive_bilinear(x: np.ndarray, H: int, W: int) -> np.ndarray:
    """``x [M,h,w]`` -> ``[M,H,W]``: align_corners=False bilinear (half-pixel centres, clamped), float64."""
    m, h, w = x.shape
    out = np.zeros((m, H, W))
    for y in range(H):
        sy = max((y + 0.5) * h / H - 0.5, 0.0)
        y0 = min(int(sy), h - 1)
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for xx in range(W):
            sx = max((xx + 0.5) * w / W - 0.5, 0.0)
            x0 = min(int(sx), w - 1)
            x1, fx = min(x0 + 1, w - 1), sx - x0
            out[:, y, xx] = ((1 - fy) * ((1 - fx) * x[:, y0, x0] + fx * x[:, y0, x1])
                             + fy * ((1 - fx) * x[:, y1, x0] + fx * x[:, y1, x1]))
    return out


@pytest.mark.parametrize("size", [(17, 23), (4, 3), (8, 12)])
def test_bilinear_scores_match_a_naive_reference(device, size):
    g = torch.Generator().manual_seed(5)
    raw = random_raw(g, 4, 6, 3, device).transpose(0, 1).contiguous().transpose(0, 1)  # non-contiguous
    scores = BilinearRefiner()(size, raw)
    assert scores.device == raw.device and scores.shape == (3, *size)
    up = naive_bilinear(raw.cpu().double().permute(2, 0, 1).numpy(), *size)
    lo, hi = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(scores.cpu().double().numpy(), (up - lo) / (hi - lo), rtol=0, atol=1e-5)


def test_constant_channel_scores_zero():
    raw = torch.zeros(3, 3, 2)
    raw[..., 1] = 1.0  # constant: stretched to 0 everywhere (0/0), as the notebook's nan_to_num
    for refiner in (NearestRefiner(), BilinearRefiner()):
        assert float(refiner((6, 6), raw).abs().max()) == 0.0
