"""Loads the compiled operator ``dinotools._C`` if it was built; records why not otherwise."""
from __future__ import annotations

import importlib

import torch  # must precede dinotools._C: its registrars need libtorch loaded

from dinotools._env import CPU_ISA, DISABLE_EXT, env_flag, env_str
from dinotools.errors import ConfigError, UserError

HAS_EXT = False  # dinotools._C imported and its operators registered
CUDA_BUILT = False  # the CUDA kernels were compiled into it
LOAD_ERROR = ""  # why HAS_EXT is False, for `python -m dinotools.run --info`
ISA_ERROR = ""  # a DINOTOOLS_CPU_ISA this CPU cannot run: raised when the fused operator is used

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
        # importing runs the TORCH_LIBRARY registrars; by name, since import-linter sees no .py for it and
        # would read `import dinotools._C` as an import of the package root (which sits above every layer)
        importlib.import_module("dinotools._C")

        HAS_EXT = True
        CUDA_BUILT = bool(torch.ops.dinotools.cuda_built())
    except Exception as exc:  # noqa: BLE001 - ImportError, or an OSError from a torch ABI mismatch
        LOAD_ERROR = f"dinotools._C could not be loaded ({type(exc).__name__}: {exc})"


def cpu_isas(layout_checks: bool = False) -> list[str]:
    """Instruction sets the CPU kernel can use on this machine, best first (``[]`` without the extension).

    ``layout_checks`` adds the test-only ``avx512-layout``: the AVX-512 path's source and tile shape
    compiled for the baseline instruction set, so a CPU without AVX-512 can still check its logic.
    """
    if not HAS_EXT or not hasattr(torch.ops.dinotools, "cpu_isas"):
        return []
    return list(torch.ops.dinotools.cpu_isas(layout_checks))


def cpu_isa() -> str:
    """The instruction set the CPU kernel uses now (``""`` without the extension)."""
    return str(torch.ops.dinotools.cpu_isa()) if cpu_isas() else ""


def set_cpu_isa(name: str) -> None:
    """Make the CPU kernel use ``name`` (one of ``cpu_isas(True)``, or ``"auto"`` for the best)."""
    choices = cpu_isas(layout_checks=True)
    if name != "auto" and name not in choices:
        raise ConfigError(f"CPU instruction set {name!r} is not available here; choose one of "
                          f"{', '.join(choices + ['auto'])}")
    torch.ops.dinotools.cpu_set_isa(name)


def cpu_threads_probe() -> int:
    """Threads the CPU kernel actually runs on now: one tiny call with enough rows for every torch
    thread, then the kernel's own count (1 means a build without OpenMP, whatever torch says)."""
    if not cpu_isas():
        return 0
    rows = 4 * torch.get_num_threads()  # the kernel hands out work items of 4 query rows
    cur, ctx = torch.zeros(rows, 2, 8), torch.zeros(1, rows, 2, 8)
    probs = torch.full((1, rows, 2, 1), 1.0)
    torch.ops.dinotools.topk_propagate(cur, ctx, probs, 1.0, "square", 1, 1.0)
    return int(torch.ops.dinotools.cpu_threads_used())


if HAS_EXT and env_str(CPU_ISA):
    try:
        set_cpu_isa(env_str(CPU_ISA).strip().lower())
    except ConfigError as exc:
        ISA_ERROR = f"{CPU_ISA}: {exc}"


def assert_has_ext() -> None:
    """Raise ``ExtensionMissingError`` (with how to build) unless the fused operator is loaded."""
    if not HAS_EXT:
        raise ExtensionMissingError(f"the fused propagation operator is not available: {LOAD_ERROR}; {BUILD_HINT}")
    if not hasattr(torch.ops.dinotools, "topk_propagate"):
        raise ExtensionMissingError(
            f"dinotools._C has no topk_propagate operator (a stale build?); {BUILD_HINT}"
        )
    if ISA_ERROR:  # never run another instruction set than the one asked for
        raise ConfigError(ISA_ERROR)

