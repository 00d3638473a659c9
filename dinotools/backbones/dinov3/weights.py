"""Finding DINOv3 weight files where users keep them, and the errors when they are not there."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import List, Optional, Tuple

from dinotools import _env
from dinotools.backbones.dinov3.variants import SIGNUP_URL, Variant, get_variant
from dinotools.errors import WeightsError

log = logging.getLogger(__name__)

HF_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# Third-party variables (not dinotools flags), listed in _env.py.
HF_HUB_CACHE_VAR, HF_HOME_VAR, HF_OFFLINE_VAR = _env.HF_HUB_CACHE, _env.HF_HOME, _env.HF_HUB_OFFLINE


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints``: where ``torch.hub`` (and the notebook) saves the .pth files."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, located as ``huggingface_hub`` does (without importing it)."""
    cache = _env.env_str(HF_HUB_CACHE_VAR)
    if cache:
        return Path(cache).expanduser()
    home = _env.env_str(HF_HOME_VAR) or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home).expanduser() / "hub"


def search_locations(variant: str, pretrain: str = "lvd1689m") -> List[Tuple[str, Path]]:
    """``(description, folder)`` for every place ``weights="auto"`` looks, in order."""
    v = get_variant(variant)
    places = []
    folder = _env.env_str(_env.WEIGHTS_DIR)
    if folder:
        places.append((f"${_env.WEIGHTS_DIR}", Path(folder).expanduser()))
    clone = _env.env_str(_env.DINOV3_LOCATION)
    if clone:
        places.append((f"${_env.DINOV3_LOCATION}", Path(clone).expanduser()))
    places.append(("torch hub cache", torch_hub_checkpoints()))
    repo_dir = "models--" + v.hf_repo(pretrain).replace("/", "--")
    places.append(("Hugging Face cache", hf_cache_dir() / repo_dir / "snapshots"))
    return places


def _candidates(folder: Path, v: Variant, pretrain: str) -> List[Path]:
    """Weight files for ``v``/``pretrain`` directly in ``folder`` or in its usual sub-folders."""
    stem = f"dinov3_{v.name}_pretrain_{pretrain}"
    hf_name = f"dinov3-{v.name}-pretrain-{pretrain}"
    subdirs = [folder, folder / f"dinov3_{v.name}", folder / "weights", folder / "checkpoints"]
    found: List[Path] = []
    for d in subdirs:
        if not d.is_dir():
            continue
        exact = d / v.filename(pretrain)
        found += [exact] if exact.is_file() else []
        # Renamed copies keep the stem: "dinov3_vitl16_pretrain_lvd1689m.pth", "...-8aa4cbdd (1).pth".
        for ext in ("pth", "pt", "safetensors"):
            found += sorted(p for p in d.glob(f"{stem}*.{ext}") if p.is_file() and p != exact)
        hf = d / hf_name
        if hf.is_dir() and any((hf / f).is_file() for f in HF_FILES):
            found.append(hf)
    return found


def _hf_snapshots(snapshots: Path, v: Variant, pretrain: str) -> List[Path]:
    """Snapshot folders of a cached HF repo that hold weights (newest first), or the .pth inside."""
    if not snapshots.is_dir():
        return []
    found = []
    for snap in sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if any((snap / f).is_file() for f in HF_FILES):
            found.append(snap)
        elif (snap / v.filename(pretrain)).is_file():
            found.append(snap / v.filename(pretrain))
    return found


def find_weights(variant: str, pretrain: str = "lvd1689m") -> Optional[Path]:
    """First local weights for ``variant``/``pretrain`` in the ``search_locations`` order, else None.

    Never raises and never downloads (the demo uses it to choose between DINOv3 and the baseline).
    """
    try:
        v = get_variant(variant)
        v.check_pretrain(pretrain)
        for desc, folder in search_locations(variant, pretrain):
            look = _hf_snapshots if desc == "Hugging Face cache" else _candidates
            hits = look(folder, v, pretrain)
            if hits:
                log.info("DINOv3 %s weights found in %s: %s", variant, desc, hits[0])
                return hits[0]
    except Exception as exc:  # noqa: BLE001 - a lookup helper must not fail (unreadable folder, bad name)
        log.debug("find_weights(%r, %r) failed: %s", variant, pretrain, exc)
    return None


def how_to_get(v: Variant, pretrain: str) -> str:
    return (f"get {v.filename(pretrain)} from Meta ({SIGNUP_URL}; the download links come by e-mail) or the "
            f"gated Hugging Face repo {v.hf_repo(pretrain)}, then pass --weights PATH or put it in "
            f"${_env.WEIGHTS_DIR}")


def not_found_error(variant: str, pretrain: str, extra: str = "") -> WeightsError:
    """The error for ``weights="auto"`` when nothing was found: every place searched + how to fix."""
    v = get_variant(variant)
    places = "; ".join(f"{desc} ({folder})" for desc, folder in search_locations(variant, pretrain))
    unset = [f"${n}" for n in (_env.WEIGHTS_DIR, _env.DINOV3_LOCATION) if not _env.env_str(n)]
    note = f" ({', '.join(unset)} not set)" if unset else ""
    return WeightsError(f"no weights found for DINOv3 {v.name} ({pretrain}). Searched: {places}{note}{extra}. "
                        f"To fix: {how_to_get(v, pretrain)}")


def _hf_offline() -> bool:
    return _env.env_flag(HF_OFFLINE_VAR)


def download_hf(variant: str, pretrain: str) -> Tuple[Optional[Path], str]:
    """Download from the gated HF repo when ``huggingface_hub`` is installed; ``(path|None, why not)``."""
    try:
        import huggingface_hub as hub
    except ImportError:
        return None, "huggingface_hub not installed (pip install 'dinotools[hf]' to download by repo id)"
    if _hf_offline():
        return None, f"${HF_OFFLINE_VAR} is set, so no download was attempted"
    repo = get_variant(variant).hf_repo(pretrain)
    try:
        folder = hub.snapshot_download(repo, allow_patterns=["*.json", "*.safetensors"])
    except Exception as exc:  # noqa: BLE001 - gated/denied/offline all mean "not available"
        return None, f"download of {repo} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    return Path(folder), ""


def download_url(url: str) -> Path:
    """Download a (signed) checkpoint URL into the torch hub cache once; returns the file."""
    from urllib.parse import urlparse

    import torch.hub

    name = os.path.basename(urlparse(url).path)
    dst = torch_hub_checkpoints() / name
    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(dst), progress=True)
        except Exception as exc:  # noqa: BLE001
            raise WeightsError(f"could not download {url}: {exc}") from exc
    return dst


def resolve(variant: str, weights, pretrain: Optional[str]) -> Path:
    """``weights`` ("auto", a path or a URL) -> an existing weights file or folder."""
    v = get_variant(variant)
    if weights == "auto":
        wanted = pretrain or "lvd1689m"
        path = find_weights(v.name, wanted)
        if path is None:
            path, why = download_hf(v.name, wanted)
            if path is None:
                raise not_found_error(v.name, wanted, f"; Hugging Face download: {why}")
        return path
    text = os.fspath(weights)
    if text.startswith(("http://", "https://")):
        path = download_url(text)
    else:
        path = Path(text).expanduser()
    if not path.exists():
        raise WeightsError(f"DINOv3 {v.name} weights {text!r} do not exist. To fix: check the path, or "
                           f"{how_to_get(v, pretrain or 'lvd1689m')}")
    return path
