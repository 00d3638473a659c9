"""What decides how one video's points are tracked and written (``PointSettings``), and building the tracker.

The point-tracking counterpart of ``runs.settings.RunSettings``, built the same way: fields made
with ``setting`` and ``tracker_param``, so that the point tracker's parameter table is declared
once here and gives the command-line options (``dinotools.commands.points``), the settings kept
in the run record (compared on ``--resume``) and the tracker's keyword arguments.
A tracker parameter's default None means "the tracker's own" (``trackers.points.PointTracker``
holds the defaults; they are not copied here).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Optional

from dinotools.errors import UserError
from dinotools.runs.settings import build_component, setting, tracker_param


@dataclass
class PointSettings:
    """Every option of ``python -m dinotools.points`` (and ``batch --points``) that decides how points are
    tracked or written. Per-video inputs (frames, queries file) and the output file are the arguments of
    ``runs.points.run_points_video``; ``grid``: an N x N grid of queries on frame 0 instead of a file; ``queries_dir``: a batch's folder
    of one ``<video name>.csv`` per video (``queries_file``)."""

    # components
    backbone: str = setting("vitl16", record=True)
    weights: Optional[str] = setting(None, record=True)
    dtype: Optional[str] = setting(None, record=True)
    backbone_args: Dict[str, Any] = setting(factory=dict, record=True)  # --backbone-arg KEY=VALUE
    tracker: str = setting("points", record=True)
    device: str = setting("cpu")
    seed: int = setting(0)  # seeds --weights random
    max_frames: Optional[int] = setting(None, record=True)
    grid: Optional[int] = setting(None, record=True)
    queries_dir: Optional[Path] = setting(None, record=True)  # batch --points: QUERIES/<video name>.csv per video
    # tracker parameters (None: the tracker's default, see PointTracker)
    short_side: Optional[int] = tracker_param(None, "frames resized to this short side for the backbone", type=int)
    radius: Optional[int] = tracker_param(None, "search window half-size, patches", type=int)
    topk: Optional[int] = tracker_param(None, "cells in the coarse soft-argmax", type=int)
    temperature: Optional[float] = tracker_param(None, "coarse soft-argmax temperature", type=float)
    shifts: Optional[int] = tracker_param(None, "features at shifts x shifts sub-patch offsets (shifts^2 backbone "
                                          "runs)", type=int)
    refine_scale: Optional[int] = tracker_param(None, "similarity upsampling for sub-patch refinement (1: off)",
                                                type=int)
    refine_radius: Optional[float] = tracker_param(None, "refinement radius, grid cells", type=float)
    refine_temperature: Optional[float] = tracker_param(None, "refinement soft-argmax temperature", type=float)
    sim_threshold: Optional[float] = tracker_param(None, "occluded below this cosine similarity", type=float)
    fb_threshold: Optional[float] = tracker_param(None, "forward-backward tolerance, patches (inf: off)", type=float)
    template_update: Optional[float] = tracker_param(None, "weight of the latest feature in the template (0: off)",
                                                     type=float)
    # engine
    batch_size: int = setting(1)
    prefetch: int = setting(2)
    backbone_workers: Optional[int] = setting(None)
    # outputs
    overlay: Optional[Path] = setting(None)
    trail: int = setting(12)
    hide_occluded: bool = setting(False)
    report: Optional[Path] = setting(None)

    def check(self) -> None:
        """Refuse values no run can use (one line naming the option)."""
        if self.batch_size < 1 or self.prefetch < 0 or self.trail < 0:
            raise UserError(f"--batch-size must be >= 1, --prefetch and --trail >= 0 "
                            f"(got {self.batch_size}, {self.prefetch}, {self.trail})")
        if self.backbone_workers is not None and self.backbone_workers < 1:
            raise UserError(f"--backbone-workers must be >= 1 (got {self.backbone_workers})")
        if self.grid is not None and self.grid < 1:
            raise UserError(f"--grid needs N >= 1, got {self.grid}")
        if self.max_frames is not None and self.max_frames < 1:
            raise UserError(f"--max-frames must be >= 1 (got {self.max_frames})")
        from dinotools.runs.limits import check_command_params

        # the declared ranges of the tracker's and the backbone's parameters, before the model loads
        check_command_params(self.tracker, self.tracker_kwargs(), self.backbone, dict(self.backbone_args))

    def queries_file(self, name: str) -> Optional[Path]:
        """A batch video's queries file (None: ``grid`` queries)."""
        return None if self.queries_dir is None else Path(self.queries_dir) / f"{name}.csv"

    def tracker_kwargs(self) -> Dict[str, Any]:
        """The tracker parameters given (None ones left to the tracker's defaults)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.metadata.get("tracker") and getattr(self, f.name) is not None}


def build_point_tracker(settings: PointSettings):
    """The point tracker ``settings`` describe (backbone loaded): built once, reusable for many videos."""
    import torch

    from dinotools.ops.devices import resolve_device
    from dinotools.registry import create_backbone, create_tracker

    device = str(resolve_device(settings.device))
    backbone_kwargs = dict(settings.backbone_args)
    if settings.weights is not None:
        backbone_kwargs["weights"] = settings.weights
    if settings.dtype is not None:
        backbone_kwargs["dtype"] = settings.dtype
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        backbone = build_component("backbone", settings.backbone, create_backbone, device=device, **backbone_kwargs)
    return build_component("tracker", settings.tracker, create_tracker, backbone=backbone, device=device,
                           **settings.tracker_kwargs())


def describe_point_failure(exc: BaseException, settings: PointSettings) -> Optional[str]:
    """One line for a failed component, memory exhaustion or a file-system error (None: not a known kind)."""
    import logging

    from dinotools.pipeline.stages import StageError, first_line
    from dinotools.runs.settings import out_of_memory

    where = out_of_memory(exc)
    if where is not None:
        original = exc.original if isinstance(exc, StageError) else exc
        what = "GPU memory" if where == "GPU" else "memory (RAM)"
        return (f"out of {what} ({first_line(original)[:160]}). To use less: a smaller --short-side, --dtype bf16, "
                f"--batch-size 1, --prefetch 1, fewer --shifts or fewer queries")
    if isinstance(exc, StageError):
        logging.getLogger("dinotools").debug("traceback of the failed component", exc_info=exc.original)
        who = {"backbone": f"backbone {settings.backbone!r}", "propagate": f"tracker {settings.tracker!r}"}
        return f"{exc.describe(who.get(exc.stage, exc.stage))} (-vv shows the traceback)"
    if isinstance(exc, OSError):
        name = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{name}{exc.strerror or exc}"
    return None
