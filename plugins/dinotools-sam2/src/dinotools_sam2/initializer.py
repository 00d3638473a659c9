"""The ``sam2`` mask initializer: SAM 2 automatic masks on a frame -> one dinotools id map."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from dinotools.errors import InputError
from dinotools.interfaces.params import Range, declare_params

from .idmap import RANK_BY, records_to_id_map
from .loading import build_generator


def _flag(value: Any, name: str) -> bool:
    """A bool setting; also the strings ``--init-arg use_m2m=false`` gives (a non-empty str is truthy)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return text in ("true", "1", "yes")
    return bool(value)


def _share(doc: str) -> Range:
    return Range(0, 1, doc=doc)


@declare_params(
    "initializer sam2",
    min_area=Range(0, integer=True, doc="masks smaller than this (pixels) are dropped"),
    max_objects=Range(1, 255, integer=True, doc="objects kept; the indexed PNG outputs hold ids up to 255"),
    max_hole_area=Range(0, integer=True, doc="holes up to this area (pixels) are filled"),
    points_per_side=Range(1, 256, integer=True, optional=True, doc="prompt grid per side (None: point_grids); "
                          "256^2 prompts already take minutes per frame"),
    points_per_batch=Range(1, 4096, integer=True, doc="prompts per SAM 2 forward; memory grows with it"),
    pred_iou_thresh=_share("masks of a lower predicted IoU (in [0, 1]) are dropped; above 1 every mask is"),
    stability_score_thresh=_share("masks less stable than this (an IoU, in [0, 1]) are dropped"),
    stability_score_offset=Range(0, 20, lo_open=True, doc="logit offset of the stability score; beyond 20 "
                                 "the sigmoid saturates and every mask is unstable"),
    mask_threshold=Range(-20, 20, doc="logit threshold of a mask's pixels; beyond +-20 every pixel is in or out"),
    box_nms_thresh=_share("box IoU above which the lower-scored mask is dropped"),
    crop_n_layers=Range(0, 4, integer=True, doc="crop layers (each has 4x the crops of the previous: 4 is 340 "
                        "crops per frame)"),
    crop_nms_thresh=_share("box IoU above which a mask of another crop is dropped"),
    crop_overlap_ratio=Range(0, 1, hi_open=True, doc="overlap of neighbouring crops, a share of the crop"),
    crop_n_points_downscale_factor=Range(1, 16, integer=True, doc="prompt grid of layer n divided by this^n"),
    min_mask_region_area=Range(0, integer=True, doc="SAM's post-processing: regions smaller than this removed"),
)
class Sam2AutomaticInitializer:
    """``MaskInitializer`` running SAM 2's ``SAM2AutomaticMaskGenerator`` ("segment everything").

    ``init(frame_index, frame [H,W,3] uint8 RGB)`` (also callable directly) -> ``[H,W]`` int32 id
    map, 0 = background, ids 1..N ranked best first (see ``idmap.records_to_id_map``), or None
    for a frame not in ``frames``. SAM 2 runs on every answered call, so a tracker should ask
    only on the frames it needs (the first one, or every N frames for discovery).

    Weights (one of):
      model: a Hugging Face id (``facebook/sam2.1-hiera-{tiny,small,base-plus,large}``, needs
        huggingface_hub) or a checkpoint path.
      checkpoint / config: a ``.pt`` file and a config name of the sam2 package
        (``configs/sam2.1/sam2.1_hiera_l.yaml``); the config is inferred for official file names.
      generator: any object with ``generate(image [H,W,3] uint8) -> list[dict]`` (SAM 2's record
        format, ``segmentation`` as an ``[H,W]`` bool array); no SAM 2 needed.
      random_weights=True with config: the real SAM 2 model, randomly initialised (tests, timing).
    device: where SAM 2 runs; default cuda when available, else cpu.
    frames: frame indices to answer for (None: every call).
    min_area, max_objects, max_hole_area, rank_by: the id-map rules (``records_to_id_map``);
      ``rank_by="area"`` keeps whole objects over their parts.
    The remaining keyword arguments are ``SAM2AutomaticMaskGenerator``'s, with its defaults
    (``output_mode`` is fixed to ``binary_mask``, which the id map needs).
    """

    def __init__(
        self,
        model: Optional[str] = None,
        *,
        checkpoint: Optional[str] = None,
        config: Optional[str] = None,
        device: Optional[str] = None,
        generator: Any = None,
        random_weights: bool = False,
        frames: Optional[Sequence[int]] = None,
        min_area: int = 200,
        max_objects: int = 255,
        max_hole_area: int = 200,
        rank_by: str = "quality",
        points_per_side: Optional[int] = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: Optional[List[np.ndarray]] = None,
        min_mask_region_area: int = 0,
        use_m2m: bool = False,
        multimask_output: bool = True,
    ) -> None:
        if rank_by not in RANK_BY:
            raise ValueError(f"rank_by must be one of {RANK_BY}, got {rank_by!r}")
        if min_area < 0 or max_objects < 1 or max_hole_area < 0:
            raise ValueError(
                f"need min_area >= 0, max_objects >= 1, max_hole_area >= 0; "
                f"got {min_area}, {max_objects}, {max_hole_area}"
            )
        self.settings: Dict[str, Any] = dict(
            points_per_side=points_per_side, points_per_batch=points_per_batch, pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh, stability_score_offset=stability_score_offset,
            mask_threshold=mask_threshold, box_nms_thresh=box_nms_thresh, crop_n_layers=crop_n_layers,
            crop_nms_thresh=crop_nms_thresh, crop_overlap_ratio=crop_overlap_ratio,
            crop_n_points_downscale_factor=crop_n_points_downscale_factor, point_grids=point_grids,
            min_mask_region_area=min_mask_region_area, use_m2m=_flag(use_m2m, "use_m2m"),
            multimask_output=_flag(multimask_output, "multimask_output"),
        )
        if generator is not None:
            if model is not None or checkpoint is not None or _flag(random_weights, "random_weights"):
                raise ValueError("pass either generator= or SAM 2 weights (model= / checkpoint= / random_weights=), "
                                 "not both")
            if not callable(getattr(generator, "generate", None)):
                raise TypeError(f"generator must have a generate(image) method, got {type(generator).__name__}")
        else:
            # Built now, not on the first frame, so missing packages or weights fail before the video starts.
            generator = build_generator(
                model=model, checkpoint=checkpoint, config=config, device=device, settings=self.settings,
                random_weights=_flag(random_weights, "random_weights"),
            )
        self.generator = generator
        self.frames = None if frames is None else frozenset(int(f) for f in frames)
        self.min_area, self.max_objects, self.max_hole_area = int(min_area), int(max_objects), int(max_hole_area)
        self.rank_by = rank_by

    def segment(self, frame: np.ndarray) -> np.ndarray:
        """Run the generator on ``frame [H,W,3] uint8 RGB`` -> ``[H,W]`` int32 id map (0 = background)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"sam2 initializer: frame must be [H,W,3] uint8 RGB, got {frame.shape} {frame.dtype}")
        records = self.generator.generate(np.ascontiguousarray(frame))
        return records_to_id_map(
            records, frame.shape[:2], min_area=self.min_area, max_objects=self.max_objects,
            max_hole_area=self.max_hole_area, rank_by=self.rank_by,
        )

    def init(self, frame_index: int, frame: np.ndarray) -> Optional[np.ndarray]:
        """The id map for ``frame`` when ``frame_index`` is one to answer for, else None."""
        if self.frames is not None and int(frame_index) not in self.frames:
            return None
        return self.segment(frame)

    __call__ = init  # the MaskInitializer protocol calls the initializer itself
