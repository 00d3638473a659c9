"""The one place environment variables are read."""
import os


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


DISABLE_EXT = "DINOTOOLS_DISABLE_EXT"  # ignore a built dinotools._C (forces the PyTorch path)
CPU_ISA = "DINOTOOLS_CPU_ISA"  # CPU kernel instruction set: auto (default), avx512, avx2, generic
WEIGHTS_DIR = "DINOTOOLS_WEIGHTS"  # folder searched for backbone weight files
DINOV3_LOCATION = "DINOV3_LOCATION"  # local clone of the DINOv3 repository (torch.hub, as the notebook)
# Hugging Face's own variables, read where its cache is searched for weights.
HF_HUB_CACHE = "HF_HUB_CACHE"
HF_HOME = "HF_HOME"
HF_HUB_OFFLINE = "HF_HUB_OFFLINE"
