"""Axial rotary position embedding of DINOv3 (rotate-half, patch centres in [-1, 1])."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class RopePositionEmbedding(nn.Module):
    """Gives ``(sin, cos)``, each ``[h*w, head_dim]``, for an ``h x w`` patch grid.

    ``periods [head_dim/4]`` is a persistent buffer: the released checkpoints store it rounded
    through bfloat16, so it must be loaded from the checkpoint (not recomputed) for exact parity.
    The training-only coordinate augmentations (shift, jitter, rescale) are accepted and ignored:
    they are gated on ``self.training`` upstream and this implementation is inference only.
    """

    def __init__(
        self,
        embed_dim: int,
        *,
        num_heads: int,
        base: Optional[float] = 100.0,
        min_period: Optional[float] = None,
        max_period: Optional[float] = None,
        normalize_coords: str = "separate",
        dtype: torch.dtype = torch.float32,
        device=None,
    ) -> None:
        super().__init__()
        if embed_dim % (4 * num_heads):
            raise ValueError(f"embed_dim {embed_dim} must be divisible by 4 * num_heads ({4 * num_heads})")
        both = min_period is not None and max_period is not None
        if (base is None) == (not both):
            raise ValueError("RoPE needs either `base` or both `min_period` and `max_period`")
        if normalize_coords not in ("min", "max", "separate"):
            raise ValueError(f"normalize_coords must be 'min', 'max' or 'separate', got {normalize_coords!r}")
        self.head_dim = embed_dim // num_heads
        self.base, self.min_period, self.max_period = base, min_period, max_period
        self.normalize_coords = normalize_coords
        self.dtype = dtype  # the rotation dtype; periods.dtype may change with .to()
        self.register_buffer("periods", torch.empty(self.head_dim // 4, device=device, dtype=dtype))
        if self.periods.device.type != "meta":
            self.reset_parameters()
        self._cache: dict = {}

    def default_periods(self, device=None) -> torch.Tensor:
        """``[head_dim/4]`` periods as the official initialisation computes them."""
        n = self.head_dim // 4
        if self.base is not None:
            exps = 2 * torch.arange(n, device=device, dtype=self.dtype) / (self.head_dim // 2)
            return self.base ** exps
        exps = torch.linspace(0, 1, n, device=device, dtype=self.dtype)
        return self.min_period * (self.max_period / self.min_period) ** exps

    def reset_parameters(self) -> None:
        self.periods.data = self.default_periods(self.periods.device)
        self._cache = {}

    def _load_from_state_dict(self, *args, **kwargs):
        self._cache = {}  # new periods: cached sin/cos are stale
        super()._load_from_state_dict(*args, **kwargs)

    def _coords(self, h: int, w: int, device) -> torch.Tensor:
        """``[h*w, 2]`` (y, x) patch centres in (-1, 1), row-major, computed as upstream does."""
        dd = {"device": device, "dtype": self.dtype}
        if self.normalize_coords == "max":
            denom_h = denom_w = max(h, w)
        elif self.normalize_coords == "min":
            denom_h = denom_w = min(h, w)
        else:
            denom_h, denom_w = h, w
        coords_h = torch.arange(0.5, h, **dd) / denom_h  # [h]
        coords_w = torch.arange(0.5, w, **dd) / denom_w  # [w]
        coords = torch.stack(torch.meshgrid(coords_h, coords_w, indexing="ij"), dim=-1).flatten(0, 1)
        return 2.0 * coords - 1.0  # [h*w, 2]

    def forward(self, *, H: int, W: int) -> Tuple[torch.Tensor, torch.Tensor]:
        periods = self.periods.to(self.dtype)
        if torch.compiler.is_compiling():
            return self._sincos(H, W, periods)  # traced once per shape by the compiler
        # Every block and every frame of a video use the same grid: compute it once. Inference
        # tensors cannot be reused under autograd, hence the mode in the key.
        key = (H, W, periods.device, periods.data_ptr(), periods._version, torch.is_inference_mode_enabled())
        if key not in self._cache:
            self._cache = {key: self._sincos(H, W, periods)}
        return self._cache[key]

    def _sincos(self, h: int, w: int, periods: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        coords = self._coords(h, w, periods.device)  # [HW, 2]
        angles = 2 * math.pi * coords[:, :, None] / periods[None, None, :]  # [HW, 2, hd/4]
        angles = angles.flatten(1, 2).tile(2)  # [HW, hd]: [y | x | y | x] frequency blocks
        return torch.sin(angles), torch.cos(angles)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[..., hd]`` -> ``[-x2, x1]`` with the halves split at hd/2 (not interleaved)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(q: torch.Tensor, k: torch.Tensor, rope: Tuple[torch.Tensor, torch.Tensor]):
    """Rotate the trailing ``h*w`` tokens of ``q, k [B, heads, N, hd]``; prefix tokens unchanged.

    The rotation runs in the rope dtype (fp32) and the result is cast back, as upstream does:
    under bf16 this keeps the position encoding exact.
    """
    sin, cos = rope  # [HW, hd]
    prefix = q.shape[-2] - sin.shape[-2]
    if prefix < 0:
        raise ValueError(f"RoPE grid has {sin.shape[-2]} positions but only {q.shape[-2]} tokens")
    out = []
    for t in (q, k):
        tr = t.to(sin.dtype)
        body = tr[:, :, prefix:]  # [B, heads, HW, hd]
        body = body * cos + rotate_half(body) * sin
        out.append(torch.cat((tr[:, :, :prefix], body), dim=-2).to(t.dtype))
    return out[0], out[1]
