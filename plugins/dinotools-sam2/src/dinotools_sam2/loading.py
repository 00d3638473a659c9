"""Build SAM 2's automatic mask generator from a checkpoint or a Hugging Face id, with install hints."""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pickle
from typing import Any, Dict, List, Optional

from dinotools.errors import UserError, WeightsError

SAM2_GIT = "git+https://github.com/facebookresearch/sam2.git"
INSTALL_HINT = (
    f"install them with `pip install 'dinotools-sam2[sam2]'` (Meta's SAM 2 from {SAM2_GIT}, which brings "
    f"torchvision and hydra-core), or `pip install '{SAM2_GIT}'`. The PyPI package `sam2` is a third-party "
    f"repackage, not Meta's release"
)
log = logging.getLogger(__name__)
HF_HINT = "install huggingface_hub with `pip install 'dinotools-sam2[hf]'` (or `pip install huggingface_hub`)"
# import name -> distribution to install; what `import sam2.automatic_mask_generator` needs
REQUIRED = {"sam2": "SAM-2 (Meta)", "torchvision": "torchvision", "hydra": "hydra-core"}


class Sam2Unavailable(UserError, ImportError):
    """SAM 2 or one of its dependencies (torchvision, hydra-core, huggingface_hub) is not installed."""


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a None entry in sys.modules, or a broken parent package
        return False


def _check_installed(names: List[str], what: str = "the sam2 initializer") -> None:
    """Raise one ``Sam2Unavailable`` naming every missing module and how to install each."""
    missing = [n for n in names if not _has_module(n)]
    if missing:
        packages = ", ".join(n if REQUIRED.get(n, n) == n else f"{n} ({REQUIRED[n]})" for n in missing)
        hints = ([INSTALL_HINT] if set(missing) & set(REQUIRED) else []) + (
            [HF_HINT] if "huggingface_hub" in missing else [])
        raise Sam2Unavailable(f"{what} needs {packages}: not installed; {'; '.join(hints)}")


def import_sam2() -> Any:
    """``(SAM2AutomaticMaskGenerator, sam2.build_sam module)``, or ``Sam2Unavailable`` naming what to install."""
    _check_installed(list(REQUIRED))
    try:
        amg = importlib.import_module("sam2.automatic_mask_generator")
        build = importlib.import_module("sam2.build_sam")
    except Exception as exc:  # noqa: BLE001 - installed but broken: a torchvision built for another
        # torch raises RuntimeError, sam2 itself raises one when shadowed by its own repository folder
        raise Sam2Unavailable(
            f"importing SAM 2 failed ({type(exc).__name__}: {exc}); reinstall it: {INSTALL_HINT}"
        ) from exc
    return amg.SAM2AutomaticMaskGenerator, build


def _is_weights_error(exc: BaseException) -> bool:
    """Whether an exception from ``build_sam2`` means the checkpoint file does not fit.

    SAM 2 loads strictly (torch's "Error(s) in loading state_dict", or its own bare RuntimeError),
    reads ``["model"]`` from the file, and a non-checkpoint file fails in torch.load.
    """
    text = str(exc)
    return (
        isinstance(exc, (KeyError, pickle.UnpicklingError))
        or not text
        or "state_dict" in text
        or "zip archive" in text
    )


def is_hf_id(model: str) -> bool:
    """True for ``owner/name`` strings that are not an existing path (``facebook/sam2.1-hiera-large``)."""
    return model.count("/") == 1 and not os.path.exists(model) and not model.endswith((".pt", ".pth"))


def config_for_checkpoint(build: Any, checkpoint: str) -> Optional[str]:
    """SAM 2's config name for an official checkpoint file name (``sam2.1_hiera_large.pt``), else None."""
    table: Dict[str, Any] = getattr(build, "HF_MODEL_ID_TO_FILENAMES", {})
    base = os.path.basename(checkpoint)
    return next((cfg for cfg, ckpt in table.values() if ckpt == base), None)


