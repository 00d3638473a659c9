"""Runtime-checkable protocols of the component kinds; shapes are the contract."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # annotations only: `import dinotools` (which checks components against these) stays cheap
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
    """A mask tracker: steps one frame at a time; ``dinotools.pipeline.track_video`` drives it.

    - ``new_state()`` -> a fresh per-video state (the tracker itself holds none, so one tracker
      serves many videos); the state has ``next_index`` (the frame the next ``step`` is for).
    - ``encode(frames)``: ``frames`` a list of ``[H,W,3]`` uint8 RGB -> features ``[B,h,w,D]``
      (called from background threads, batches in order; must not touch the state).
    - ``step(state, features [h,w,D], frame_size (H, W), mask=None, *, return_probs=False,
      frame=None)`` -> a result with ``.index``, ``.labels [H,W]`` (ids exactly as given, 0 =
      background), ``.ids`` and, with ``return_probs``, ``.probs [M,H,W]``. ``mask [H,W]`` (ids, 0 =
      no information) makes the frame an anchor; ``frame`` is the pixels when ``takes_frames``.
    - ``amend(state, result, mask, *, return_probs=False, frame=None)`` -> the result with ``mask``
      applied to the frame just stepped (new objects found by ``--discover-every``).
    Optional: ``takes_frames`` (bool: ``step``/``amend`` need ``frame=``), ``device``, and for
    ``--resume`` ``max_context`` and ``mask_probs(state, mask) -> [h,w,M]``.
    """

    def new_state(self) -> Any: ...

    def encode(self, frames: Sequence[np.ndarray]) -> torch.Tensor: ...

    def step(self, state: Any, features: torch.Tensor, frame_size: Sequence[int],
             mask: Optional[np.ndarray] = None, *, return_probs: bool = False,
             frame: Optional[np.ndarray] = None) -> Any: ...

    def amend(self, state: Any, result: Any, mask: np.ndarray, *, return_probs: bool = False,
              frame: Optional[np.ndarray] = None) -> Any: ...


@runtime_checkable
class PointTracker(Protocol):
    """A point tracker: steps one frame at a time; ``dinotools.pipeline.track_points`` drives it.

    ``new_state(queries [N,3])`` (t, x, y per query) -> a per-video state with ``next_index``;
    ``encode(frames)`` as ``Tracker.encode``; ``step(state, features [h,w,D], frame_size)`` -> a
    result with ``.index``, ``.xy [N,2]`` (pixels, NaN before a query's frame) and ``.visible [N]``.
    """

    def new_state(self, queries: Any) -> Any: ...

    def encode(self, frames: Sequence[np.ndarray]) -> torch.Tensor: ...

    def step(self, state: Any, features: torch.Tensor, frame_size: Sequence[int]) -> Any: ...


def protocol_members(protocol: type) -> list:
    """The attributes and methods a protocol declares (what ``isinstance`` checks), sorted."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if callable(v) and (not n.startswith("_") or n == "__call__")}
    return sorted(names)


def missing_members(obj: Any, protocols: Sequence[type]) -> list:
    """The members of the closest of ``protocols`` that ``obj`` lacks ([] when it satisfies one)."""
    gaps = [[n for n in protocol_members(p) if not hasattr(obj, n)] for p in protocols]
    return min(gaps, key=len)


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
