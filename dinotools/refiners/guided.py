"""``guided``: edge-aware upsampling of the patch-grid probabilities with a fast guided filter on the frame."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from dinotools import _ext
from dinotools.errors import ConfigError
from dinotools.interfaces.params import Range, declare_params, range_errors
from dinotools.refiners._filters import bilinear_source, box_mean, downsample, solve3
from dinotools.refiners.base import (
    Frame,
    check_raw,
    first_argmax,
    frame_size,
    frame_tensor,
    stretch,
    uint8_frame,
)

# The compiled CPU kernel of the labels path (dinotools._C, csrc/cpu/guided_labels.cpp), when built.
_HAS_OP = _ext.HAS_EXT and hasattr(torch.ops.dinotools, "guided_labels")
MARGIN = 1e-5  # relative: a low-resolution decision must beat float rounding of the full-resolution scores


def low_size(grid: Tuple[int, int], frame: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """``(hl, wl)``: the low resolution the filter works at, for a patch grid ``(h, w)`` and a frame ``(H, W)``."""
    (h, w), (H, W) = grid, frame
    return max(1, min(H, round(h * scale))), max(1, min(W, round(w * scale)))


def radius_limit(values, frame: Tuple[int, int], grid: Tuple[int, int]) -> Tuple[int, str]:
    """The largest radius whose window, ``2r+1`` low-resolution pixels, fits in the low-resolution short side
    (1 always: the smallest window, on a grid too small for any)."""
    short = min(low_size(grid, frame, float(values.get("scale", 2.0))))
    return max(1, (short - 1) // 2), (f"a window of 2r+1 pixels fits in the {short}-pixel short side of the "
                              f"low-resolution frame; a wider one spans the whole frame and erases objects")


@declare_params(
    "refiner guided",
    radius=Range(1, integer=True, frame=radius_limit, doc="window radius in low-resolution pixels (the patch grid "
                 "x scale); at most (the low-resolution short side - 1) / 2: a wider window spans the whole "
                 "frame, the fit is no longer local and objects vanish"),
    eps=Range(0, 1, lo_open=True, doc="ridge regularisation in colour-variance units (the frame in [0, 1]); 0 "
              "divides by zero in flat windows, and above 1 (4x the largest colour variance, 0.25) the "
              "colour's weight is shrunk 5-fold or more: use bilinear"),
    scale=Range(1, 16, doc="low resolution as a multiple of the patch grid; below 1 it is coarser than the "
                "predictions, above 16 (the patch size) finer than the frame fed to the backbone"),
)
class GuidedRefiner:
    """Fast guided filter (He & Sun 2015) of the stretched probabilities, guided by the colour frame.

    In every ``(2r+1)^2`` window of a low-resolution copy of the frame, each channel's
    probability is fitted as an affine function of the RGB colour (``p ~ a . I + b``, ridge
    ``eps``); the window-averaged ``a, b`` are upsampled bilinearly and applied to the
    full-resolution frame, so a boundary the patch grid puts inside a window moves onto the colour
    edge there. Batched over the M channels (one 3x3 solve per pixel serves them all); runs on
    ``raw``'s device. Written in torch (box filters, a closed-form 3x3 solve): OpenCV's guided
    filter is in opencv-contrib, which the core cannot depend on beside opencv-python-headless,
    and it filters at one resolution and is CPU-only, where this is the "fast" variant that
    upsamples and runs batched on the GPU path.

    Args:
        radius: window radius in low-resolution pixels.
        eps: ridge regularisation (colour variance units, the frame in [0, 1]); larger is smoother,
            closer to ``bilinear``.
        scale: the low resolution as a multiple of the patch grid (2: twice as fine; the
            probabilities are upsampled bilinearly to it first).
    Defaults tuned on davis2016-mini with the oracle protocol (``benchmarks/compare_refiners.py``).
    """

    name = "guided"
    needs_frame = True

    def __init__(self, radius: int = 1, eps: float = 1e-3, scale: float = 2.0) -> None:
        self.radius, self.eps, self.scale = radius, float(eps), float(scale)  # ranges: declare_params

    def __call__(self, frame: Frame, raw: torch.Tensor) -> torch.Tensor:
        """``frame [H,W,3]`` uint8 RGB, ``raw [h,w,M]`` -> ``scores [M,H,W]`` float on ``raw``'s device."""
        image, _, a, b = self._fit(frame, raw)
        m, size = b.shape[0], image.shape[1:]
        coef = F.interpolate(torch.cat([a.flatten(0, 1), b])[None], size=size, mode="bilinear")[0]  # [4M,H,W]
        q = coef[3 * m:]  # b, then + a_c * I_c for each colour
        for c in range(3):
            q.addcmul_(coef[c:3 * m:3], image[c])
        return q

    def channels(self, frame: Frame, raw: torch.Tensor) -> torch.Tensor:
        """``[H,W]`` integer tensor (CPU): the first argmax of ``self(frame, raw)``, computed only where in doubt.

        A low-resolution cell is decided when one channel beats every other for any colour in
        [0, 1]^3 (``a, b`` are affine in the colour: the worst colour is a cube corner) by more
        than float rounding; a pixel whose four bilinear cells are decided for the same channel
        takes it (the upsampling is a convex combination, which keeps the winner). Only the other
        pixels, a band along the boundaries, are computed at full resolution. The result equals
        the scores' argmax except where two channels tie to within float rounding (relative 1e-5).
        """
        if raw.device.type == "cpu" and _HAS_OP:
            return self._channels_cpu(frame, raw)
        image, guide, a, b = self._fit(frame, raw)
        (m, hl, wl), (H, W) = b.shape, image.shape[1:]
        y0, y1, ly = bilinear_source(hl, H, raw.device)
        x0, x1, lx = bilinear_source(wl, W, raw.device)
        quad = _decided_quads(a, b, guide)  # [hl,wl]: channel, or -1
        labels = quad.index_select(0, y0).index_select(1, x0)  # [H,W]: decided cells' channel, else -1
        ys, xs = _pixels_of(quad < 0, y0, x0)  # the undecided pixels
        if ys.numel() > labels.numel() // 2:  # mostly in doubt: the dense path is cheaper
            return first_argmax(self(frame, raw)).cpu()
        if ys.numel():
            coef = torch.cat([a.flatten(0, 1), b]).view(4 * m, -1)  # [4M,hl*wl]
            r0, r1, c0, c1 = y0[ys] * wl, y1[ys] * wl, x0[xs], x1[xs]
            tx, ty = lx[xs], ly[ys]
            top = torch.lerp(coef.index_select(1, r0 + c0), coef.index_select(1, r0 + c1), tx)  # [4M,K]
            bottom = torch.lerp(coef.index_select(1, r1 + c0), coef.index_select(1, r1 + c1), tx)
            v = torch.lerp(top, bottom, ty)
            flat = ys * W + xs
            colour = image.view(3, -1).index_select(1, flat)  # [3,K]
            q = v[3 * m:] + (v[: 3 * m].view(m, 3, -1) * colour[None]).sum(1)  # [M,K]
            labels.view(-1).index_copy_(0, flat, first_argmax(q[:, :, None])[:, 0].to(labels.dtype))
        return labels.cpu()

    def _channels_cpu(self, frame: Frame, raw: torch.Tensor) -> torch.Tensor:
        """``channels`` by the compiled CPU kernel (csrc/cpu/guided_labels.cpp): the same fit and
        argmax in one pass over the frame, without the full-resolution scores or float image."""
        raw = check_raw(raw)
        H, W = frame_size(frame)
        pixels = uint8_frame(frame).cpu().contiguous()  # [H,W,3] uint8, validated
        p, low = self._low_probs(raw, (H, W))
        guide = downsample(pixels.numpy(), pixels, low)  # OpenCV's area average, as _fit on the CPU
        return torch.ops.dinotools.guided_labels(pixels, guide.contiguous(), p.contiguous(), self.radius, self.eps)

    def _low_probs(self, raw: torch.Tensor, size):
        """``(p [M,hl,wl], (hl, wl))``: the stretched probabilities upsampled to the low resolution."""
        (h, w, _), (H, W) = raw.shape, size
        # Commands check this before tracking (runs.limits); a Python caller learns it here, not from empty masks.
        errors = range_errors("refiner guided", self.PARAMS, {"radius": self.radius}, ((H, W), (h, w)),
                              {"scale": self.scale})
        if errors:
            raise ConfigError(errors["radius"])
        low = low_size((h, w), (H, W), self.scale)
        # Stretching first is the same as stretching the output: the filter is affine in p and
        # keeps constants (a constant channel gives a = 0, b = the constant).
        p = stretch(raw.permute(2, 0, 1).float())  # [M,h,w]
        if low != (h, w):
            p = F.interpolate(p[None], size=low, mode="bilinear")[0]
        return p, low

    def _fit(self, frame: Frame, raw: torch.Tensor):
        """``(image [3,H,W], guide [3,hl,wl], a [M,3,hl,wl], b [M,hl,wl])``: the frame in [0, 1], its
        low-resolution copy, and the window-averaged affine coefficients there."""
        raw = check_raw(raw)
        image = frame_tensor(frame, raw.device)  # [3,H,W] in [0,1]
        p, low = self._low_probs(raw, image.shape[1:])
        guide = downsample(frame, image, low)  # [3,hl,wl]
        return (image, guide, *self._coefficients(guide, p))

    def _coefficients(self, guide: torch.Tensor, p: torch.Tensor):
        """Window-averaged ``a [M,3,h,w]`` and ``b [M,h,w]`` of the affine fits ``p ~ a . guide + b``."""
        m, r, g = p.shape[0], self.radius, guide
        second = torch.stack([g[0] * g[0], g[0] * g[1], g[0] * g[2], g[1] * g[1], g[1] * g[2], g[2] * g[2]])
        cross = (p[:, None] * g[None]).flatten(0, 1)  # [M*3,h,w]
        means = box_mean(torch.cat([g, second, p, cross]), r)
        mg, m2, mp, mgp = means[:3], means[3:9], means[9:9 + m], means[9 + m:].view(m, 3, *g.shape[1:])
        outer = torch.stack([mg[0] * mg[0], mg[0] * mg[1], mg[0] * mg[2], mg[1] * mg[1], mg[1] * mg[2],
                             mg[2] * mg[2]])
        sigma = m2 - outer  # [6,h,w]: the window's colour covariance (upper triangle)
        sigma[[0, 3, 5]] += self.eps
        cov = mgp - mp[:, None] * mg[None]  # [M,3,h,w]: colour-probability covariance
        a = solve3(sigma, cov)
        b = mp - (a * mg[None]).sum(1)
        ab = box_mean(torch.cat([a.flatten(0, 1), b]), r)
        return ab[: 3 * m].view(m, 3, *g.shape[1:]), ab[3 * m:]