def _default_device(device: Optional[str]) -> str:
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_model(
    *, model: Optional[str], checkpoint: Optional[str], config: Optional[str], device: Optional[str],
    what: str = "the sam2 initializer", random_weights: bool = False,
) -> Any:
    """SAM 2's model (``SAM2Base``) from ``model`` (HF id or checkpoint path) or ``checkpoint``.

    Checked before anything heavy is imported: the weights are given, a checkpoint path exists,
    then that sam2 (and huggingface_hub for an HF id) are installed. ``what`` names the
    component in the messages. ``random_weights`` builds ``config`` with SAM 2's random
    initialisation (``build_sam2(config, None)``): the real model and code path for tests and
    timing, meaningless masks.
    """
    if model is not None and checkpoint is not None:
        raise UserError(f"give {what} either model=... or checkpoint=..., not both")
    if random_weights:
        if model is not None or checkpoint is not None or config is None:
            raise UserError(
                f"random_weights=true builds SAM 2 for {what} from config=... alone (e.g. config=configs/sam2.1/"
                "sam2.1_hiera_t.yaml); give no model= or checkpoint="
            )
        _, build = import_sam2()
        log.warning("%s: SAM 2 with random weights (%s): for tests and timing only, the masks mean nothing",
                    what, config)
        return build.build_sam2(config, None, device=_default_device(device))
    if model is not None and not is_hf_id(model):
        checkpoint, model = model, None  # a path given as model=
    if model is None and checkpoint is None:
        raise WeightsError(
            f"{what} needs SAM 2 weights: model='facebook/sam2.1-hiera-large' (a Hugging Face id, "
            "downloaded with huggingface_hub) or checkpoint='sam2.1_hiera_large.pt' with "
            "config='configs/sam2.1/sam2.1_hiera_l.yaml'"
        )
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise WeightsError(
            f"SAM 2 checkpoint {checkpoint!r} not found; download one from "
            f"https://github.com/facebookresearch/sam2#download-checkpoints or pass a Hugging Face id as model="
        )
    _check_installed(list(REQUIRED) + (["huggingface_hub"] if model is not None else []), what)
    _, build = import_sam2()
    device = _default_device(device)

    if model is not None:
        known = sorted(getattr(build, "HF_MODEL_ID_TO_FILENAMES", {}))
        if known and model not in known:
            raise WeightsError(f"unknown SAM 2 Hugging Face id {model!r}; known ids: {', '.join(known)}")
        # Not SAM2AutomaticMaskGenerator.from_pretrained: it passes the same kwargs to the model
        # builder and to the generator, so device= or generator settings break one of the two.
        return build.build_sam2_hf(model, device=device)
    config = config or config_for_checkpoint(build, checkpoint)
    if config is None:
        raise UserError(
            f"cannot tell the SAM 2 config for checkpoint {os.path.basename(checkpoint)!r}; pass config= "
            f"with a config name of the sam2 package, e.g. 'configs/sam2.1/sam2.1_hiera_l.yaml'"
        )
    try:
        return build.build_sam2(config, checkpoint, device=device)
    except (RuntimeError, KeyError, pickle.UnpicklingError) as exc:
        if not _is_weights_error(exc):
            raise
        raise WeightsError(
            f"SAM 2 checkpoint {checkpoint!r} does not fit config {config!r}: "
            f"{type(exc).__name__}: {exc or 'missing/unexpected keys'}"
        ) from exc


def build_generator(
    *, model: Optional[str], checkpoint: Optional[str], config: Optional[str], device: Optional[str],
    settings: Dict[str, Any], random_weights: bool = False,
) -> Any:
    """A ``SAM2AutomaticMaskGenerator`` (``settings``: its keyword arguments) on ``build_model``'s model."""
    sam = build_model(model=model, checkpoint=checkpoint, config=config, device=device,
                      random_weights=random_weights)
    amg_cls, _ = import_sam2()
    return amg_cls(sam, output_mode="binary_mask", **settings)


def build_predictor(
    *, model: Optional[str], checkpoint: Optional[str], config: Optional[str], device: Optional[str],
) -> Any:
    """A ``SAM2ImagePredictor`` on ``build_model``'s model (for the ``sam2`` refiner)."""
    sam = build_model(model=model, checkpoint=checkpoint, config=config, device=device, what="the sam2 refiner")
    try:
        predictor = importlib.import_module("sam2.sam2_image_predictor")
    except Exception as exc:  # noqa: BLE001 - installed but broken, as in import_sam2
        raise Sam2Unavailable(
            f"importing SAM 2's image predictor failed ({type(exc).__name__}: {exc}); reinstall it: {INSTALL_HINT}"
        ) from exc
    return predictor.SAM2ImagePredictor(sam)
