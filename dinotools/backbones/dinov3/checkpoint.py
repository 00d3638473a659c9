"""Reading DINOv3 checkpoints (.pth, .safetensors, transformers folders) and checking what they hold."""
from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path
from typing import Dict, Optional

import torch

from dinotools.backbones.dinov3 import convert
from dinotools.backbones.dinov3.variants import identify
from dinotools.errors import WeightsError

StateDict = Dict[str, torch.Tensor]
ZIP_MAGIC, ZIP_END = b"PK\x03\x04", b"PK\x05\x06"


def _sniff(path: Path) -> str:
    """``zip`` | ``pickle`` | ``safetensors``; raises WeightsError naming what the file is instead."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(64)
        if head.startswith(ZIP_MAGIC):
            # The central directory sits at the end: a cut-off download has no end record.
            f.seek(max(0, size - 65_600))
            if ZIP_END not in f.read():
                raise WeightsError(f"{path} is truncated (a cut-off download?): its {size} bytes end "
                                   f"before the zip index of a PyTorch checkpoint. Download it again")
            return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = struct.unpack("<Q", head[:8])[0]
        if 8 + header_len > size:
            raise WeightsError(f"{path} is a truncated safetensors file ({size} bytes, header needs "
                               f"{8 + header_len}). Download it again")
        return "safetensors"
    text = head.lstrip().lower()
    kind = ("an HTML/XML page (an error or login page saved instead of the checkpoint?)"
            if text.startswith((b"<", b"<!doctype")) else "empty" if size == 0 else "not a recognised format")
    raise WeightsError(f"{path} is not a PyTorch (.pth) or safetensors checkpoint: it is {kind}")


def _read_safetensors(path: Path) -> StateDict:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise WeightsError(f"{path} is a safetensors file: install safetensors to read it "
                           f"(pip install 'dinotools[hf]')") from exc
    with open(path, "rb") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_len))
    end = max((m["data_offsets"][1] for k, m in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + end > path.stat().st_size:
        raise WeightsError(f"{path} is truncated: the safetensors index needs {8 + header_len + end} bytes, "
                           f"the file has {path.stat().st_size}. Download it again")
    return load_file(str(path))  # memory-mapped


def read_file(path: Path) -> StateDict:
    """One checkpoint file -> flat ``{key: tensor}`` on CPU (memory-mapped where the format allows)."""
    kind = _sniff(path)
    if kind == "safetensors":
        return _read_safetensors(path)
    try:
        # mmap: tensors stay in the page cache, so loading never holds two copies of the weights.
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "zip")
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            raise WeightsError(unsafe_message(path, exc)) from None
        raise WeightsError(f"{path} could not be read as a PyTorch checkpoint (corrupt or truncated?): "
                           f"UnpicklingError: {str(exc).splitlines()[0][:200]}") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise WeightsError(f"{path} could not be read as a PyTorch checkpoint (corrupt or truncated?): "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
    return unwrap(obj, path)


def unsafe_message(path: Path, exc: Exception) -> str:
    """Why torch's safe loader refused ``path`` (it holds objects or code, not only tensors), in one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # torch's message: a paragraph about weights_only, the reason (e.g. "unsupported GLOBAL posix.system"), a link.
    reason = next((ln for ln in lines[1:] if not ln.lower().startswith(("check the documentation", "you can use",
                                                                          "please file"))), "")
    reason = f" (torch's safe loader: {reason.rstrip('.')[:200]})" if reason else ""
    return (f"{path} was not loaded, for safety: it holds Python objects or code, not only tensors{reason}. "
            f"Loading it could run arbitrary code. If it comes from a source you trust, load it once yourself "
            f"with torch.load(..., weights_only=False) and save its state dict of tensors, then pass that file")


