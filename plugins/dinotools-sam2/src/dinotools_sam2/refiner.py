"""The ``sam2`` refiner: SAM 2's image predictor prompted per object with its propagated mask, one id map."""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

import dinotools
from dinotools.errors import ConfigError, InputError
from dinotools.interfaces.params import Range, declare_params

from .loading import build_predictor

LOW_RES = 256  # SAM's mask-prompt resolution (the low-resolution logits of its mask decoder)


def box_of(mask: np.ndarray) -> np.ndarray:
    """``mask [H,W]`` bool (not empty) -> ``[4]`` float32 XYXY box, SAM's box prompt (inclusive pixel
    coordinates of the extreme pixels, as SAM's own ``batched_mask_to_box``)."""
    ys, xs = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return np.array([xs[0], ys[0], xs[-1], ys[-1]], dtype=np.float32)


def mask_logits(mask: np.ndarray, scale: float) -> np.ndarray:
    """``mask [H,W]`` bool -> ``[1,256,256]`` float32 logits, ``scale * (2 * coverage - 1)``.

    SAM 2 resizes the image to a square without keeping the aspect ratio, and its mask prompt is
    that square at 256x256, so the mask is resized the same way (area average: the fraction of
    each low-resolution cell the object covers).
    """
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    cover = F.interpolate(m, size=(LOW_RES, LOW_RES), mode="area")[0]
    return (scale * (2 * cover - 1)).numpy()


def merge(propagated: np.ndarray, refined: List[Optional[np.ndarray]], logits: List[Optional[np.ndarray]],
          channels: List[int]) -> np.ndarray:
    """One channel map from per-object refined masks; no channel is created or lost.

    ``propagated [H,W]`` channel indices (0 background); ``refined[i]``/``logits[i]`` the bool mask and
    float logits of object ``channels[i]`` (None or empty: keeps its propagated mask). A pixel
    claimed by several objects goes to the object the tracker put there if it is one of them,
    else to the highest logit (ties: the lower channel); a pixel nobody claims is background.
    An object left without pixels (all taken by others) gets its propagated mask back; those
    masks are disjoint, so restoring one never empties an object restored before it.
    """
    out = np.zeros_like(propagated)
    best = np.full(propagated.shape, -np.inf, dtype=np.float32)
    masks = []
    for c, mask, logit in zip(channels, refined, logits):
        own = propagated == c
        if mask is None or not mask.any():
            mask, logit = own, np.where(own, np.float32(0), np.float32(-np.inf))
        masks.append((c, mask, own))
        score = np.where(mask, logit, -np.inf).astype(np.float32)
        score[mask & own] = np.inf  # the tracker's own pixels win every contest
        take = score > best  # strict: on a tie the lower channel (earlier) keeps the pixel
        out[take], best[take] = c, score[take]
    changed = True
    while changed:  # at most one pass per object: each restore is final
        changed = False
        for c, _, own in masks:
            if not (out == c).any():
                out[own], changed = c, True
    return out


@declare_params("refiner sam2", logit_scale=Range(0, 100, lo_open=True, doc="propagated probabilities to SAM 2's "
                 "mask-prompt logits; beyond 100 the prompt is saturated, every pixel certain"))
class Sam2Refiner:
    """``refiner(frame [H,W,3] uint8, raw [h,w,M]) -> scores [M,H,W]`` (one-hot of the merged labels).

    Per frame: the ``base`` refiner's labels give each object's propagated mask; SAM 2's image
    predictor embeds the frame once (``set_image``) and is prompted per present object with the
    mask's box and its low-resolution mask logits (``multimask_output=False``); the masks are
    merged by ``merge``. An object absent from the propagated labels stays absent (SAM 2 is not
    asked to find it), so no id is created or lost.

    Weights as the ``sam2`` initializer (``model=`` HF id or path, ``checkpoint=``/``config=``), or
    ``predictor=``: any object with ``set_image(image)`` and ``predict(box=, mask_input=,
    multimask_output=, return_logits=)`` as ``SAM2ImagePredictor``. ``use_box``/``use_mask`` choose
    the prompts, ``logit_scale`` the mask prompt's magnitude (``mask_logits``).
    """

    name = "sam2"
    needs_frame = True

    def __init__(self, model: Optional[str] = None, *, checkpoint: Optional[str] = None, config: Optional[str] = None,
                 device: Optional[str] = None, predictor: Any = None, base: Any = "nearest", use_box: bool = True,
                 use_mask: bool = True, logit_scale: float = 10.0) -> None:
        if not (use_box or use_mask):
            raise ConfigError("the sam2 refiner needs a prompt: use_box and use_mask cannot both be false")
        if not logit_scale > 0:
            raise ConfigError(f"refiner parameter logit_scale must be > 0, got {logit_scale!r}")
        if predictor is None:
            predictor = build_predictor(model=model, checkpoint=checkpoint, config=config, device=device)
        elif model is not None or checkpoint is not None:
            raise ConfigError("pass either predictor= or SAM 2 weights (model= / checkpoint=), not both")
        for method in ("set_image", "predict"):
            if not callable(getattr(predictor, method, None)):
                raise ConfigError(f"predictor must have set_image() and predict(), got {type(predictor).__name__}")
        self.predictor = predictor
        self.base = dinotools.create_refiner(base) if isinstance(base, str) else base
        self.use_box, self.use_mask, self.logit_scale = bool(use_box), bool(use_mask), float(logit_scale)

    def channels(self, frame: np.ndarray, raw: torch.Tensor) -> torch.Tensor:
        """``[H,W]`` int64 channel indices (CPU) of the merged refined masks."""
        frame = np.asarray(frame.cpu() if isinstance(frame, torch.Tensor) else frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"the sam2 refiner needs the frame as [H,W,3] uint8 RGB, got {frame.shape} {frame.dtype}")
        propagated = _argmax(self.base(frame, raw)).cpu().numpy()  # [H,W]
        present = [c for c in range(1, raw.shape[-1]) if (propagated == c).any()]
        if not present:
            return torch.from_numpy(propagated)
        self.predictor.set_image(np.ascontiguousarray(frame))
        refined, logits = [], []
        for c in present:
            own = propagated == c
            masks, _, _ = self.predictor.predict(
                box=box_of(own) if self.use_box else None,
                mask_input=mask_logits(own, self.logit_scale) if self.use_mask else None,
                multimask_output=False, return_logits=True,
            )
            logit = np.asarray(masks, dtype=np.float32).reshape(own.shape)  # [1,H,W] -> [H,W]
            refined.append(logit > 0)  # SAM's mask threshold
            logits.append(logit)
        return torch.from_numpy(merge(propagated, refined, logits, present))

    def __call__(self, frame: np.ndarray, raw: torch.Tensor) -> torch.Tensor:
        """``scores [M,H,W]`` float on ``raw``'s device: one-hot of ``channels``."""
        labels = self.channels(frame, raw).to(raw.device)
        return F.one_hot(labels, raw.shape[-1]).permute(2, 0, 1).float()


def _argmax(scores: torch.Tensor) -> torch.Tensor:
    """First maximum over channels of ``scores [M,H,W]`` -> ``[H,W]`` long (ties: the lower channel)."""
    best, index = scores[0].clone(), torch.zeros(scores.shape[1:], dtype=torch.long, device=scores.device)
    for c in range(1, scores.shape[0]):
        index.masked_fill_(scores[c] > best, c)
        torch.maximum(best, scores[c], out=best)
    return index
