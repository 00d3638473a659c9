"""Built-in propagators: ``reference`` (dense oracle), ``torch`` (windowed), ``fused``, ``auto``.

Each is called as ``prop(current [h,w,D], context [t,h,w,D], context_probs [t,h,w,M], *, size,
shape, topk, temperature) -> [h,w,M]`` (see ``interfaces.Propagator``).
"""
from __future__ import annotations

import logging

import torch

from dinotools import _ext
from dinotools.ops.dense import make_neighborhood_mask, propagate
from dinotools.ops.window import window_propagate
from dinotools.interfaces.params import Range, declare_params

log = logging.getLogger(__name__)


class DensePropagator:
    """The notebook's dense formulation: O(h*w*t*h*w) memory. Kept as the oracle."""

    name = "reference"

    def __call__(self, current, context, context_probs, *, size, shape, topk, temperature):
        h, w = context_probs.shape[1:3]
        mask = make_neighborhood_mask(h, w, float(size), shape, device=str(current.device))
        if current.dtype in (torch.float16, torch.bfloat16):  # CUDA --dtype: scored in fp32
            current, context = current.float(), context.float()
        return propagate(current, context, context_probs, mask, topk, temperature)


BLOCK = Range(1, 256, integer=True, doc="query tile side in patches; memory grows with its square, and beyond "
              "256 (the grid of a 4096-pixel side) a tile is larger than any frame's grid")


@declare_params("propagator torch", block=BLOCK)
class WindowPropagator:
    """Pure PyTorch, tiles of queries against their window: O(h*w*t*window) memory."""

    name = "torch"

    def __init__(self, block: int = 8) -> None:
        self.block = block

    def __call__(self, current, context, context_probs, *, size, shape, topk, temperature):
        return window_propagate(
            current, context, context_probs, size=size, shape=shape, topk=topk, temperature=temperature,
            block=self.block,
        )


class FusedPropagator:
    """The compiled top-k neighbourhood operator (C++ on CPU, CUDA on GPU); O(h*w*t*window) work.

    Raises ``_ext.ExtensionMissingError`` (saying how to build it) when ``dinotools._C`` is missing.
    """

    name = "fused"

    def __init__(self) -> None:
        _ext.assert_has_ext()

    def __call__(self, current, context, context_probs, *, size, shape, topk, temperature):
        from dinotools.ops.fused import fused_propagate

        return fused_propagate(
            current, context, context_probs, size=size, shape=shape, topk=topk, temperature=temperature
        )


def fused_available() -> bool:
    """True when the compiled operator exists and implements propagation."""
    return _ext.HAS_EXT and hasattr(torch.ops.dinotools, "topk_propagate")


def can_use_fused(tensor: torch.Tensor) -> bool:
    """Whether the fused operator can run on ``tensor``'s device; logs why not at debug level."""
    if not fused_available():
        log.debug("fused operator unavailable: %s", _ext.LOAD_ERROR or "dinotools._C has no topk_propagate")
        return False
    if tensor.device.type == "cuda" and not _ext.CUDA_BUILT:
        log.debug("fused operator built without CUDA; CUDA tensors use the PyTorch propagator")
        return False
    return tensor.device.type in ("cpu", "cuda")


class AutoPropagator:
    """Per call: the fused operator where it can run on the inputs' device, else the PyTorch one."""

    name = "auto"

    def __init__(self, **kwargs) -> None:
        self.fused = FusedPropagator()
        self.fallback = WindowPropagator(**kwargs)

    def __call__(self, current, context, context_probs, **params):
        impl = self.fused if can_use_fused(current) else self.fallback
        return impl(current, context, context_probs, **params)


@declare_params("propagator auto", block=BLOCK)
def auto_propagator(**kwargs):
    """The fastest available propagator: ``fused`` when built (for the inputs' device), else ``torch``."""
    if not fused_available():
        log.debug("propagator auto: fused operator unavailable (%s); using the PyTorch one",
                  _ext.LOAD_ERROR or "dinotools._C has no topk_propagate")
        return WindowPropagator(**kwargs)
    if _ext.CUDA_BUILT:
        log.debug("propagator auto: using the fused operator (CPU and CUDA)")
        return FusedPropagator()
    log.debug("propagator auto: fused operator on CPU; CUDA inputs would use the PyTorch one")
    return AutoPropagator(**kwargs)
