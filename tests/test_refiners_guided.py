"""The ``guided`` refiner: its filters against naive float64 references, the labels path, and edges it finds."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_refiners_nearest import naive_bilinear

from dinotools.errors import ConfigError, InputError
from dinotools.refiners import BilinearRefiner, first_argmax
from dinotools.refiners import guided as guided_mod
from dinotools.refiners._filters import (
    bilinear_source,
    box_mean,
    box_mean_torch,
    downsample,
    solve3,
)
from dinotools.refiners.guided import GuidedRefiner


def naive_box(x: np.ndarray, r: int) -> np.ndarray:
    c, h, w = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            win = x[:, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            out[:, i, j] = win.reshape(c, -1).mean(1)
    return out


@pytest.mark.parametrize("r", [1, 2, 5])
@pytest.mark.parametrize("impl", [box_mean, box_mean_torch])  # OpenCV on the CPU, torch elsewhere
def test_box_mean_matches_naive_windows(device, r, impl):
    x = torch.rand(3, 7, 11, dtype=torch.float64)
    got = impl(x.to(device), r).cpu().numpy()
    np.testing.assert_allclose(got, naive_box(x.numpy(), r), rtol=0, atol=1e-12)
    np.testing.assert_allclose(impl(x.float().to(device), r).cpu().numpy(), naive_box(x.numpy(), r), atol=1e-6)


def test_solve3_matches_linalg_solve():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(4, 5, 3, 3, generator=g, dtype=torch.float64)
    spd = m @ m.transpose(-1, -2) + 0.1 * torch.eye(3, dtype=torch.float64)  # [h,w,3,3]
    v = torch.randn(2, 4, 5, 3, generator=g, dtype=torch.float64)  # [M,h,w,3]
    packed = torch.stack([spd[..., 0, 0], spd[..., 0, 1], spd[..., 0, 2], spd[..., 1, 1], spd[..., 1, 2],
                          spd[..., 2, 2]])  # [6,h,w]
    got = solve3(packed, v.permute(0, 3, 1, 2))  # [M,3,h,w]
    want = torch.linalg.solve(spd[None], v[..., None])[..., 0].permute(0, 3, 1, 2)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n_in,n_out", [(60, 480), (107, 854), (7, 3), (5, 5), (1, 4), (4, 9)])
def test_bilinear_source_is_torch_bilinear(n_in, n_out):
    x = torch.rand(n_in)  # float32: torch then computes the source positions in float32 too
    i0, i1, lam = bilinear_source(n_in, n_out, "cpu")
    mine = (1 - lam) * x[i0] + lam * x[i1]
    ref = F.interpolate(x.view(1, 1, n_in, 1), size=(n_out, 1), mode="bilinear")[0, 0, :, 0]
    torch.testing.assert_close(mine, ref, rtol=0, atol=1e-5)  # torch rounds its weights its own way


def test_downsample_is_an_area_average_on_both_paths():
    frame = np.random.default_rng(0).integers(0, 256, (24, 36, 3), dtype=np.uint8)
    image = torch.from_numpy(frame).permute(2, 0, 1).float() / 255
    expected = frame.reshape(6, 4, 9, 4, 3).mean((1, 3)).transpose(2, 0, 1) / 255  # 4x4 blocks, float64
    np.testing.assert_allclose(downsample(frame, image, (6, 9)).numpy(), expected, atol=1e-6)  # OpenCV
    np.testing.assert_allclose(downsample(None, image, (6, 9)).numpy(), expected, atol=1e-6)  # torch


def naive_guided(frame: np.ndarray, raw: np.ndarray, radius: int, eps: float, scale: int, guide: np.ndarray):
    """Fast guided filter in float64 with loops: ``raw [h,w,M]``, ``guide [3,hl,wl]`` -> ``[M,H,W]``."""
    h, w, m = raw.shape
    H, W = frame.shape[:2]
    p = raw.transpose(2, 0, 1).astype(np.float64)
    lo, hi = p.min(axis=(1, 2), keepdims=True), p.max(axis=(1, 2), keepdims=True)
    p = naive_bilinear((p - lo) / (hi - lo), h * scale, w * scale)
    hl, wl = p.shape[1:]
    a, b = np.zeros((m, 3, hl, wl)), np.zeros((m, hl, wl))
    for i in range(hl):
        for j in range(wl):
            ys, xs = slice(max(0, i - radius), i + radius + 1), slice(max(0, j - radius), j + radius + 1)
            gi = guide[:, ys, xs].reshape(3, -1)  # [3,n]
            pi = p[:, ys, xs].reshape(m, -1)  # [M,n]
            mu, mp = gi.mean(1), pi.mean(1)
            sigma = (gi @ gi.T) / gi.shape[1] - np.outer(mu, mu) + eps * np.eye(3)
            cov = (pi @ gi.T) / gi.shape[1] - np.outer(mp, mu)  # [M,3]
            a[:, :, i, j] = np.linalg.solve(sigma, cov.T).T
            b[:, i, j] = mp - a[:, :, i, j] @ mu
    a = naive_box(a.reshape(m * 3, hl, wl), radius)
    b = naive_box(b, radius)
    coef = naive_bilinear(np.concatenate([a, b]), H, W)
    image = frame.transpose(2, 0, 1) / 255.0
    return coef[3 * m:] + (coef[: 3 * m].reshape(m, 3, H, W) * image[None]).sum(1)


def scene(h=15, w=20, H=120, W=160, m=3, seed=0):
    """A frame with two colour regions whose boundary is off the patch grid, and soft probabilities."""
    rng = np.random.default_rng(seed)
    frame = np.zeros((H, W, 3), np.uint8)
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - 0.45 * H) ** 2 + (xx - 0.55 * W) ** 2 < (0.3 * H) ** 2
    frame[:] = (30, 120, 40)
    frame[disc] = (200, 60, 60)
    frame = np.clip(frame + rng.integers(-12, 13, frame.shape), 0, 255).astype(np.uint8)
    truth = disc.astype(np.int64)
    onehot = F.one_hot(F.interpolate(torch.from_numpy(truth)[None, None].float(), size=(h, w),
                                     mode="nearest-exact")[0, 0].long(), m).float()  # [h,w,m]
    soft = F.avg_pool2d(onehot.permute(2, 0, 1)[None], 3, 1, 1, count_include_pad=False)[0].permute(1, 2, 0)
    soft = (soft + 0.02 * torch.rand(h, w, m, generator=torch.Generator().manual_seed(seed)))
    return frame, soft / soft.sum(-1, keepdim=True), truth


@pytest.mark.parametrize("radius,eps", [(1, 1e-3), (2, 1e-2)])
def test_guided_scores_match_a_naive_float64_filter(device, radius, eps):
    frame, raw, _ = scene()
    refiner = GuidedRefiner(radius=radius, eps=eps, scale=2)
    raw_nc = raw.to(device).transpose(0, 1).contiguous().transpose(0, 1)  # non-contiguous
    got = refiner(frame, raw_nc)
    assert got.shape == (3, 120, 160) and got.device == raw_nc.device
    guide = downsample(frame, torch.from_numpy(frame).permute(2, 0, 1).float() / 255, (30, 40)).double().numpy()
    want = naive_guided(frame, raw.numpy(), radius, eps, 2, guide)
    np.testing.assert_allclose(got.cpu().double().numpy(), want, rtol=0, atol=2e-4)


@pytest.mark.parametrize("compiled", [False, True], ids=["torch-path", "compiled-path"])
@pytest.mark.parametrize("m", [1, 2, 3, 6])
def test_labels_path_equals_the_argmax_of_the_scores(device, m, compiled, monkeypatch):
    if compiled and not (guided_mod._HAS_OP and device == "cpu"):
        pytest.skip("the compiled labels kernel is CPU-only and needs dinotools._C")
    monkeypatch.setattr(guided_mod, "_HAS_OP", compiled)
    for seed in range(3):
        frame, raw, _ = scene(m=max(m, 2), seed=seed)
        raw = raw[..., :m] if m > 1 else raw[..., :1]
        refiner = GuidedRefiner()
        scores = refiner(frame, raw.to(device))
        dense = first_argmax(scores).cpu()
        fast = refiner.channels(frame, raw.to(device)).long()
        differ = dense != fast
        if differ.any():  # allowed only at float-rounding ties between the two best channels
            top2 = scores.cpu().topk(min(2, m), dim=0).values
            assert float((top2[0] - top2[-1])[differ].max()) < 1e-4
        assert int(differ.sum()) <= dense.numel() // 1000


def test_guided_finds_the_colour_edge_bilinear_misses():
    frame, raw, truth = scene(h=15, w=20, H=240, W=320, m=2)
    iou = {}
    for name, refiner in (("bilinear", BilinearRefiner()), ("guided", GuidedRefiner())):
        labels = refiner.channels(frame, raw).numpy() if name == "guided" else \
            first_argmax(refiner(frame, raw)).numpy()
        iou[name] = ((labels == 1) & (truth == 1)).sum() / ((labels == 1) | (truth == 1)).sum()
    assert iou["guided"] > iou["bilinear"] + 0.02 and iou["guided"] > 0.95, iou


def test_frame_smaller_than_the_low_resolution_grid():
    frame, raw, _ = scene(h=15, w=20, H=12, W=17)
    refiner = GuidedRefiner()
    scores = refiner(frame, raw)
    assert scores.shape == (3, 12, 17) and torch.isfinite(scores).all()
    np.testing.assert_array_equal(refiner.channels(frame, raw).long().numpy(), first_argmax(scores).numpy())


def test_bad_parameters_are_config_errors():
    for kwargs in ({"radius": 0}, {"radius": 1.5}, {"eps": -1}, {"eps": "x"}, {"scale": 0}):
        with pytest.raises(ConfigError, match="of refiner guided must be"):
            GuidedRefiner(**kwargs)
    with pytest.raises(Exception, match="reads the frame's pixels"):
        GuidedRefiner()((12, 17), torch.rand(3, 4, 2))


needs_op = pytest.mark.skipif(not guided_mod._HAS_OP, reason="dinotools._C without guided_labels (not built)")


def _davis_case(m: int, seed: int):
    """A real 854x480 DAVIS frame and soft probabilities [60,107,m] from its annotation cut into m-1 strips."""
    from conftest import shared_path
    from PIL import Image

    seqs = sorted((shared_path("data", "davis2016-mini") / "JPEGImages" / "480p").iterdir())
    seq = seqs[seed % len(seqs)]
    frames = sorted(seq.glob("*.jpg"))
    pick = frames[(7 * seed) % len(frames)]
    frame = np.array(Image.open(pick).convert("RGB"))
    gt = np.array(Image.open(str(pick).replace("JPEGImages", "Annotations").replace(".jpg", ".png"))) > 0
    labels = np.zeros(gt.shape, np.int64)
    cols = np.linspace(0, gt.shape[1], m).astype(int)
    for k in range(1, m):
        labels[:, cols[k - 1]:cols[k]] = np.where(gt[:, cols[k - 1]:cols[k]], k, 0)
    onehot = F.one_hot(F.interpolate(torch.from_numpy(labels)[None, None].float(), size=(60, 107),
                                     mode="nearest-exact")[0, 0].long(), m).float()
    soft = F.avg_pool2d(onehot.permute(2, 0, 1)[None], 3, 1, 1, count_include_pad=False)[0].permute(1, 2, 0)
    return frame, soft / soft.sum(-1, keepdim=True)


def _assert_argmax_of_scores(refiner, frame, raw, labels):
    """``labels`` equal the first argmax of the torch scores except at float-rounding ties: a score
    ``b + a . I`` is rounded relative to ``|b| + sum |a|`` (not to the score, which cancels), so the
    gap allowed is 1e-5 of the largest coefficients (the refiners' own MARGIN)."""
    scores = refiner(frame, raw)
    dense = first_argmax(scores)
    differ = dense != labels.long()
    if differ.any():
        _, _, a, b = refiner._fit(frame, raw)
        scale = 1 + float(a.abs().sum(1).amax()) + float(b.abs().amax())
        top = scores.gather(0, dense[None])[0]
        got = scores.gather(0, labels.long()[None])[0]
        gap = (top - got)[differ]
        assert float(gap.max()) <= 1e-5 * scale, (float(gap.max()), scale)
    assert int(differ.sum()) <= dense.numel() // 10000, int(differ.sum())


@needs_op
@pytest.mark.parametrize("m,radius,eps,seed", [(2, 1, 1e-3, 0), (5, 1, 1e-3, 1), (5, 2, 1e-2, 2), (7, 3, 1e-4, 3),
                                               (1, 1, 1e-3, 4), (3, 1, 1e-3, 5)])
def test_compiled_labels_equal_the_argmax_of_the_torch_scores_on_davis(m, radius, eps, seed):
    frame, raw = _davis_case(m, seed)
    refiner = GuidedRefiner(radius=radius, eps=eps)
    labels = refiner.channels(frame, raw)
    assert labels.shape == frame.shape[:2] and labels.dtype == torch.int16
    _assert_argmax_of_scores(refiner, frame, raw, labels)


@needs_op
@pytest.mark.parametrize("H,W,h,w,scale", [(12, 17, 15, 20, 2.0), (481, 853, 31, 53, 1.5), (100, 37, 7, 3, 3.0)])
def test_compiled_labels_at_odd_shapes_and_frame_kinds(H, W, h, w, scale):
    frame, raw, _ = scene(h=h, w=w, H=H, W=W, m=3)
    refiner = GuidedRefiner(scale=scale)
    labels = refiner.channels(frame, raw)
    _assert_argmax_of_scores(refiner, frame, raw, labels)
    readonly = frame.copy()
    readonly.flags.writeable = False
    assert torch.equal(refiner.channels(readonly, raw), labels)
    assert torch.equal(refiner.channels(torch.from_numpy(frame), raw), labels)
    assert torch.equal(refiner.channels(np.asfortranarray(frame), raw), labels)


@needs_op
def test_compiled_and_torch_labels_paths_agree(monkeypatch):
    frame, raw = _davis_case(5, 6)
    refiner = GuidedRefiner()
    compiled = refiner.channels(frame, raw).long()
    monkeypatch.setattr(guided_mod, "_HAS_OP", False)  # the torch path (the GPU's), on the CPU
    torch_path = refiner.channels(frame, raw).long()
    assert int((compiled != torch_path).sum()) <= compiled.numel() // 10000


def test_compiled_labels_bad_frames_are_input_errors():
    refiner = GuidedRefiner()
    raw = torch.rand(4, 5, 2)
    with pytest.raises(InputError, match="uint8"):
        refiner.channels(np.zeros((8, 10, 3), np.float32), raw)
    with pytest.raises(InputError, match=r"\[H,W,3\]"):
        refiner.channels(np.zeros((8, 10), np.uint8), raw)
