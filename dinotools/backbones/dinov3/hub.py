"""Registered DINOv3 backbone factories (``vits16`` ... ``vit7b16``) and model loading."""
from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Optional, Tuple

import torch

from dinotools import _env
from dinotools.backbones.dinov3 import checkpoint
from dinotools.backbones.dinov3.backbone import DINOv3Backbone
from dinotools.backbones.dinov3.model import DinoVisionTransformer
from dinotools.backbones.dinov3.variants import get_variant, pretrain_from_filename
from dinotools.backbones.dinov3.weights import resolve
from dinotools.errors import WeightsError
from dinotools.interfaces.params import Range, declare_params

log = logging.getLogger(__name__)

RANDOM = (None, "random")
GITHUB_REPO = "facebookresearch/dinov3"


def _fill_optional(model: DinoVisionTransformer, sd: dict) -> dict:
    """Add what some formats drop and eval never reads: mask_token and the local CLS norm."""
    sd = dict(sd)
    dim = model.embed_dim
    sd.setdefault("mask_token", torch.zeros(1, dim))
    if model.local_cls_norm is not None:
        sd.setdefault("local_cls_norm.weight", torch.ones(dim))
        sd.setdefault("local_cls_norm.bias", torch.zeros(dim))
    else:
        sd.pop("local_cls_norm.weight", None)
        sd.pop("local_cls_norm.bias", None)
    return sd


