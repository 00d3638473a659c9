"""The notebook's label-propagation tracker, as composable state + step.

Defaults reproduce DINOv3's ``segmentation_tracking.ipynb``: context = the mask frame(s) always
+ the last 7 raw predictions, circle neighbourhood of radius 12, top-k 5, temperature 0.2,
short side 960, mask downsampled with ``nearest-exact``, predictions upsampled with ``nearest``,
per-channel min-max, argmax (the ``nearest`` refiner; any refiner can replace it).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dinotools.errors import ConfigError, InputError
from dinotools.interfaces.params import Range, declare_params
from dinotools.io.masks import object_ids
from dinotools.ops.dense import SHAPES
from dinotools.ops.devices import resolve_device
from dinotools.ops.preprocess import preprocess as default_preprocess
from dinotools.refiners.base import check_scores, first_argmax
from dinotools.registry import create_backbone, create_propagator, create_refiner
from dinotools.trackers.ids import channel_lut, label_dtype
from dinotools.trackers.state import ContextFrame, FrameResult, TrackState

log = logging.getLogger(__name__)

UPSAMPLE_MODES = ("nearest", "bilinear")
DOWNSAMPLE_MODES = ("nearest-exact", "nearest")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


# The numeric parameters' ranges (checked on creation; dinotools.runs.limits checks the command line's values with
# the same declarations, plus --topk against the neighbourhood's cells).
MAX_SHORT_SIDE = 4096  # (4096/16)^2 * aspect patches per frame: beyond any GPU's memory for a ViT
TRACKER_RANGES = dict(
    max_context=Range(0, 1000, integer=True, doc="recent predictions kept; each costs one frame of features, and "
                      "1000 frames of context are beyond any GPU's memory at the default size"),
    size=Range(0, 256, doc="neighbourhood radius in patches; beyond 256 (the grid of the largest --short-side, "
               "4096 px) the window's cells scored per pixel no longer fit in memory"),
    topk=Range(1, integer=True, doc="candidates kept per pixel; at most the (max_context + 1) x window cells a "
               "pixel has (checked against size and shape)"),
    temperature=Range(1e-4, 10, doc="softmax temperature over cosine similarities (in [-1, 1]); below 1e-4 the "
                      "softmax is already an argmax (a gap of 0.01 weighs e^-100) and overflows, above 10 the "
                      "candidates weigh within 22% of each other whatever their similarity"),
    short_side=Range(32, MAX_SHORT_SIDE, integer=True, optional=True, doc="frames resized to this short side "
                     "(pixels); below 32 a frame is one patch high, above 4096 its features fit in no GPU"),
)


@declare_params("tracker label-propagation", **TRACKER_RANGES)
class LabelPropagationTracker:
    """Tracks the objects of given masks by propagating their labels through patch features.

    Args:
        backbone: registered name or an object with ``patch_size``, ``embed_dim``, ``mean``,
            ``std`` and ``__call__([B,3,H,W]) -> [B,h,w,D]``.
        propagator: registered name (``auto``, ``torch``, ``reference``, ``fused``) or a callable.
        max_context: recent predictions kept besides the mask frames (notebook: 7).
        size, shape: neighbourhood radius (in patches) and ``circle``/``square``.
        topk, temperature: candidates kept (ties with the k-th kept) and softmax temperature.
        short_side: frames resized so their short side is this (rounded up to the patch size);
            ``None`` keeps the frame size (rounded up).
        mask_downsample: ``nearest-exact`` (notebook) or ``nearest``.
        upsample: ``nearest`` (notebook, the default) or ``bilinear`` (paper's J&F protocol): the
            refiner of that name.
        refiner: a registered refiner name (``nearest``, ``bilinear``, ``guided``, plugins) or an
            object ``refiner(frame [H,W,3] uint8, raw [h,w,M]) -> scores [M,H,W]`` whose per-pixel
            first argmax gives the labels (``dinotools.interfaces.Refiner``); give it or ``upsample``.
        refiner_kwargs: passed to ``create_refiner`` when ``refiner`` is a name.
        device: where features and propagation live (``auto``: CUDA when available, else CPU).
        backbone_kwargs: passed to ``create_backbone`` when ``backbone`` is a name.
    """

    def __init__(
        self,
        backbone="baseline",
        propagator="auto",
        *,
        max_context: int = 7,
        size: float = 12,
        shape: str = "circle",
        topk: int = 5,
        temperature: float = 0.2,
        short_side: Optional[int] = 960,
        mask_downsample: str = "nearest-exact",
        upsample: Optional[str] = None,
        device="auto",
        backbone_kwargs: Optional[dict] = None,
        refiner=None,
        refiner_kwargs: Optional[dict] = None,
    ) -> None:
        _check(shape in SHAPES, f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
        _check(mask_downsample in DOWNSAMPLE_MODES, f"mask_downsample must be one of {DOWNSAMPLE_MODES}")
        _check(upsample is None or upsample in UPSAMPLE_MODES,
               f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.device = resolve_device(device)  # auto: CUDA when available, else CPU
        if isinstance(backbone, str):
            backbone = create_backbone(backbone, device=str(self.device), **(backbone_kwargs or {}))
        self.backbone = backbone
        self.propagator = create_propagator(propagator) if isinstance(propagator, str) else propagator
        self.feature_dtype = feature_dtype(self.backbone, self.device)
        self.max_context = max_context
        self.size, self.shape, self.topk, self.temperature = float(size), shape, topk, temperature
        self.short_side = short_side
        self.mask_downsample = mask_downsample
        self.refiner = _make_refiner(refiner, upsample, refiner_kwargs)
        self.upsample = upsample

    @property
    def takes_frames(self) -> bool:
        """Whether ``step`` needs the frame's pixels (``frame=``): the refiner reads them."""
        return getattr(self.refiner, "needs_frame", True)

    # features -----------------------------------------------------------------------------
    def preprocess(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """``B x [H,W,3]`` uint8 -> ``[B,3,H',W']`` normalised, on the tracker's device."""
        batch = np.stack(frames) if not isinstance(frames, np.ndarray) else frames
        custom = getattr(self.backbone, "preprocess", None)
        if custom is not None:
            return custom(batch, short_side=self.short_side, device=self.device)
        return default_preprocess(
            batch, short_side=self.short_side, multiple=self.backbone.patch_size,
            mean=self.backbone.mean, std=self.backbone.std, device=self.device,
        )

    @torch.inference_mode()
    def encode(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """``B x [H,W,3]`` uint8 frames -> ``[B,h,w,D]`` features, L2-normalised per patch (in fp32), kept
        in ``self.feature_dtype``: float32, or the backbone's bf16/fp16 on CUDA (half the context bytes)."""
        feats = self.backbone(self.preprocess(frames))
        return F.normalize(feats.float(), p=2, dim=-1).to(self.feature_dtype)

    # state and step -----------------------------------------------------------------------
    def new_state(self) -> TrackState:
        return TrackState(max_context=self.max_context)

    @torch.inference_mode()
    def step(
        self,
        state: TrackState,
        features: torch.Tensor,
        frame_size,
        mask: Optional[np.ndarray] = None,
        *,
        return_probs: bool = False,
        frame: Optional[np.ndarray] = None,
    ) -> FrameResult:
        """Track one frame. ``features [h,w,D]`` (from ``encode``), ``frame_size`` (H, W), ``frame
        [H,W,3]`` uint8 RGB (needed when ``takes_frames``: the refiner reads the pixels).

        ``mask [H,W]`` (ids, 0 = no information) makes this frame a permanent anchor: its
        non-zero pixels override the propagation, an id seen for the first time gets a new
        channel, and an id present in the mask exists on this frame only where the mask has it.
        """
        index = state.next_index
        state.next_index += 1
        frame_size = tuple(int(s) for s in frame_size)
        has_mask = mask is not None and bool(object_ids(mask))
        if not state.started:
            if not has_mask:  # no object yet: nothing to track on this frame
                return FrameResult(index, np.zeros(frame_size, dtype=np.uint8), ())
            return self._start(state, features, mask, index, return_probs)
        if features.shape[:2] != state.grid:
            raise InputError(
                f"frame {index} gives a {features.shape[0]}x{features.shape[1]} patch grid but the video "
                f"started with {state.grid[0]}x{state.grid[1]}: all frames must have the same size"
            )
        ctx_feats, ctx_probs = state.context()  # [t,h,w,D], [t,h,w,M]
        raw = self.propagator(
            features, ctx_feats, ctx_probs,
            size=self.size, shape=self.shape, topk=self.topk, temperature=self.temperature,
        )  # [h,w,M]
        probs, labels = self.decode(raw, state.frame_size, state.ids, frame,
                                    return_probs=return_probs and not has_mask)
        if has_mask:
            raw, labels = self.apply_mask(state, raw, labels, mask)
            state.anchors.append(ContextFrame(features, raw))
            if return_probs:
                probs, _ = self.decode(raw, state.frame_size, state.ids, frame)
        else:
            state.last = ContextFrame(features, raw)
            state.push_recent(state.last)
        return FrameResult(index, labels, tuple(state.ids), probs if return_probs else None,
                           raw if return_probs else None)

    def _start(self, state, features, mask, index, return_probs) -> FrameResult:
        state.frame_size = tuple(mask.shape)
        state.grid = tuple(features.shape[:2])
        state.add_ids(list(object_ids(mask)))
        probs = self.mask_probs(state, mask)  # [h,w,M]
        state.anchors.append(ContextFrame(features, probs))
        labels = mask.astype(label_dtype(state.ids))
        full = None
        if return_probs:  # the notebook's frame-0 probabilities: one-hot at mask resolution
            lut = channel_lut(state.ids, int(mask.max()))
            full = F.one_hot(torch.from_numpy(lut[mask]), state.num_channels).permute(2, 0, 1).float()
        return FrameResult(index, labels, tuple(state.ids), full, probs if return_probs else None)

    def mask_probs(self, state: TrackState, mask: np.ndarray) -> torch.Tensor:
        """``[H,W]`` ids -> ``[h,w,M]`` one-hot probabilities at the patch grid, in ``state``'s
        channels (ids not tracked count as background), downsampled as the first mask is."""
        return F.one_hot(self._downsample(state, mask), state.num_channels).float()

    def _downsample(self, state: TrackState, mask: np.ndarray) -> torch.Tensor:
        """``[H,W]`` ids -> ``[h,w]`` long channel indices at the patch grid."""
        lut = channel_lut(state.ids, int(mask.max()))
        ch = torch.from_numpy(lut[mask]).float()[None, None]  # [1,1,H,W]
        return F.interpolate(ch, size=state.grid, mode=self.mask_downsample)[0, 0].long().to(self.device)

    def decode(self, raw: torch.Tensor, frame_size, ids, frame: Optional[np.ndarray] = None, *,
               return_probs: bool = True) -> tuple:
        """``raw [h,w,M]`` -> (refined ``probs [M,H,W]`` or None, ``labels [H,W]`` object ids).

        ``labels`` is the first argmax of the refiner's scores. Without ``return_probs`` a refiner
        with a ``channels`` method (``nearest``) gives them without full-resolution scores.
        """
        size = tuple(int(s) for s in frame_size)
        if frame is None:
            if self.takes_frames:
                raise ConfigError(f"refiner {_name(self.refiner)} reads the frame's pixels: pass frame= to "
                                  f"step()/amend() (dinotools.pipeline.track_video does)")
            frame = size
        elif tuple(frame.shape[:2]) != size:
            raise InputError(f"frame is {frame.shape[1]}x{frame.shape[0]} but the outputs are {size[1]}x{size[0]}")
        fast = getattr(self.refiner, "channels", None)
        if return_probs or fast is None:
            probs = check_scores(self.refiner(frame, raw), raw, size, _name(self.refiner))
            channel = first_argmax(probs).cpu().numpy()
        else:
            probs, channel = None, fast(frame, raw).cpu().numpy()
        lut = np.array([0, *ids], dtype=label_dtype(ids))
        return probs, lut[channel]

    def apply_mask(self, state: TrackState, raw: torch.Tensor, labels: np.ndarray, mask: np.ndarray):
        """Override ``raw [h,w,M]`` and ``labels [H,W]`` with a mask given on this frame."""
        given = object_ids(mask)
        state.add_ids([i for i in given if i not in state.ids])
        raw = F.pad(raw, (0, state.num_channels - raw.shape[-1]))
        cols = torch.tensor([1 + state.ids.index(i) for i in given], device=raw.device)
        channels = self._downsample(state, mask)  # [h,w]
        inside = channels > 0
        # An id of the mask exists only where the mask puts it: its mass elsewhere goes to background.
        raw[..., 0] += raw[..., cols].sum(-1) * ~inside
        raw[..., cols] = 0
        raw[inside] = F.one_hot(channels[inside], state.num_channels).float()
        labels = labels.astype(label_dtype(state.ids))
        labels[np.isin(labels, given)] = 0
        labels[mask != 0] = mask[mask != 0]
        return raw, labels

    def amend(self, state: TrackState, result: FrameResult, mask: np.ndarray, *, return_probs: bool = False,
              frame: Optional[np.ndarray] = None):
        """Apply ``mask`` to the frame just stepped (discovery): it becomes an anchor (``frame`` as in ``step``)."""
        pushed = state.last  # the prediction the last step pushed to the recent queue (not the pixels)
        if pushed is None:
            raise RuntimeError("amend() must follow a step() without mask")
        if state.recent and state.recent[-1] is pushed:
            state.recent.pop()
        state.last = None
        raw, labels = self.apply_mask(state, pushed.probs, result.labels, mask)
        state.anchors.append(ContextFrame(pushed.features, raw))
        probs = self.decode(raw, state.frame_size, state.ids, frame)[0] if return_probs else None
        return FrameResult(result.index, labels, tuple(state.ids), probs, raw if return_probs else None)


def _make_refiner(refiner, upsample: Optional[str], kwargs: Optional[dict]):
    """The tracker's refiner from ``refiner=`` (name or object) or the older ``upsample=`` (a name)."""
    if refiner is None:
        refiner = upsample or "nearest"
    elif upsample is not None and refiner != upsample:
        raise ConfigError(f"give either upsample={upsample!r} or refiner={_name(refiner)}, not both")
    if isinstance(refiner, str):
        return create_refiner(refiner, **(kwargs or {}))
    if kwargs:
        raise ConfigError("refiner_kwargs apply to a refiner given by name; this refiner is already built")
    if not callable(refiner):
        raise ConfigError(f"refiner must be a registered name or a callable refiner(frame, raw), "
                          f"got {type(refiner).__name__}")
    return refiner


def _name(refiner) -> str:
    return repr(refiner) if isinstance(refiner, str) else repr(getattr(refiner, "name", type(refiner).__name__))


def feature_dtype(backbone, device: torch.device) -> torch.dtype:
    """Dtype the tracker keeps features and context in: the backbone's bf16/fp16 on CUDA, else float32
    (the exact, notebook-identical default; CPU propagation kernels are fp32)."""
    dtype = getattr(backbone, "dtype", torch.float32)
    return dtype if device.type == "cuda" and dtype in (torch.bfloat16, torch.float16) else torch.float32
