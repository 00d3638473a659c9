"""State-dict key mapping between the official DINOv3 naming and transformers' ``DINOv3ViTModel``.

official -> transformers follows the converter at transformers commit a77460f2 (q/k/v split, the
masked k-bias and ``bias_mask``, ``rope_embed.periods`` and ``local_cls_norm`` dropped). The
reverse accepts that naming and the older one (``attention.query/key/value``, ``attention.proj``,
``layer_scale1.gamma``, ``mlp.fc1/w1``, ``patch_embeddings.proj``) and restores what was dropped:
k-bias 0 with mask [1,0,1] (the same effective bias) and the bf16-rounded periods the released
checkpoints store.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping

import torch

StateDict = Dict[str, torch.Tensor]

_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_LAYER = re.compile(r"^layer\.(\d+)\.(.+)$")

# Official block sub-keys -> transformers ones (qkv, FFN handled separately).
_BLOCK_TO_HF = {"attn.proj": "attention.o_proj", "ls1.gamma": "layer_scale1.lambda1",
                "ls2.gamma": "layer_scale2.lambda1", "norm1": "norm1", "norm2": "norm2"}
_FFN_TO_HF = {"fc1": "up_proj", "fc2": "down_proj", "w1": "gate_proj", "w2": "up_proj", "w3": "down_proj"}


def rope_periods(head_dim: int, base: float = 100.0) -> torch.Tensor:
    """``[head_dim/4]`` periods as the released checkpoints store them (rounded through bf16)."""
    exps = 2 * torch.arange(head_dim // 4, dtype=torch.float32) / (head_dim // 2)
    return (base ** exps).to(torch.bfloat16).to(torch.float32)


def is_transformers_format(sd: Mapping[str, torch.Tensor]) -> bool:
    return "embeddings.cls_token" in sd or any(_LAYER.match(k) for k in sd)


def to_transformers(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Official keys -> ``DINOv3ViTModel`` keys (loads there with ``strict=True``)."""
    out: StateDict = {}
    top = {"cls_token": "embeddings.cls_token", "storage_tokens": "embeddings.register_tokens",
           "patch_embed.proj.weight": "embeddings.patch_embeddings.weight",
           "patch_embed.proj.bias": "embeddings.patch_embeddings.bias",
           "norm.weight": "norm.weight", "norm.bias": "norm.bias"}
    for key, val in sd.items():
        m = _BLOCK.match(key)
        if key in top:
            out[top[key]] = val
        elif key == "mask_token":
            out["embeddings.mask_token"] = val.reshape(1, 1, -1)
        elif key == "rope_embed.periods" or key.startswith("local_cls_norm."):
            continue  # recomputed by transformers / never used at eval
        elif m is None:
            raise KeyError(f"no transformers name for official key {key!r}")
        else:
            i, sub = m.groups()
            out.update(_block_to_hf(f"layer.{i}.", sub, val, sd, f"blocks.{i}."))
    return out


def _block_to_hf(dst: str, sub: str, val: torch.Tensor, sd: Mapping[str, torch.Tensor], src: str) -> StateDict:
    name, _, leaf = sub.rpartition(".")
    if sub == "attn.qkv.weight":
        q, k, v = val.chunk(3, dim=0)
        return {dst + "attention.q_proj.weight": q, dst + "attention.k_proj.weight": k,
                dst + "attention.v_proj.weight": v}
    if sub == "attn.qkv.bias":
        mask = sd.get(src + "attn.qkv.bias_mask")
        q, k, v = val.chunk(3, dim=0)
        if mask is not None:
            mq, mk, mv = mask.chunk(3, dim=0)
            if bool((mq != 1).any() or (mk != 0).any() or (mv != 1).any()):
                raise ValueError(f"{src}attn.qkv.bias_mask is not [1..,0..,1..]: no transformers equivalent")
        # transformers has no key bias (key_bias=False): the masked k-bias is dropped.
        return {dst + "attention.q_proj.bias": q, dst + "attention.v_proj.bias": v}
    if sub == "attn.qkv.bias_mask":
        return {}
    if sub in _BLOCK_TO_HF:
        return {dst + _BLOCK_TO_HF[sub]: val}
    if name in _BLOCK_TO_HF:
        return {f"{dst}{_BLOCK_TO_HF[name]}.{leaf}": val}
    ffn = name[len("mlp."):] if name.startswith("mlp.") else None
    if ffn in _FFN_TO_HF:
        return {f"{dst}mlp.{_FFN_TO_HF[ffn]}.{leaf}": val}
    raise KeyError(f"no transformers name for official key {src + sub!r}")


