"""Python front door of the compiled ``torch.ops.dinotools.topk_propagate`` operator."""
from __future__ import annotations

import torch

from dinotools import _ext
from dinotools.errors import InputError
from dinotools.ops.dense import check_shape

FEATURE_DTYPES = {"cpu": (torch.float32,), "cuda": (torch.float32, torch.float16, torch.bfloat16)}


def _check(current, context, context_probs, size, shape, topk, temperature) -> None:
    """Raise ``InputError`` naming the first bad argument (the C++ kernels repeat these checks)."""
    for name, x, dims in (("current", current, "[h,w,D]"), ("context", context, "[t,h,w,D]"),
                          ("context_probs", context_probs, "[t,h,w,M]")):
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{name} must be a tensor {dims}, got {type(x).__name__}")
        if x.dim() != len(dims.split(",")):
            raise InputError(f"{name} must be {dims}, got shape {tuple(x.shape)}")
    if context.shape[0] < 1:
        raise InputError("context must hold at least one frame, got t=0")
    if tuple(context.shape[1:]) != tuple(current.shape):
        raise InputError(f"context {tuple(context.shape)} does not match current {tuple(current.shape)}")
    if tuple(context_probs.shape[:3]) != tuple(context.shape[:3]):
        raise InputError(f"context_probs {tuple(context_probs.shape)} does not match context {tuple(context.shape)}")
    if context_probs.shape[3] < 1:
        raise InputError("context_probs must hold at least one object (M >= 1)")
    if not (current.device == context.device == context_probs.device):
        raise InputError(f"current ({current.device}), context ({context.device}) and context_probs "
                         f"({context_probs.device}) must be on one device")
    allowed = FEATURE_DTYPES.get(current.device.type, (torch.float32,))
    for name, x in (("current", current), ("context", context)):
        if x.dtype not in allowed:
            raise InputError(f"{name} must be one of {allowed} on {current.device.type}, got {x.dtype}")
    if current.dtype != context.dtype:
        raise InputError(f"current ({current.dtype}) and context ({context.dtype}) must share a dtype")
    if context_probs.dtype != torch.float32:
        raise InputError(f"context_probs must be float32, got {context_probs.dtype}")
    try:
        check_shape(shape)
    except ValueError as exc:
        raise InputError(f"shape: {exc}") from None
    if not size >= 0:
        raise InputError(f"size (a radius in patches) must be >= 0, got {size}")
    if isinstance(topk, bool) or int(topk) != topk or topk < 1:
        raise InputError(f"topk must be an integer >= 1, got {topk!r}")
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature}")


def fused_propagate(
    current: torch.Tensor,
    context: torch.Tensor,
    context_probs: torch.Tensor,
    *,
    size: float,
    shape: str,
    topk: int,
    temperature: float,
) -> torch.Tensor:
    """``current [h,w,D]``, ``context [t,h,w,D]``, ``context_probs [t,h,w,M]`` -> ``[h,w,M]`` float32.

    Same meaning as ``tracking.propagate`` with ``make_neighborhood_mask(h, w, size, shape)``:
    joint top-k over the t frames' neighbourhood candidates, every candidate equal to the k-th
    value kept, softmax(sim / temperature) over the survivors, rows renormalised. Features are
    float32 (CPU and CUDA) or float16/bfloat16 (CUDA, fp32 accumulation); inputs may be
    non-contiguous. Inference only: there is no autograd formula, so inputs must not require grad.
    """
    _ext.assert_has_ext()
    _check(current, context, context_probs, size, shape, topk, temperature)
    if current.device.type == "cuda" and not _ext.CUDA_BUILT:
        raise _ext.ExtensionMissingError(
            "dinotools._C was built without CUDA, so the fused operator cannot run on a GPU; "
            "rebuild with nvcc and a CUDA-enabled torch (DINOTOOLS_FORCE_CUDA=1 pip install "
            "--no-build-isolation -e .) or use propagator='torch'"
        )
    return torch.ops.dinotools.topk_propagate.default(
        current, context, context_probs, float(size), shape, int(topk), float(temperature)
    )


if _ext.HAS_EXT and hasattr(torch.ops.dinotools, "topk_propagate"):

    @torch.library.register_fake("dinotools::topk_propagate")
    def _topk_propagate_fake(current, context, context_probs, size, shape, topk, temperature):
        torch._check(current.dim() == 3 and context.dim() == 4 and context_probs.dim() == 4)
        torch._check(context_probs.shape[:3] == context.shape[:3])
        _, h, w, m = context_probs.shape
        return context_probs.new_empty((h, w, m), dtype=torch.float32)
