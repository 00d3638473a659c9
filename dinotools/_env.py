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
REQUIRE_SAM2 = "DINOTOOLS_REQUIRE_SAM2"  # tests: with CI=true, fail (not skip) when SAM 2 is not installed
DINOV3_LOCATION = "DINOV3_LOCATION"  # local clone of the DINOv3 repository (torch.hub, as the notebook)
# Tests only: an emulated CUDA extension (csrc/emu/build.py --out) to load instead of dinotools._C_emu
# (.ci/cuda_emu.sh --mutations points it at each mutated build).
CUDA_EMU_LIB = "DINOTOOLS_CUDA_EMU_LIB"
# Hugging Face's own variables, read where its cache is searched for weights.
HF_HUB_CACHE = "HF_HUB_CACHE"
HF_HOME = "HF_HOME"
HF_HUB_OFFLINE = "HF_HUB_OFFLINE"
# OpenCV's variable for FFmpeg's own log level (read at the first capture/writer of a process).
OPENCV_FFMPEG_LOGLEVEL = "OPENCV_FFMPEG_LOGLEVEL"


def quiet_ffmpeg() -> None:
    """Silence FFmpeg's stderr messages (``moov atom not found``, decoder noise) unless the user set a
    level: dinotools reports what failed in one line. Must run before the process's first capture."""
    os.environ.setdefault(OPENCV_FFMPEG_LOGLEVEL, "-8")  # AV_LOG_QUIET