def _decided_quads(a: torch.Tensor, b: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """``[h,w]`` small int: for the 2x2 cells starting at each cell, the channel that wins on all four
    for any colour by more than float rounding, else -1 (``a [M,3,h,w]``, ``b [M,h,w]``)."""
    m, h, w = b.shape
    win = first_argmax(b + (a * guide[None]).sum(1))  # [h,w]: the winner at the cell's own colour
    lead_b = b.gather(0, win[None])[0] - b  # [M,h,w]
    lead_a = a.gather(0, win[None, None].expand(1, 3, h, w))[0] - a  # [M,3,h,w]
    worst = lead_b + lead_a.clamp_(max=0).sum(1)  # the least lead over the colour cube's corners
    worst.masked_fill_(torch.arange(m, device=b.device)[:, None, None] == win, float("inf"))
    tol = MARGIN * (1 + float(a.abs().sum(1).amax()) + float(b.abs().amax()))
    cell = torch.where(worst.amin(0) > tol, win, -1).to(torch.int16 if m < 2**15 else torch.int32)
    nr, nc = bilinear_source(h, h, b.device)[1], bilinear_source(w, w, b.device)[1]  # i -> min(i + 1, n - 1)
    down, right = cell.index_select(0, nr), cell.index_select(1, nc)
    same = (cell == down) & (cell == right) & (cell == down.index_select(1, nc))
    return torch.where(same, cell, -1)


def _pixels_of(cells: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor):
    """``(ys, xs)`` of the full-resolution pixels whose ``(y0, x0)`` is a True cell of ``cells [h,w]``.

    ``y0``/``x0`` are non-decreasing, so a cell's pixels form a rectangle: enumerated per cell
    (cheaper than a full-resolution ``nonzero``).
    """
    ci, cj = torch.nonzero(cells, as_tuple=True)
    if not ci.numel():
        return ci, cj
    h, w = cells.shape
    cut = lambda index, n: torch.searchsorted(index, torch.arange(n + 1, device=index.device))  # noqa: E731
    rows, cols = cut(y0, h), cut(x0, w)  # cell i covers rows[i]:rows[i+1]
    ny, nx = rows[ci + 1] - rows[ci], cols[cj + 1] - cols[cj]
    count = ny * nx
    cell = torch.repeat_interleave(torch.arange(ci.numel(), device=ci.device), count)
    offset = torch.arange(cell.numel(), device=ci.device) - (torch.cumsum(count, 0) - count)[cell]
    return rows[ci][cell] + offset // nx[cell], cols[cj][cell] + offset % nx[cell]

