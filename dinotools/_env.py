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
WEIGHTS_DIR = "DINOTOOLS_WEIGHTS"  # folder searched for backbone weight files
DINOV3_LOCATION = "DINOV3_LOCATION"
# Tests only: an emulated CUDA extension (csrc/emu/build.py --out) to load instead of dinotools._C_emu
# (.ci/cuda_emu.sh --mutations points it at each mutated build).
CUDA_EMU_LIB = "DINOTOOLS_CUDA_EMU_LIB"  # local clone of the DINOv3 repository (torch.hub, as the notebook)
# Hugging Face's own variables, read where its cache is searched for weights.
HF_HUB_CACHE = "HF_HUB_CACHE"
HF_HOME = "HF_HOME"
HF_HUB_OFFLINE = "HF_HUB_OFFLINE"
