"""The released DINOv3 ViT variants: architecture, checkpoint names and preprocessing constants."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from dinotools.errors import ConfigError
from dinotools.ops.preprocess import IMAGENET_MEAN, IMAGENET_STD

SAT_MEAN = (0.430, 0.411, 0.296)
SAT_STD = (0.213, 0.156, 0.143)
PRETRAINS = ("lvd1689m", "sat493m")
DOWNLOAD_BASE = "https://dl.fbaipublicfiles.com/dinov3"
SIGNUP_URL = "https://ai.meta.com/resources/models-and-libraries/dinov3-downloads/"

# Settings shared by every hub ViT (dinov3/hub/backbones.py).
COMMON = dict(
    img_size=224, patch_size=16, in_chans=3, pos_embed_rope_base=100.0, pos_embed_rope_normalize_coords="separate",
    pos_embed_rope_rescale_coords=2, pos_embed_rope_dtype="fp32", layerscale_init=1.0e-05, norm_layer="layernormbf16",
    ffn_bias=True, proj_bias=True, n_storage_tokens=4, mask_k_bias=True, untie_cls_and_patch_norms=False,
)


@dataclass(frozen=True)
class Variant:
    """One hub model: constructor kwargs and the hashes of its released checkpoints."""

    name: str  # e.g. "vitl16"
    embed_dim: int
    depth: int
    num_heads: int
    ffn_ratio: float
    ffn_layer: str
    hashes: Dict[str, str]  # pretrain -> 8-hex file hash
    qkv_bias: bool = True
    untie_global_and_local_cls_norm: bool = False

    def config(self, pretrain: str = "lvd1689m") -> dict:
        """Official ``DinoVisionTransformer`` keyword arguments for these weights."""
        # The SAT ViT-L has the untied local CLS norm (a training-only module) that LVD lacks.
        untie = self.untie_global_and_local_cls_norm or (self.name == "vitl16" and pretrain == "sat493m")
        return dict(COMMON, embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads,
                    ffn_ratio=self.ffn_ratio, ffn_layer=self.ffn_layer, qkv_bias=self.qkv_bias,
                    untie_global_and_local_cls_norm=untie)

    def check_pretrain(self, pretrain: str) -> str:
        if pretrain not in self.hashes:
            raise ConfigError(f"dinov3_{self.name} has weights {sorted(self.hashes)}, not {pretrain!r}")
        return pretrain

    def filename(self, pretrain: str = "lvd1689m") -> str:
        """Meta's file name, e.g. ``dinov3_vitl16_pretrain_lvd1689m-8aa4cbdd.pth``."""
        return f"dinov3_{self.name}_pretrain_{pretrain}-{self.hashes[self.check_pretrain(pretrain)]}.pth"

    def url(self, pretrain: str = "lvd1689m") -> str:
        return f"{DOWNLOAD_BASE}/dinov3_{self.name}/{self.filename(pretrain)}"

    def hf_repo(self, pretrain: str = "lvd1689m") -> str:
        return f"facebook/dinov3-{self.name}-pretrain-{self.check_pretrain(pretrain)}"

    def mean_std(self, pretrain: str = "lvd1689m") -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        return (SAT_MEAN, SAT_STD) if pretrain == "sat493m" else (IMAGENET_MEAN, IMAGENET_STD)

    def ffn_hidden(self) -> int:
        """Post-rounding FFN width (what a checkpoint's fc1/w1 rows count)."""
        from dinotools.backbones.dinov3.layers import swiglu_hidden

        hidden = int(self.embed_dim * self.ffn_ratio)
        if self.ffn_layer == "mlp":
            return hidden
        align = int(self.ffn_layer[len("swiglu"):] or 8)
        return swiglu_hidden(hidden, align)


VARIANTS: Dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("vits16", 384, 12, 6, 4.0, "mlp", {"lvd1689m": "08c60483"}),
        Variant("vits16plus", 384, 12, 6, 6.0, "swiglu", {"lvd1689m": "4057cbaa"}),
        Variant("vitb16", 768, 12, 12, 4.0, "mlp", {"lvd1689m": "73cec8be"}),
        Variant("vitl16", 1024, 24, 16, 4.0, "mlp", {"lvd1689m": "8aa4cbdd", "sat493m": "eadcf0ff"}),
        Variant("vitl16plus", 1024, 24, 16, 6.0, "swiglu", {"lvd1689m": "46503df0"}),
        Variant("vith16plus", 1280, 32, 20, 6.0, "swiglu", {"lvd1689m": "7c1da9a5"}),
        Variant("vit7b16", 4096, 40, 32, 3.0, "swiglu64", {"lvd1689m": "a955f4ea", "sat493m": "a6675841"},
                qkv_bias=False, untie_global_and_local_cls_norm=True),
    )
}


def get_variant(name: str) -> Variant:
    """``vitl16`` or ``dinov3_vitl16`` -> its ``Variant``; unknown names list the known ones."""
    key = name[len("dinov3_"):] if name.startswith("dinov3_") else name
    if key not in VARIANTS:
        raise ConfigError(f"unknown DINOv3 variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[key]


def pretrain_from_filename(name: str) -> Optional[str]:
    """The pretrain a file name implies (``sat493m``/``lvd1689m`` or a known hash), else None."""
    lowered = name.lower()
    for pretrain in PRETRAINS:
        if pretrain in lowered:
            return pretrain
    for variant in VARIANTS.values():
        for pretrain, digest in variant.hashes.items():
            if f"-{digest}" in lowered:
                return pretrain
    return None


def identify(embed_dim: int, depth: int, ffn_hidden: int, gated: bool, qkv_bias: bool) -> Optional[str]:
    """The variant whose architecture has these checkpoint shapes, or None."""
    for v in VARIANTS.values():
        if (v.embed_dim, v.depth, v.ffn_hidden(), v.ffn_layer != "mlp", v.qkv_bias) == (
                embed_dim, depth, ffn_hidden, gated, qkv_bias):
            return v.name
    return None
