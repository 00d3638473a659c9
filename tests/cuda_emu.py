"""The emulated CUDA device of the tests: ``dinotools._C_emu`` (``python csrc/emu/build.py``)."""
from __future__ import annotations

import zlib
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch

from dinotools._env import CUDA_EMU_LIB, env_str

SCHEDULES = ("forward", "reverse", "random")
LOAD_ERROR = ""
try:
    if env_str(CUDA_EMU_LIB):
        torch.ops.load_library(env_str(CUDA_EMU_LIB))
    else:
        import dinotools._C_emu  # noqa: F401  (importing runs the TORCH_LIBRARY registrars)
    AVAILABLE = hasattr(torch.ops.dinotools_emu, "topk_propagate")
except Exception as exc:  # noqa: BLE001 - ImportError, or an OSError from a stale build
    AVAILABLE = False
    LOAD_ERROR = f"{type(exc).__name__}: {exc}"
SKIP_REASON = (f"dinotools._C_emu not built ({LOAD_ERROR or 'no emulated op'}): run `python csrc/emu/build.py` "
               "or .ci/cuda_emu.sh")

if AVAILABLE:
    ops = torch.ops.dinotools_emu

    @torch.library.register_fake("dinotools_emu::topk_propagate")
    def _fake(current, context, context_probs, size, shape, topk, temperature):
        _, h, w, m = context_probs.shape
        return context_probs.new_empty((h, w, m), dtype=torch.float32)


def use_schedule(name: str, nodeid: str) -> None:
    """Select a schedule; the random one is seeded from the test's id (reproducible per test)."""
    if not AVAILABLE:
        pytest.skip(SKIP_REASON)
    torch.ops.dinotools_emu.set_schedule(name, zlib.crc32(nodeid.encode()))


@dataclass(frozen=True)
class OpDevice:
    """Where an operator test runs: tensors go to ``storage``; ``op`` is the operator to call."""

    name: str  # "cpu", "cuda", "cuda-emu-forward", ...
    storage: str

    @property
    def emulated(self) -> bool:
        return self.name.startswith("cuda-emu")

    @property
    def op(self):
        return torch.ops.dinotools_emu.topk_propagate.default if self.emulated else torch.ops.dinotools.topk_propagate.default

    def to(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.storage)

    def propagate(self, current, context, context_probs, *, size, shape, topk, temperature):
        """The fused operator as the front door calls it (emulated: the CUDA binding, unchanged)."""
        if not self.emulated:
            from dinotools.ops.fused import fused_propagate

            return fused_propagate(current, context, context_probs, size=size, shape=shape, topk=topk,
                                   temperature=temperature)
        return self.op(current, context, context_probs, float(size), shape, int(topk), float(temperature))


def op_devices(half: bool = False, known_bug: str = "") -> list:
    """pytest params: cpu (not with ``half``: fp32 only), cuda when present, the three emulated
    schedules. ``known_bug``: the CUDA kernel's devices are expected to fail, strictly, for that reason."""
    devs = [] if half else [OpDevice("cpu", "cpu")]
    if torch.cuda.is_available():
        devs.append(OpDevice("cuda", "cuda"))
    devs += [OpDevice(f"cuda-emu-{s}", "cpu") for s in SCHEDULES]
    bug = [pytest.mark.xfail(strict=True, reason=known_bug)] if known_bug else []
    return [pytest.param(d, id=d.name, marks=bug if d.name != "cpu" else []) for d in devs]


@contextmanager
def activated(dev: OpDevice, nodeid: str):
    """Fixture body: skip emulated devices without the build; for them select the schedule and turn
    on guarded, NaN-poisoned global memory (checked after every launch) for the test."""
    if not dev.emulated:
        yield dev
        return
    use_schedule(dev.name.removeprefix("cuda-emu-"), nodeid)
    torch.ops.dinotools_emu.set_global_guards(True)
    try:
        yield dev
    finally:
        torch.ops.dinotools_emu.set_global_guards(False)
