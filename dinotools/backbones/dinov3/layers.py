"""DINOv3 ViT building blocks with the official parameter names (strict state-dict loading)."""
from __future__ import annotations

from functools import partial
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from dinotools.backbones.dinov3.rope import apply_rope


class PatchEmbed(nn.Module):
    """``[B,3,H,W]`` -> ``[B,h,w,D]`` with ``h = H // patch``: one stride-``patch`` convolution."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # [B,h,w,D]; a view, flattened by the caller


class LinearKMaskedBias(nn.Linear):
    """qkv projection whose bias is multiplied by the ``bias_mask`` buffer (1 for q/v, 0 for k).

    The released checkpoints carry a k-bias that training never used; the mask keeps it out.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if out_features % 3:
            raise ValueError(f"qkv out_features must be a multiple of 3, got {out_features}")
        if self.bias is not None:
            self.register_buffer("bias_mask", torch.empty_like(self.bias))
            if self.bias_mask.device.type != "meta":
                self.reset_mask()

    def reset_mask(self) -> None:
        d = self.out_features // 3
        self.bias_mask.fill_(1.0)
        self.bias_mask[d : 2 * d] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.bias_mask.to(self.bias.dtype)
        return F.linear(x, self.weight, bias)


class SelfAttention(nn.Module):
    """Multi-head self-attention with RoPE on the patch tokens, through SDPA."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_bias: bool = True,
                 mask_k_bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        linear = LinearKMaskedBias if mask_k_bias else nn.Linear
        self.qkv = linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor, rope: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """``x [B,N,D]`` -> ``[B,N,D]``; rope = ``(sin, cos)`` each ``[h*w, hd]`` or None."""
        b, n, d = x.shape
        # qkv rows are [q | k | v], each head-major: reshape then move heads before tokens.
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x [B,heads,N,hd]
        if rope is not None:
            q, k = apply_rope(q, k, rope)
        x = F.scaled_dot_product_attention(q, k, v)  # [B,heads,N,hd]
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class LayerScale(nn.Module):
    """Per-channel residual scale ``x * gamma``; ``gamma [D]`` is loaded from the checkpoint."""

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.init_values = init_values
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """``fc2(GELU(fc1 x))`` with the exact (erf) GELU, hidden size ``hidden_features``."""

    def __init__(self, in_features: int, hidden_features: int, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.fc2 = nn.Linear(hidden_features, in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def swiglu_hidden(hidden_features: int, align_to: int) -> int:
    """Official SwiGLU width: ``int(hidden * 2/3)`` rounded up to a multiple of ``align_to``."""
    d = int(hidden_features * 2 / 3)
    return d + (-d % align_to)


class SwiGLUFFN(nn.Module):
    """``w3(silu(w1 x) * w2 x)``: w1 is the gate, w2 the up projection."""

    def __init__(self, in_features: int, hidden_features: int, bias: bool = True, align_to: int = 8) -> None:
        super().__init__()
        hidden = swiglu_hidden(hidden_features, align_to)
        self.w1 = nn.Linear(in_features, hidden, bias=bias)
        self.w2 = nn.Linear(in_features, hidden, bias=bias)
        self.w3 = nn.Linear(hidden, in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w3(F.silu(self.w1(x)) * self.w2(x))


FFN_LAYERS = {
    "mlp": Mlp,
    "swiglu": SwiGLUFFN,
    "swiglu32": partial(SwiGLUFFN, align_to=32),
    "swiglu64": partial(SwiGLUFFN, align_to=64),
    "swiglu128": partial(SwiGLUFFN, align_to=128),
}

# "layernormbf16" is what every released model uses; despite the name it is a plain fp32-capable
# LayerNorm with eps 1e-5 (the "layernorm" option, eps 1e-6, is used by no released model).
NORM_LAYERS = {
    "layernorm": partial(nn.LayerNorm, eps=1e-6),
    "layernormbf16": partial(nn.LayerNorm, eps=1e-5),
}


class SelfAttentionBlock(nn.Module):
    """Pre-norm block: ``x + ls1(attn(norm1 x))`` then ``x + ls2(ffn(norm2 x))``; ``[B,N,D]``."""

    def __init__(self, dim: int, num_heads: int, ffn_ratio: float = 4.0, qkv_bias: bool = True,
                 proj_bias: bool = True, ffn_bias: bool = True, norm_layer=NORM_LAYERS["layernormbf16"],
                 ffn_layer=Mlp, init_values: Optional[float] = None, mask_k_bias: bool = False) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = SelfAttention(dim, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias, mask_k_bias=mask_k_bias)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = ffn_layer(dim, int(dim * ffn_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope=rope))
        return x + self.ls2(self.mlp(self.norm2(x)))
