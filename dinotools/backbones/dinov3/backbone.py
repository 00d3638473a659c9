"""The DINOv3 model wrapped as a dinotools ``Backbone``: dtype, device, batching, preprocessing."""
from __future__ import annotations

import contextlib
import logging
from typing import Optional, Sequence, Union

import torch
from torch import nn

from dinotools.backbones.dinov3.model import DinoVisionTransformer
from dinotools.errors import ConfigError
from dinotools.ops import preprocess as pre

log = logging.getLogger(__name__)

DTYPE_NAMES = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
}


def parse_dtype(dtype) -> torch.dtype:
    """``None``/"fp32"/"bf16"/"fp16"/torch dtype -> torch dtype (None means fp32)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in DTYPE_NAMES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPE_NAMES:
        return DTYPE_NAMES[dtype.lower()]
    raise ConfigError(f"dtype must be one of fp32, bf16, fp16 (or the torch dtype), got {dtype!r}")


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), so that oneDNN's bf16
    linear layers are faster than fp32 ones rather than emulated; False when torch cannot tell."""
    try:
        caps = torch._C._cpu._get_cpu_capability()  # private, hence the guard
    except (AttributeError, RuntimeError):
        return False
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def parse_device(device) -> torch.device:
    """``None``/"auto" -> cuda when available else cpu; anything else as torch.device."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class DINOv3Backbone(nn.Module):
    """``images [B,3,H,W]`` (normalised, H, W multiples of 16) -> ``[B,h,w,D]`` float32 features.

    Features are the final-norm patch tokens of the last block (``layers=None``) or of the
    blocks selected by ``layers`` (an int n = the last n blocks, or block indices), concatenated
    along D. The matmuls run in ``dtype`` (see ``_cast_matmul_weights``; RoPE and its rotation stay
    fp32 as upstream) and the features are returned as float32 (the final LayerNorm runs in fp32),
    ready for the tracker's fp32 L2 norm.
    ``batch_size`` bounds how many images go through the model at once (None: all).
    """

    patch_size = 16

    def __init__(self, model: DinoVisionTransformer, *, variant: str, pretrain: str, mean: Sequence[float],
                 std: Sequence[float], dtype=None, device=None, layers: Optional[Union[int, Sequence[int]]] = None,
                 compile: bool = False, batch_size: Optional[int] = None, weights_path=None) -> None:
        super().__init__()
        self.variant, self.pretrain, self.weights_path = variant, pretrain, weights_path
        self.mean, self.std = tuple(mean), tuple(std)
        self.dtype = parse_dtype(dtype)
        self.device = parse_device(device)
        self.layers = layers
        self.batch_size = batch_size
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1 or None, got {batch_size}")
        try:
            n_layers = len(model.block_indices(1 if layers is None else layers))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"layers={layers!r}: {exc}") from exc
        self.embed_dim = model.embed_dim * n_layers
        self.patch_size = model.patch_size
        self.model = model.eval().requires_grad_(False).to(device=self.device)
        self._cast_matmul_weights()
        self._features = model.patch_features
        if compile:
            self._features = torch.compile(model.patch_features, dynamic=False)

    def _cast_matmul_weights(self) -> None:
        """Half precision as autocast does it, with the weights cast once: linear and conv weights in
        ``dtype`` (half the memory), norms, LayerScale, tokens and RoPE stay fp32, and so does the
        residual stream (the official model under autocast keeps it fp32 too)."""
        if self.dtype == torch.float32:
            return
        for m in self.model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.to(self.dtype)

    def _autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B,3,H,W], got {tuple(images.shape)}")
        p = self.patch_size
        if images.shape[-2] % p or images.shape[-1] % p:
            raise ValueError(f"image size {tuple(images.shape[-2:])} is not a multiple of the patch size {p}")
        x = images.to(device=self.device, dtype=torch.float32)
        step = self.batch_size or x.shape[0]
        with torch.inference_mode(), self._autocast():
            outs = [self._features(x[i:i + step], self.layers).float() for i in range(0, x.shape[0], step)]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def preprocess(self, frames, *, short_side: Optional[int] = 960, device=None) -> torch.Tensor:
        """``[B,H,W,3]``/``[H,W,3]`` uint8 RGB (numpy or torch) -> ``[B,3,H',W']`` float32, normalised
        with these weights' mean/std; short side resized to ``short_side`` and both sides rounded up to
        multiples of 16 as the notebook does (None keeps the size). Runs on ``device`` (default: the
        model's) in pure torch."""
        dev = self.device if device is None else torch.device(device)
        return pre.preprocess(frames, short_side=short_side, multiple=self.patch_size, mean=self.mean,
                              std=self.std, device=dev)

    def extra_repr(self) -> str:
        return (f"variant={self.variant}, pretrain={self.pretrain}, dtype={self.dtype}, device={self.device}, "
                f"layers={self.layers}, weights={self.weights_path}")
