"""The one place environment variables are read."""
import os
import signal


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
# Tests only: SIGKILL this process when it reaches the named phase (``kill_point``), to check what a
# kill at each phase boundary leaves and that ``--resume`` completes it (tests/test_resume.py,
# benchmarks/audit_phases.py). Phases: ``save:<file name>`` while that file is written (its temp
# file complete, not yet renamed into place), ``exports`` between the last label PNG and the
# exports, ``finish`` after the exports and report, before the run record is removed.
TEST_KILL_AT = "DINOTOOLS_TEST_KILL_AT"
_KILL_AT = os.environ.get(TEST_KILL_AT, "")  # read once: the hook costs one comparison when unset
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


def kill_point(phase: str) -> None:
    """Test hook: SIGKILL this process now if ``DINOTOOLS_TEST_KILL_AT`` names ``phase`` (see above)."""
    if _KILL_AT and _KILL_AT == phase:
        os.kill(os.getpid(), signal.SIGKILL)
