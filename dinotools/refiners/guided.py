"""``guided``: edge-aware upsampling of the patch-grid probabilities with a fast guided filter on the frame."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Frame, check_raw, frame_size, frame_tensor, positive, stretch


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of ``x [C,h,w]`` over the ``(2r+1)^2`` window around each pixel, clipped at the borders
    (each pixel divided by the number of pixels its window holds, as He et al.'s ``boxfilter / N``).

    Two running sums (cumulative sums differenced), so the cost does not grow with the radius.
    """
    for dim in (1, 2):
        n = x.shape[dim]
        c = F.pad(x.cumsum(dim), (1, 0) if dim == 2 else (0, 0, 1, 0))  # [.., n+1] along dim, c[0] = 0
        i = torch.arange(n, device=x.device)
        hi, lo = (i + radius + 1).clamp(max=n), (i - radius).clamp(min=0)
        count = (hi - lo).to(x.dtype).view((-1, 1) if dim == 1 else (1, -1))
        x = (c.index_select(dim, hi) - c.index_select(dim, lo)) / count
    return x


def _solve3(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``s [6,h,w]`` (symmetric 3x3: xx, xy, xz, yy, yz, zz), ``v [M,3,h,w]`` -> ``s^-1 v`` ``[M,3,h,w]``.

    Cofactors, vectorised over pixels: a batched ``torch.linalg.solve`` on thousands of 3x3
    systems costs more in dispatch than the arithmetic.
    """
    a, b, c, d, e, f = s
    i00, i01, i02 = d * f - e * e, c * e - b * f, b * e - c * d
    i11, i12, i22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * i00 + b * i01 + c * i02
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    return torch.stack([i00 * x + i01 * y + i02 * z, i01 * x + i11 * y + i12 * z,
                        i02 * x + i12 * y + i22 * z], dim=1) / det


class GuidedRefiner:
    """Fast guided filter (He & Sun 2015) of the stretched probabilities, guided by the colour frame.

    The filter fits, in every ``(2r+1)^2`` window of a low-resolution copy of the frame, each
    channel's probability as an affine function of the RGB colour (``p ~ a . I + b``, ridge
    ``eps``); the window-averaged ``a, b`` are upsampled bilinearly and applied to the
    full-resolution frame, so boundaries move to the colour edges within a window of the grid's.

    Args:
        radius: window radius in low-resolution pixels.
        eps: ridge regularisation (colour variance units, the frame in [0, 1]); larger is smoother,
            closer to ``bilinear``.
        scale: the low resolution as a multiple of the patch grid (1: the grid itself; 2: twice
            as fine, the probabilities upsampled bilinearly to it first).
    """

    name = "guided"
    needs_frame = True

    def __init__(self, radius: int = 2, eps: float = 1e-2, scale: float = 1.0, mix: float = 1.0, half: int = 0) -> None:
        self.mix = float(mix); self.half = half
        if not (isinstance(radius, int) and radius >= 1):
            raise ConfigError(f"refiner parameter radius must be an int >= 1, got {radius!r}")
        self.radius, self.eps, self.scale = radius, positive(eps, "eps"), positive(scale, "scale")

    def __call__(self, frame: Frame, raw: torch.Tensor) -> torch.Tensor:
        """``frame [H,W,3]`` uint8 RGB, ``raw [h,w,M]`` -> ``scores [M,H,W]`` float on ``raw``'s device."""
        raw = check_raw(raw)
        (h, w, m), (H, W) = raw.shape, frame_size(frame)
        image = frame_tensor(frame, raw.device)  # [3,H,W] in [0,1]
        low = (max(1, min(H, round(h * self.scale))), max(1, min(W, round(w * self.scale))))
        p = stretch(raw.permute(2, 0, 1).float())  # [M,h,w]: the stretch commutes with the filter
        if low != (h, w):
            p = F.interpolate(p[None], size=low, mode="bilinear")[0]
        guide = F.interpolate(image[None], size=low, mode="area")[0]  # [3,hl,wl]
        a, b = self._coefficients(guide, p)  # [M,3,hl,wl], [M,hl,wl]
        if self.mix != 1.0:
            a, b = a * self.mix, b * self.mix + p * (1 - self.mix)
        if self.half:
            hh, ww = (H + 1) // 2, (W + 1) // 2
            img2 = F.interpolate(image[None], size=(hh, ww), mode="area")[0]
            a = F.interpolate(a.reshape(1, m * 3, *low), size=(hh, ww), mode="bilinear")[0].view(m, 3, hh, ww)
            b = F.interpolate(b[None], size=(hh, ww), mode="bilinear")[0]
            q = torch.einsum("mchw,chw->mhw", a, img2).add_(b)
            return F.interpolate(q[None], size=(H, W), mode="bilinear")[0]
        a = F.interpolate(a.reshape(1, m * 3, *low), size=(H, W), mode="bilinear")[0].view(m, 3, H, W)
        b = F.interpolate(b[None], size=(H, W), mode="bilinear")[0]
        return torch.einsum("mchw,chw->mhw", a, image).add_(b)

    def _coefficients(self, guide: torch.Tensor, p: torch.Tensor):
        """Window-averaged ``a [M,3,h,w]`` and ``b [M,h,w]`` of the affine fits ``p ~ a . guide + b``."""
        m, r = p.shape[0], self.radius
        g = guide
        second = torch.stack([g[0] * g[0], g[0] * g[1], g[0] * g[2], g[1] * g[1], g[1] * g[2], g[2] * g[2]])
        cross = (p[:, None] * g[None]).flatten(0, 1)  # [M*3,h,w]
        means = box_mean(torch.cat([g, second, p, cross]), r)
        mg, m2, mp, mgp = means[:3], means[3:9], means[9:9 + m], means[9 + m:].view(m, 3, *g.shape[1:])
        outer = torch.stack([mg[0] * mg[0], mg[0] * mg[1], mg[0] * mg[2], mg[1] * mg[1], mg[1] * mg[2],
                             mg[2] * mg[2]])
        sigma = m2 - outer
        sigma[[0, 3, 5]] += self.eps  # the diagonal
        cov = mgp - mp[:, None] * mg[None]  # [M,3,h,w]
        a = _solve3(sigma, cov)
        b = mp - (a * mg[None]).sum(1)
        ab = box_mean(torch.cat([a.flatten(0, 1), b]), r)
        return ab[: 3 * m].view(m, 3, *g.shape[1:]), ab[3 * m:]