def load_state_dict_into(model: DinoVisionTransformer, sd: dict, path) -> None:
    """Strict, zero-copy (``assign``) load; a mismatch is reported in one line, not as a key dump."""
    sd = _fill_optional(model, sd)
    expected = model.state_dict(keep_vars=True)
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(expected) & set(sd) if tuple(expected[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{name} {len(keys)} (e.g. {', '.join(keys[:3])})"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise WeightsError(f"{path} does not fit the DINOv3 architecture: {'; '.join(parts)}")
    model.load_state_dict(sd, strict=True, assign=True)


def from_torch_hub(variant: str, pretrain: str) -> Tuple[dict, str]:
    """Weights through ``torch.hub.load`` of the official code, as the notebook does
    (``$DINOV3_LOCATION`` clone, else GitHub): returns the model's state dict."""
    repo = _env.env_str(_env.DINOV3_LOCATION)
    source = "local" if repo else "github"
    repo = repo or GITHUB_REPO
    # The hub functions take a path/URL string for weights (their enum is not importable here).
    kwargs = {} if pretrain == "lvd1689m" else {"weights": get_variant(variant).url(pretrain)}
    try:
        official = torch.hub.load(repo, f"dinov3_{variant}", source=source, pretrained=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - hub code and downloads may raise anything
        raise WeightsError(f"torch.hub.load({repo!r}, 'dinov3_{variant}', source={source!r}) failed: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return official.state_dict(), f"torch.hub:{repo}"


def load_model(variant: str, weights="auto", *,
               pretrain: Optional[str] = None) -> Tuple[DinoVisionTransformer, str, Optional[str]]:
    """``(model on CPU, pretrain, weights source)``; weights as for the factories below.

    Checkpoints are memory-mapped and assigned into a model built on the meta device, so loading
    holds one copy of the weights (the 7B model is 27 GB in fp32).
    """
    v = get_variant(variant)
    if pretrain is not None:
        v.check_pretrain(pretrain)
    if weights in RANDOM:
        log.warning("DINOv3 %s with RANDOM weights: for tests only, the features are meaningless", v.name)
        pretrain = pretrain or "lvd1689m"
        return DinoVisionTransformer(**v.config(pretrain)), pretrain, None
    if weights == "hub":
        pretrain = pretrain or "lvd1689m"
        sd, source = from_torch_hub(v.name, pretrain)
        path = Path(source)
    else:
        path = resolve(v.name, weights, pretrain)
        sd = checkpoint.read_folder(path) if path.is_dir() else checkpoint.read_file(path)
        sd = checkpoint.to_official(sd, path, v.num_heads)
        source = str(path)
        checkpoint.check_variant(sd, v.name, path, v.depth)
        # Of Meta's ViT-L files only SAT carries local_cls_norm (transformers drops it: then the name).
        is_sat_vitl = v.name == "vitl16" and "local_cls_norm.weight" in sd
        named = pretrain_from_filename(path.name) or pretrain_from_filename(str(path))  # file, then folders
        inferred = "sat493m" if is_sat_vitl else named
        if pretrain is not None and inferred is not None and inferred != pretrain:
            raise WeightsError(f"{path} holds {inferred} weights but pretrain={pretrain!r} was asked for")
        pretrain = pretrain or inferred or "lvd1689m"
        v.check_pretrain(pretrain)
    model = DinoVisionTransformer(**v.config(pretrain), device="meta")
    load_state_dict_into(model, sd, path)
    return model, pretrain, source


def load_dinov3(variant: str, weights="auto", *, pretrain: Optional[str] = None) -> DinoVisionTransformer:
    """The bare model, in eval mode on CPU: a drop-in for
    ``torch.hub.load("facebookresearch/dinov3", "dinov3_<variant>", weights=...)`` (same
    ``get_intermediate_layers``/``forward_features``); ``weights`` as for ``create``."""
    return load_model(variant, weights, pretrain=pretrain)[0].eval()


@declare_params("backbone dinov3", batch_size=Range(1, 4096, integer=True, optional=True, doc="images per forward "
                "chunk (None: the whole batch); a chunk of 4096 frames fits in no GPU"))
def create(variant: str, *, weights="auto", pretrain: Optional[str] = None, dtype=None, device=None, layers=None,
           compile: bool = False, batch_size: Optional[int] = None) -> DINOv3Backbone:
    """Build a DINOv3 backbone.

    Args:
        weights: ``"auto"`` (search ``$DINOTOOLS_WEIGHTS``, ``$DINOV3_LOCATION``, the torch hub cache,
            the Hugging Face cache, then download from HF when ``huggingface_hub`` is installed), a
            path (Meta .pth, .safetensors, a transformers folder), a URL (downloaded to the torch hub
            cache), ``"hub"`` (``torch.hub.load`` of the official code), or ``"random"``/None (tests).
        pretrain: ``"lvd1689m"`` or ``"sat493m"`` (vitl16, vit7b16); None infers it from the file
            name/content (default LVD). SAT weights use their own mean/std.
        dtype: fp32 (default), bf16, fp16. device: cpu, cuda, ... (None/"auto": cuda if available).
        layers: None (last block), n (last n blocks) or block indices; features are concatenated.
        compile: ``torch.compile`` the feature extractor. batch_size: images per forward chunk.
    """
    v = get_variant(variant)
    model, pretrain, source = load_model(v.name, weights, pretrain=pretrain)
    mean, std = v.mean_std(pretrain)
    return DINOv3Backbone(model, variant=v.name, pretrain=pretrain, mean=mean, std=std, dtype=dtype, device=device,
                          layers=layers, compile=compile, batch_size=batch_size, weights_path=source)


def vits16(**kwargs) -> DINOv3Backbone:
    """DINOv3 ViT-S/16 (21M params, D=384), LVD-1689M."""
    return create("vits16", **kwargs)


def vits16plus(**kwargs) -> DINOv3Backbone:
    """DINOv3 ViT-S+/16 (29M params, D=384, SwiGLU), LVD-1689M."""
    return create("vits16plus", **kwargs)


def vitb16(**kwargs) -> DINOv3Backbone:
    """DINOv3 ViT-B/16 (86M params, D=768), LVD-1689M."""
    return create("vitb16", **kwargs)


def vitl16(**kwargs) -> DINOv3Backbone:
    """DINOv3 ViT-L/16 (303M params, D=1024), LVD-1689M or ``pretrain="sat493m"``."""
    return create("vitl16", **kwargs)


def vitl16plus(**kwargs) -> DINOv3Backbone:
    """DINOv3 ViT-L+/16 (404M params, D=1024, SwiGLU), LVD-1689M."""
    return create("vitl16plus", **kwargs)


def vith16plus(**kwargs) -> DINOv3Backbone:
    """DINOv3 ViT-H+/16 (841M params, D=1280, SwiGLU), LVD-1689M."""
    return create("vith16plus", **kwargs)


def vit7b16(**kwargs) -> DINOv3Backbone:
    """DINOv3 ViT-7B/16 (6.7B params, D=4096, SwiGLU, no qkv bias), LVD-1689M or ``pretrain="sat493m"``."""
    return create("vit7b16", **kwargs)


def _factory_signature() -> inspect.Signature:
    """``create``'s keyword arguments without ``variant``: what each factory accepts (so a caller can
    check an option before building, and ``help()`` shows them)."""
    sig = inspect.signature(create)
    return sig.replace(parameters=[p for name, p in sig.parameters.items() if name != "variant"])


for _factory in (vits16, vits16plus, vitb16, vitl16, vitl16plus, vith16plus, vit7b16):
    _factory.__signature__ = _factory_signature()
    _factory.PARAMS, _factory.PARAMS_OWNER = create.PARAMS, create.PARAMS_OWNER  # declared and checked by create