def from_transformers(sd: Mapping[str, torch.Tensor], num_heads: int, rope_base: float = 100.0) -> StateDict:
    """transformers keys (either naming) -> official keys; ``num_heads`` sizes the RoPE periods."""
    out: StateDict = {}
    layers: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, val in sd.items():
        m = _LAYER.match(key)
        if m is not None:
            layers.setdefault(int(m.group(1)), {})[m.group(2)] = val
        elif key == "embeddings.cls_token":
            out["cls_token"] = val
        elif key == "embeddings.register_tokens":
            out["storage_tokens"] = val
        elif key == "embeddings.mask_token":
            out["mask_token"] = val.reshape(1, -1)
        elif key.startswith("embeddings.patch_embeddings."):
            out["patch_embed.proj." + key.rpartition(".")[2]] = val
        elif key in ("rope_embeddings.periods", "rope_embed.periods"):
            out["rope_embed.periods"] = val
        elif key.startswith("norm."):
            out[key] = val
        elif key.endswith("inv_freq"):
            continue  # non-persistent in transformers; periods come from the checkpoint rule below
        else:
            raise KeyError(f"unexpected transformers key {key!r}")
    if "cls_token" not in out:
        raise KeyError("no embeddings.cls_token: not a DINOv3 transformers state dict")
    dim = out["cls_token"].shape[-1]
    out.setdefault("rope_embed.periods", rope_periods(dim // num_heads, rope_base))
    for i in sorted(layers):
        out.update(_layer_from_hf(f"blocks.{i}.", layers[i]))
    return out


def _pick(sub: Mapping[str, torch.Tensor], *names: str):
    for n in names:
        if n in sub:
            return sub[n]
    return None


def _layer_from_hf(dst: str, sub: Dict[str, torch.Tensor]) -> StateDict:
    out: StateDict = {}
    att = "attention."
    q = _pick(sub, att + "q_proj.weight", att + "query.weight")
    k = _pick(sub, att + "k_proj.weight", att + "key.weight")
    v = _pick(sub, att + "v_proj.weight", att + "value.weight")
    if q is None or k is None or v is None:
        raise KeyError(f"{dst}: missing q/k/v projection weights")
    out[dst + "attn.qkv.weight"] = torch.cat([q, k, v], dim=0)
    qb = _pick(sub, att + "q_proj.bias", att + "query.bias")
    vb = _pick(sub, att + "v_proj.bias", att + "value.bias")
    if qb is not None and vb is not None:
        kb = _pick(sub, att + "k_proj.bias", att + "key.bias")
        out[dst + "attn.qkv.bias"] = torch.cat([qb, torch.zeros_like(qb) if kb is None else kb, vb])
        out[dst + "attn.qkv.bias_mask"] = torch.cat([torch.ones_like(qb), torch.zeros_like(qb), torch.ones_like(vb)])
    for leaf in ("weight", "bias"):
        for o_name in ("o_proj", "proj"):
            if f"{att}{o_name}.{leaf}" in sub:
                out[f"{dst}attn.proj.{leaf}"] = sub[f"{att}{o_name}.{leaf}"]
        for n in ("norm1", "norm2"):
            if f"{n}.{leaf}" in sub:
                out[f"{dst}{n}.{leaf}"] = sub[f"{n}.{leaf}"]
    for j in ("1", "2"):
        gamma = _pick(sub, f"layer_scale{j}.lambda1", f"layer_scale{j}.gamma", f"layer_scale{j}")
        if gamma is not None:
            out[f"{dst}ls{j}.gamma"] = gamma
    # "up_proj" is fc1 for the plain MLP and w2 for SwiGLU: the gate decides which.
    gated = any(k.startswith(("mlp.gate_proj.", "mlp.w1.")) for k in sub)
    hf_to_ffn = {"gate_proj": "w1", "up_proj": "w2" if gated else "fc1", "down_proj": "w3" if gated else "fc2"}
    for key, val in sub.items():
        if key.startswith("mlp."):
            name, _, leaf = key[len("mlp."):].rpartition(".")
            out[f"{dst}mlp.{hf_to_ffn.get(name, name)}.{leaf}"] = val
    return out
