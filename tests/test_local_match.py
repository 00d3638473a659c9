"""The batched local matcher against naive per-query loops (float64) and peaks placed at known sub-cell positions."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dinotools.ops.local_match as lm
from dinotools.ops.local_match import MatchConfig, local_match, sample_features


def _naive_sample(features, u, v):
    """Bilinear interpolation between cell centres, clamped to the grid, one point, float64."""
    h, w, _ = features.shape
    u, v = min(max(u, 0.0), w - 1), min(max(v, 0.0), h - 1)
    u0, v0 = min(int(math.floor(u)), max(w - 2, 0)), min(int(math.floor(v)), max(h - 2, 0))
    out = np.zeros(features.shape[2])
    for dv in (0, 1):
        for du in (0, 1):
            uu, vv = min(u0 + du, w - 1), min(v0 + dv, h - 1)
            wu = (u - u0) if du else (1 - (u - u0))
            wv = (v - v0) if dv else (1 - (v - v0))
            out += wu * wv * features[vv, uu]
    return out


def _naive_coarse(tmpl, features, centre, radius, topk, temperature):
    """Window of the (2r+1)^2 cells nearest the centre inside the grid; softmax over the top-k that lie
    within 1.5 cells of the best; float64 loops."""
    h, w, _ = features.shape
    sy, sx = min(2 * radius + 1, h), min(2 * radius + 1, w)
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    ox, oy = min(max(cx - radius, 0), w - sx), min(max(cy - radius, 0), h - sy)
    cells = [(oy + i, ox + j) for i in range(sy) for j in range(sx)]
    sims = np.array([features[y, x] @ tmpl for y, x in cells])
    order = np.argsort(-sims, kind="stable")[:topk]
    by, bx = cells[order[0]]
    order = [k for k in order if (cells[k][0] - by) ** 2 + (cells[k][1] - bx) ** 2 <= 1.5 ** 2]  # next to the best
    wts = np.exp((sims[order] - sims[order].max()) / temperature)
    wts /= wts.sum()
    pos = sum(wt * np.array([cells[k][1], cells[k][0]], float) for wt, k in zip(wts, order))
    return pos, sims[order[0]]


@pytest.mark.parametrize("contiguous", [True, False])
def test_sample_features_matches_naive(device, contiguous):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(5, 7, 3))
    pos = np.array([[0, 0], [6, 4], [2.25, 1.5], [-3, 2], [9, 9], [5.99, 3.01]])
    t = torch.tensor(feats, dtype=torch.float64, device=device)
    if not contiguous:
        t = t.transpose(0, 1).contiguous().transpose(0, 1)
    got = sample_features(t, torch.tensor(pos, device=device)).cpu().numpy()
    for p, g in zip(pos, got):
        np.testing.assert_allclose(g, _naive_sample(feats, *p), atol=1e-12)


@pytest.mark.parametrize("radius,topk", [(2, 3), (1, 1), (3, 100), (9, 4)])  # 100: k above the candidates
def test_coarse_matches_naive_loop(device, radius, topk):
    rng = np.random.default_rng(radius)
    feats = rng.normal(size=(6, 9, 5))
    feats /= np.linalg.norm(feats, axis=-1, keepdims=True)
    n = 23
    tmpl = rng.normal(size=(n, 5))
    tmpl /= np.linalg.norm(tmpl, axis=-1, keepdims=True)
    centres = rng.uniform([-2, -2], [10, 7], size=(n, 2))  # some outside the grid: windows shift inwards
    cfg = MatchConfig(radius=radius, topk=topk, temperature=0.1, refine_scale=1)
    pos, score = local_match(torch.tensor(tmpl, device=device), torch.tensor(feats, device=device),
                             torch.tensor(centres, device=device), cfg)
    for i in range(n):
        want, best = _naive_coarse(tmpl[i], feats, centres[i], radius, topk, 0.1)
        np.testing.assert_allclose(pos[i].cpu().numpy(), want, atol=1e-9)
        assert score[i].item() == pytest.approx(best, abs=1e-12)


def test_chunks_give_the_same_answer(monkeypatch):
    rng = np.random.default_rng(1)
    feats = F.normalize(torch.tensor(rng.normal(size=(12, 14, 8)), dtype=torch.float32), dim=-1)
    tmpl = F.normalize(torch.tensor(rng.normal(size=(50, 8)), dtype=torch.float32), dim=-1)
    centres = torch.tensor(rng.uniform(0, 12, size=(50, 2)), dtype=torch.float32)
    whole = local_match(tmpl, feats, centres, MatchConfig())
    monkeypatch.setattr(lm, "CHUNK_ELEMENTS", 1)  # one query per chunk
    single = local_match(tmpl, feats, centres, MatchConfig())
    torch.testing.assert_close(whole[0], single[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(whole[1], single[1], rtol=0, atol=1e-6)


# Interior peaks within 0.1 cell; within one cell of the grid's edge bicubic interpolation (which
# replicates the edge cells) pulls the peak towards the edge: 0.3 there.
@pytest.mark.parametrize("peak,tol", [((6.3, 4.6), 0.1), ((5.0, 5.0), 0.1), ((7.75, 3.25), 0.1), ((3.4, 5.7), 0.1),
                                      ((9.6, 1.5), 0.3), ((0.2, 0.4), 0.3), ((9.9, 7.8), 0.3)])
def test_refinement_finds_sub_cell_peak(device, peak, tol):
    """One-hot cell features make each cell's similarity equal to the template's entry there, so the
    template can carry any similarity map: a smooth bump centred between cells, even at the border."""
    h, w = 9, 11
    feats = torch.eye(h * w, dtype=torch.float64, device=device).view(h, w, h * w)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    bump = torch.exp(-((xx - peak[0]) ** 2 + (yy - peak[1]) ** 2) / (2 * 1.5 ** 2))
    tmpl = F.normalize(bump.reshape(1, -1), dim=1).to(device)
    centre = torch.tensor([[round(peak[0]) + 1.0, round(peak[1]) - 1.0]], dtype=torch.float64, device=device)
    fine, score = local_match(tmpl, feats, centre, MatchConfig(radius=3, refine_scale=8, refine_temperature=1e-4))
    err = (fine[0].cpu() - torch.tensor(peak, dtype=torch.float64)).norm().item()
    assert err < tol, (fine, peak)
    assert score.item() >= tmpl.max().item() - 1e-9  # the upsampled peak is at least the best cell


def test_window_larger_than_grid_and_empty_input():
    feats = F.normalize(torch.randn(2, 3, 4), dim=-1)
    tmpl = feats[1, 2:3].clone()  # the feature of cell (row 1, col 2)
    pos, score = local_match(tmpl, feats, torch.tensor([[0.0, 0.0]]), MatchConfig(radius=5, topk=1, refine_scale=1))
    assert pos.tolist() == [[2.0, 1.0]] and score.item() == pytest.approx(1.0)
    pos, score = local_match(tmpl[:0], feats, torch.zeros(0, 2), MatchConfig())
    assert pos.shape == (0, 2) and score.shape == (0,)


def test_separable_bicubic_equals_interpolate():
    from dinotools.ops.local_match import _bicubic_matrix

    x = torch.randn(3, 5, 7, dtype=torch.float64)
    ref = F.interpolate(x[:, None], size=(4 * 4 + 1, 6 * 4 + 1), mode="bicubic", align_corners=True)[:, 0]
    got = _bicubic_matrix(5, 4, "cpu", torch.float64) @ x @ _bicubic_matrix(7, 4, "cpu", torch.float64).T
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("radius,grid", [(1, (7, 9)), (2, (12, 30)), (3, (5, 40)), (6, (9, 11))])
def test_window_similarity_equals_direct_dot_products(radius, grid):
    from dinotools.ops.local_match import _window, window_similarity

    rng = np.random.default_rng(radius)
    feats = torch.tensor(rng.normal(size=grid + (6,)))
    tmpl = torch.tensor(rng.normal(size=(70, 6)))
    centres = torch.tensor(rng.uniform(-3, max(grid) + 3, size=(70, 2)))
    ox, oy, sy, sx = _window(centres, radius, *grid)
    sim = window_similarity(tmpl, feats, ox, oy, sy, sx)
    for i in range(70):
        window = feats[oy[i]:oy[i] + sy, ox[i]:ox[i] + sx].reshape(-1, 6)
        torch.testing.assert_close(sim[i], window @ tmpl[i], rtol=0, atol=1e-12)
