"""Runtime-checkable protocols of the component kinds; shapes are the contract."""
from __future__ import annotations

from typing import (
    Any,
    Iterable,
    Iterator,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    runtime_checkable,
)

import numpy as np
import torch


@runtime_checkable
class Backbone(Protocol):
    """Patch-feature extractor.

    ``backbone(images)``: ``images [B,3,H,W]`` float, already normalised with ``mean``/``std``,
    H and W multiples of ``patch_size`` -> features ``[B, H/p, W/p, D]`` with ``D = embed_dim``.
    The tracker L2-normalises the features itself. An optional ``preprocess(frames)`` method
    (``[B,H,W,3] uint8`` -> normalised ``[B,3,H',W']``) replaces the tracker's default one.
    """

    patch_size: int
    embed_dim: int
    mean: Sequence[float]
    std: Sequence[float]

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Propagator(Protocol):
    """Label propagation over a local neighbourhood, as the notebook's ``propagate``.

    ``current [h,w,D]``, ``context [t,h,w,D]`` (L2-normalised), ``context_probs [t,h,w,M]``
    -> ``[h,w,M]`` float32: for each query, softmax(sim / temperature) over the candidates of
    its neighbourhood in all t frames whose similarity is >= the k-th largest (ties kept).
    """

    def __call__(
        self,
        current: torch.Tensor,
        context: torch.Tensor,
        context_probs: torch.Tensor,
        *,
        size: float,
        shape: str,
        topk: int,
        temperature: float,
    ) -> torch.Tensor: ...


@runtime_checkable
class MaskInitializer(Protocol):
    """Gives the masks a video starts from (and, for some, masks proposed later).

    ``initializer(frame_index, frame)`` -> ``[H,W]`` integer id map (0 = background) for that
    frame, or ``None`` when it has no mask for it. ``frame`` is ``[H,W,3] uint8`` RGB.
    """

    def __call__(self, frame_index: int, frame: np.ndarray) -> Optional[np.ndarray]: ...


@runtime_checkable
class Tracker(Protocol):
    """Per-video tracking: ``track(frames, first_mask)`` yields one ``FrameResult`` per frame."""

    def track(
        self,
        frames: Iterable[np.ndarray],
        first_mask: Optional[np.ndarray] = None,
        *,
        masks: Optional[Mapping[int, np.ndarray]] = None,
        return_probs: bool = False,
    ) -> Iterator[Any]: ...


@runtime_checkable
class Refiner(Protocol):
    """Patch-grid probabilities -> full-resolution scores whose per-pixel argmax gives the labels.

    ``refiner(frame, raw)``: ``frame [H,W,3] uint8`` RGB (numpy or torch), ``raw [h,w,M]`` float
    (channel 0 background, on the tracker's device) -> ``scores [M,H,W]`` float on ``raw``'s
    device; the label of a pixel is the FIRST channel holding its maximum score. Optional:
    ``needs_frame = False`` (only the frame's size is read; an ``(H, W)`` pair may then be passed
    instead of the frame), and ``channels(frame, raw) -> [H,W]`` integer tensor, the argmax
    computed without building the scores (the tracker uses it when no probabilities are asked for).
    """

    def __call__(self, frame: Any, raw: torch.Tensor) -> torch.Tensor: ...