def read_folder(path: Path) -> StateDict:
    """A transformers folder (model.safetensors, sharded index, pytorch_model.bin) or one with one .pth."""
    if (path / "model.safetensors").is_file():
        return read_file(path / "model.safetensors")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        sd: StateDict = {}
        for shard in shards:
            if not (path / shard).is_file():
                raise WeightsError(f"{path} is incomplete: shard {shard} listed in {index.name} is missing")
            sd.update(read_file(path / shard))
        return sd
    if (path / "pytorch_model.bin").is_file():
        return read_file(path / "pytorch_model.bin")
    files = sorted(p for p in path.iterdir() if p.suffix in (".pth", ".pt", ".safetensors"))
    if len(files) == 1:
        return read_file(files[0])
    raise WeightsError(f"{path} is a folder without model.safetensors, pytorch_model.bin or a single .pth "
                       f"(found {[p.name for p in files] or 'no weight files'}); pass the file itself")


def unwrap(obj, path: Path) -> StateDict:
    """Training checkpoints nest the weights ({"model": ...}, {"teacher": ...}): find the tensors."""
    for _ in range(3):
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        if isinstance(obj, dict):
            nested = [obj[k] for k in ("model", "state_dict", "teacher", "module") if isinstance(obj.get(k), dict)]
            if nested:
                obj = nested[0]
                continue
        break
    raise WeightsError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")


def strip_prefix(sd: StateDict) -> StateDict:
    """Drop a wrapper prefix ("module.", "backbone.", "model.", ...) found before ``cls_token``."""
    anchor = next((k for k in sd if k.endswith("cls_token")), None)
    if anchor is None:
        return sd
    prefix = anchor[: -len("cls_token")]
    prefix = prefix[: -len("embeddings.")] if prefix.endswith("embeddings.") else prefix
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)} if prefix else sd


def to_official(sd: StateDict, path: Path, num_heads: int) -> StateDict:
    """Any supported naming -> official keys; unrecognisable content raises a plain WeightsError."""
    sd = strip_prefix(sd)
    if convert.is_transformers_format(sd):
        try:
            return convert.from_transformers(sd, num_heads)
        except KeyError as exc:
            raise WeightsError(f"{path} looks like a transformers DINOv3 checkpoint but {exc.args[0]}") from exc
    if "storage_tokens" in sd or "rope_embed.periods" in sd:
        return sd
    sample = ", ".join(sorted(sd)[:4])
    if "pos_embed" in sd:
        what = "a DINOv2/ViT checkpoint (absolute pos_embed), not DINOv3"
    elif any(k.startswith(("downsample_layers", "stages")) for k in sd):
        what = "a ConvNeXt checkpoint; dinotools' DINOv3 backbones are the ViT variants"
    elif "reg_token" in sd:
        what = "a timm checkpoint, which dinotools does not read: use Meta's .pth or the transformers files"
    else:
        what = "not a DINOv3 ViT checkpoint"
    raise WeightsError(f"{path} is {what} (keys: {sample}, ...)")


def describe(sd: StateDict) -> Optional[str]:
    """Which released variant these official-named tensors belong to (None when no variant fits)."""
    try:
        dim = sd["cls_token"].shape[-1]
        depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
        gated = "blocks.0.mlp.w1.weight" in sd
        hidden = sd["blocks.0.mlp.w1.weight" if gated else "blocks.0.mlp.fc1.weight"].shape[0]
    except (KeyError, ValueError, IndexError):
        return None
    return identify(dim, depth, hidden, gated, "blocks.0.attn.qkv.bias" in sd)


def check_variant(sd: StateDict, variant: str, path: Path, expected_depth: int) -> None:
    """Raise a one-line WeightsError when ``sd`` is another variant's or a cut-short checkpoint."""
    found = describe(sd)
    if found == variant:
        return
    if found is not None:
        raise WeightsError(f"{path} holds DINOv3 {found} weights, not {variant}: use --backbone {found} "
                           f"or the {variant} checkpoint")
    depth = 1 + max((int(k.split(".")[1]) for k in sd if k.startswith("blocks.")), default=-1)
    if 0 < depth < expected_depth:
        raise WeightsError(f"{path} is incomplete: it has {depth} of the {expected_depth} blocks of {variant} "
                           f"(truncated or partially converted?)")
    raise WeightsError(f"{path} does not match any released DINOv3 ViT (expected {variant})")
