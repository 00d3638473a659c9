"""Native DINOv3 ``DinoVisionTransformer``: the official constructor, state dict and feature API."""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from dinotools.backbones.dinov3.layers import (
    FFN_LAYERS,
    NORM_LAYERS,
    LayerScale,
    LinearKMaskedBias,
    PatchEmbed,
    SelfAttentionBlock,
)
from dinotools.backbones.dinov3.rope import DTYPES, RopePositionEmbedding

log = logging.getLogger(__name__)


class DinoVisionTransformer(nn.Module):
    """DINOv3 ViT, inference only; a drop-in for ``torch.hub.load("facebookresearch/dinov3", ...)``.

    Accepts the official architecture keyword arguments (training-only ones such as
    ``drop_path_rate`` or ``pos_embed_rope_jitter_coords`` are accepted and have no effect at eval)
    and loads official state dicts strictly. Token layout: ``[CLS, n_storage_tokens registers,
    h*w patches (row-major)]``. ``device="meta"`` builds without allocating (e.g. the 7B model
    before ``load_state_dict(..., assign=True)``).
    """

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        pos_embed_rope_base: Optional[float] = 100.0,
        pos_embed_rope_min_period: Optional[float] = None,
        pos_embed_rope_max_period: Optional[float] = None,
        pos_embed_rope_normalize_coords: str = "separate",
        pos_embed_rope_shift_coords: Optional[float] = None,
        pos_embed_rope_jitter_coords: Optional[float] = None,
        pos_embed_rope_rescale_coords: Optional[float] = None,
        pos_embed_rope_dtype: str = "bf16",
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        ffn_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        layerscale_init: Optional[float] = None,
        norm_layer: str = "layernorm",
        ffn_layer: str = "mlp",
        ffn_bias: bool = True,
        proj_bias: bool = True,
        n_storage_tokens: int = 0,
        mask_k_bias: bool = False,
        untie_cls_and_patch_norms: bool = False,
        untie_global_and_local_cls_norm: bool = False,
        device=None,
        **ignored_kwargs,
    ) -> None:
        super().__init__()
        if ignored_kwargs:
            log.warning("DinoVisionTransformer ignores keyword arguments %s", sorted(ignored_kwargs))
        if norm_layer not in NORM_LAYERS:
            raise ValueError(f"norm_layer must be one of {sorted(NORM_LAYERS)}, got {norm_layer!r}")
        if ffn_layer not in FFN_LAYERS:
            raise ValueError(f"ffn_layer must be one of {sorted(FFN_LAYERS)}, got {ffn_layer!r}")
        norm_cls = NORM_LAYERS[norm_layer]
        self.num_features = self.embed_dim = embed_dim
        self.n_blocks = depth
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.n_storage_tokens = n_storage_tokens
        self.untie_cls_and_patch_norms = untie_cls_and_patch_norms
        self.untie_global_and_local_cls_norm = untie_global_and_local_cls_norm
        target = torch.device(device) if device is not None else torch.empty(0).device
        # Build on meta (no default init that init_weights would redo), then allocate once.
        with torch.device("meta"):
            self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
            self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
            if n_storage_tokens > 0:
                self.storage_tokens = nn.Parameter(torch.empty(1, n_storage_tokens, embed_dim))
            self.rope_embed = RopePositionEmbedding(
                embed_dim, num_heads=num_heads, base=pos_embed_rope_base, min_period=pos_embed_rope_min_period,
                max_period=pos_embed_rope_max_period, normalize_coords=pos_embed_rope_normalize_coords,
                dtype=DTYPES[pos_embed_rope_dtype],
            )
            self.blocks = nn.ModuleList(
                SelfAttentionBlock(
                    embed_dim, num_heads, ffn_ratio=ffn_ratio, qkv_bias=qkv_bias, proj_bias=proj_bias,
                    ffn_bias=ffn_bias, norm_layer=norm_cls, ffn_layer=FFN_LAYERS[ffn_layer],
                    init_values=layerscale_init, mask_k_bias=mask_k_bias,
                )
                for _ in range(depth)
            )
            self.norm = norm_cls(embed_dim)
            # Kept for strict loading; cls_norm exists only when untied, local_cls_norm is training-only.
            self.cls_norm = norm_cls(embed_dim) if untie_cls_and_patch_norms else None
            self.local_cls_norm = norm_cls(embed_dim) if untie_global_and_local_cls_norm else None
            self.head = nn.Identity()
            self.mask_token = nn.Parameter(torch.empty(1, embed_dim))
        if target.type != "meta":
            self.to_empty(device=target)
            self.init_weights()

    # weights ----------------------------------------------------------------------------------
    def init_weights(self) -> None:
        """Random initialisation (for tests and benchmarks; real use loads a checkpoint)."""
        self.rope_embed.reset_parameters()
        nn.init.normal_(self.cls_token, std=0.02)
        if self.n_storage_tokens > 0:
            nn.init.normal_(self.storage_tokens, std=0.02)
        nn.init.zeros_(self.mask_token)
        # Patch embedding: upstream's uniform(+-1/sqrt(fan_in)) for weight and bias.
        bound = (self.patch_embed.proj.weight[0].numel()) ** -0.5
        nn.init.uniform_(self.patch_embed.proj.weight, -bound, bound)
        nn.init.uniform_(self.patch_embed.proj.bias, -bound, bound)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                # Upstream's trunc_normal_(std=0.02) truncates at +-2 (100 std): a plain normal, faster.
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
                if isinstance(m, LinearKMaskedBias) and m.bias is not None:
                    m.reset_mask()
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, LayerScale):
                nn.init.constant_(m.gamma, m.init_values)

    # forward ----------------------------------------------------------------------------------
    def prepare_tokens(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """``[B,3,H,W]`` -> tokens ``[B, 1 + n_storage + h*w, D]`` and the grid ``(h, w)``."""
        x = self.patch_embed(x)  # [B,h,w,D]
        b, h, w, _ = x.shape
        x = x.flatten(1, 2)
        # Upstream adds 0 * mask_token to the CLS token; adding an exact zero changes nothing.
        prefix = [self.cls_token]
        if self.n_storage_tokens > 0:
            prefix.append(self.storage_tokens)
        prefix = torch.cat(prefix, dim=1).to(x.dtype).expand(b, -1, -1)
        return torch.cat([prefix, x], dim=1), (h, w)

    def _blocks(self, x: torch.Tensor, take: Sequence[int]) -> List[torch.Tensor]:
        """Raw outputs ``[B,N,D]`` of the blocks in ``take``; stops after the last one needed."""
        x, (h, w) = self.prepare_tokens(x)
        rope = self.rope_embed(H=h, W=w)
        wanted, outputs = set(take), {}
        last = max(wanted)
        for i, blk in enumerate(self.blocks):
            x = blk(x, rope)
            if i in wanted:
                outputs[i] = x
            if i == last:
                break
        return [outputs[i] for i in take]

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        """Final norm over all tokens (untied: ``cls_norm`` for CLS + registers)."""
        if self.cls_norm is None:
            return self.norm(x)
        k = self.n_storage_tokens + 1
        return torch.cat([self.cls_norm(x[:, :k]), self.norm(x[:, k:])], dim=1)

    def block_indices(self, n: Union[int, Sequence[int]]) -> List[int]:
        """``n`` int -> the last n blocks; a sequence -> those indices (negative counts from the end)."""
        depth = len(self.blocks)
        if isinstance(n, int):
            if not 1 <= n <= depth:
                raise ValueError(f"n must be in [1, {depth}], got {n}")
            return list(range(depth - n, depth))
        idx = [int(i) + depth if int(i) < 0 else int(i) for i in n]
        bad = [i for i in idx if not 0 <= i < depth]
        if bad or not idx:
            raise ValueError(f"block indices must be in [0, {depth}), got {list(n)}")
        return idx

    def get_intermediate_layers(self, x: torch.Tensor, *, n: Union[int, Sequence[int]] = 1, reshape: bool = False,
                                return_class_token: bool = False, return_extra_tokens: bool = False,
                                norm: bool = True) -> tuple:
        """Official semantics: patch tokens ``[B,h*w,D]`` per block (``reshape``: ``[B,D,h,w]``),
        optionally zipped with CLS ``[B,D]`` and register tokens ``[B,n_storage,D]``."""
        outputs = self._blocks(x, self.block_indices(n))
        if norm:
            outputs = [self._norm(out) for out in outputs]
        k = self.n_storage_tokens + 1
        class_tokens = [out[:, 0] for out in outputs]
        extra_tokens = [out[:, 1:k] for out in outputs]
        outputs = [out[:, k:] for out in outputs]
        if reshape:
            b, _, hh, ww = x.shape
            p = self.patch_size
            outputs = [o.reshape(b, hh // p, ww // p, -1).permute(0, 3, 1, 2).contiguous() for o in outputs]
        parts = [outputs] + [class_tokens] * return_class_token + [extra_tokens] * return_extra_tokens
        return tuple(outputs) if len(parts) == 1 else tuple(zip(*parts))

    def forward_features(self, x: Union[torch.Tensor, List[torch.Tensor]], masks=None):
        """``{"x_norm_clstoken" [B,D], "x_storage_tokens" [B,n_storage,D], "x_norm_patchtokens"
        [B,h*w,D], "x_prenorm" [B,N,D], "masks"}``; a list of tensors gives a list of dicts."""
        if isinstance(x, (list, tuple)):
            masks = masks if masks is not None else [None] * len(x)
            return [self.forward_features(t, m) for t, m in zip(x, masks)]
        if masks is not None:
            raise NotImplementedError("token masking is a training feature; this implementation is inference only")
        x_prenorm = self._blocks(x, [len(self.blocks) - 1])[0]
        x_norm = self._norm(x_prenorm)
        k = self.n_storage_tokens + 1
        return {
            "x_norm_clstoken": x_norm[:, 0],
            "x_storage_tokens": x_norm[:, 1:k],
            "x_norm_patchtokens": x_norm[:, k:],
            "x_prenorm": x_prenorm,
            "masks": masks,
        }

    def forward(self, *args, is_training: bool = False, **kwargs):
        ret = self.forward_features(*args, **kwargs)
        return ret if is_training else self.head(ret["x_norm_clstoken"])

    def patch_features(self, x: torch.Tensor, layers: Optional[Union[int, Sequence[int]]] = None,
                       norm: bool = True) -> torch.Tensor:
        """``[B,3,H,W]`` -> ``[B,h,w,D]`` normed patch tokens of the last block; with ``layers``
        (as ``n`` of get_intermediate_layers) the selected blocks concatenated -> ``[B,h,w,D*len]``."""
        take = self.block_indices(1 if layers is None else layers)
        outs = self._blocks(x, take)
        k = self.n_storage_tokens + 1
        b, _, hh, ww = x.shape
        p = self.patch_size
        # LayerNorm is per token, so normalising only the patch tokens equals upstream's norm-then-slice.
        feats = [(self.norm(o[:, k:]) if norm else o[:, k:]).reshape(b, hh // p, ww // p, -1) for o in outs]
        return feats[0] if len(feats) == 1 else torch.cat(feats, dim=-1)
