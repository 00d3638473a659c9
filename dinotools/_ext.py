"""Loads the compiled operator ``dinotools._C`` if it was built; records why not otherwise."""
from __future__ import annotations

import torch  # must precede dinotools._C: its registrars need libtorch loaded

from ._env import DISABLE_EXT, env_flag
from .errors import UserError

HAS_EXT = False  # dinotools._C imported and its operators registered
CUDA_BUILT = False  # the CUDA kernels were compiled into it
LOAD_ERROR = ""  # why HAS_EXT is False, for `python -m dinotools.run --info`

BUILD_HINT = (
    "build it with `pip install --no-build-isolation -e .` from the dinotools source tree "
    "(needs a C++ compiler; CUDA kernels also need nvcc and a CUDA-enabled torch, or set "
    "DINOTOOLS_FORCE_CUDA=1), or use propagator='torch'"
)


class ExtensionMissingError(UserError, RuntimeError):
    """The compiled operator (or its CUDA part) is not available in this installation."""


if env_flag(DISABLE_EXT):
    LOAD_ERROR = f"disabled by {DISABLE_EXT}=1"
else:
    try:
        from . import _C  # noqa: F401  (importing runs the TORCH_LIBRARY registrars)

        HAS_EXT = True
        CUDA_BUILT = bool(torch.ops.dinotools.cuda_built())
    except Exception as exc:  # noqa: BLE001 - ImportError, or an OSError from a torch ABI mismatch
        LOAD_ERROR = f"dinotools._C could not be loaded ({type(exc).__name__}: {exc})"


def assert_has_ext() -> None:
    """Raise ``ExtensionMissingError`` (with how to build) unless the fused operator is loaded."""
    if not HAS_EXT:
        raise ExtensionMissingError(f"the fused propagation operator is not available: {LOAD_ERROR}; {BUILD_HINT}")
    if not hasattr(torch.ops.dinotools, "topk_propagate"):
        raise ExtensionMissingError(
            f"dinotools._C has no topk_propagate operator (a stale build?); {BUILD_HINT}"
        )

