"""What decides how one video is tracked and written (``RunSettings``), and building its tracker.

The job layer's contract with every command line that tracks videos (``dinotools.run``, batch
runs): a command line turns its arguments into a ``RunSettings`` and calls
``dinotools.runs.job.run_video``; ``build_tracker`` builds the tracker once so that a batch runner
can reuse it for every video. Nothing here imports a command line.

Adding an option: a field here (a tracker parameter with ``tracker_param`` gets its command-line
option, its ``--help`` line and its place in the resume record automatically); an option of
another kind also needs its ``add_argument`` in ``dinotools.commands.run.add_tracking_arguments``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from dinotools.errors import UserError
from dinotools.registry import ComponentError


def tracker_param(default, help: str, *, record: bool = True, **option) -> Any:
    """A field passed to ``create_tracker`` by name; ``option``: argparse keywords (type, choices)."""
    return field(default=default, metadata={"tracker": True, "record": record, "help": help, "option": option})


def setting(default=None, *, record: bool = False, factory=None) -> Any:
    """A field that is not a tracker parameter; ``record``: kept in the resume record."""
    meta = {"tracker": False, "record": record}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunSettings:
    """Every option of ``python -m dinotools.run`` that decides how a video is tracked or written.

    Paths of the per-video inputs and the output folder are not settings: they are the arguments
    of ``run_video``. ``save_probs``: None (no), True (``OUTPUT/probs``) or a folder;
    ``overlay``/``report``: files written for this video (a batch runner sets them per video).
    """

    # components
    backbone: str = setting("vitl16", record=True)
    weights: Optional[str] = setting(None, record=True)  # None: discover (DINOv3 search order)
    dtype: Optional[str] = setting(None, record=True)  # None: the backbone's default (fp32)
    propagator: str = setting("auto", record=True)
    tracker: str = setting("label-propagation", record=True)
    init: str = setting("file")
    init_args: Dict[str, Any] = setting(factory=dict)
    discover_every: Optional[int] = setting(None)
    device: str = setting("auto")  # auto: CUDA when available, else CPU
    seed: int = setting(0)  # seeds --weights random (recorded for --resume only then)
    max_frames: Optional[int] = setting(None)  # track only the first N frames (the run record keeps the count)
    # tracker parameters (notebook defaults)
    max_context: int = tracker_param(7, "recent predictions kept in the context besides the mask frames", type=int)
    size: float = tracker_param(12, "neighbourhood radius in patches", type=float)
    shape: str = tracker_param("circle", "neighbourhood shape", choices=["circle", "square"])
    topk: int = tracker_param(5, "candidates kept per pixel (ties with the k-th kept)", type=int)
    temperature: float = tracker_param(0.2, "softmax temperature over the candidates' similarities", type=float)
    short_side: int = tracker_param(960, "frames resized so that their short side is this (pixels)", type=int)
    upsample: Optional[str] = tracker_param(None, "how predictions are upsampled to the frame: nearest (the "
                                            "default, notebook) or bilinear (paper); --refine chooses any refiner",
                                            choices=["nearest", "bilinear"])
    mask_downsample: str = tracker_param("nearest-exact", "how masks are downsampled to the patch grid",
                                         choices=["nearest-exact", "nearest"])
    # refinement: a registered refiner (None: the tracker's upsample) and its keyword arguments
    refine: Optional[str] = setting(None, record=True)
    refine_args: Dict[str, Any] = setting(factory=dict, record=True)
    # engine
    batch_size: int = setting(1)
    prefetch: int = setting(2)
    backbone_workers: Optional[int] = setting(None)
    # outputs
    save_probs: Union[None, bool, Path] = setting(None)
    overlay: Optional[Path] = setting(None)
    report: Optional[Path] = setting(None)
    strict: bool = setting(False)  # a video that decodes fewer frames than it announces is an error
    # exports beside the label PNGs (png always; coco, youtube-vos, objects): not recorded, since a
    # resumed run rebuilds them from the PNGs whatever they were before
    formats: List[str] = setting(factory=lambda: ["png"])

    def check(self) -> None:
        """Refuse values no run can use or that cannot give a useful result (one line naming the option)."""
        from dinotools.io.exports import check_formats

        self.formats = check_formats(self.formats)
        if self.refine_args and self.refine is None:
            raise UserError("--refine-arg needs --refine NAME (the refiner the arguments are for)")
        if self.prefetch < 0 or self.batch_size < 1:
            raise UserError(f"--prefetch must be >= 0 and --batch-size >= 1 (got {self.prefetch}, {self.batch_size})")
        if self.backbone_workers is not None and self.backbone_workers < 1:
            raise UserError(f"--backbone-workers must be >= 1 (got {self.backbone_workers})")
        if self.discover_every is not None and self.discover_every < 1:
            raise UserError(f"--discover-every must be >= 1 (got {self.discover_every})")
        if self.max_frames is not None and self.max_frames < 1:
            raise UserError(f"--max-frames must be >= 1 (got {self.max_frames})")
        for name in ("weights", "overlay", "report", "save_probs"):
            if isinstance(getattr(self, name), (str, Path)) and str(getattr(self, name)) == "":
                raise UserError(f"--{name.replace('_', '-')} needs a path, got ''")
        from dinotools.runs.limits import check_settings_params, check_tracker_params

        check_tracker_params(self.tracker_kwargs())
        check_settings_params(self)  # every component's declared ranges; the frame's bounds: preflight

    def tracker_kwargs(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("tracker")}

    def probs_dir(self, output: Path) -> Optional[Path]:
        """Where ``--save-probs`` writes for a run into ``output`` (None: not saved)."""
        if self.save_probs is None or self.save_probs is False:
            return None
        return Path(output) / "probs" if self.save_probs is True else Path(self.save_probs)


def recorded_fields(kind=None):
    """Names of the settings kept in the resume record (compared on ``--resume``); ``kind``: the
    settings class (default ``RunSettings``; ``runs.point_settings.PointSettings`` for points)."""
    return [f.name for f in fields(kind or RunSettings) if f.metadata.get("record")]


def tracker_fields(kind=None):
    """The tracker-parameter fields (name, default, help, argparse keywords), in declaration order:
    the one table of a tracker kind (``kind``: its settings class, default ``RunSettings``)."""
    return [f for f in fields(kind or RunSettings) if f.metadata.get("tracker")]


def build_component(kind: str, name: str, factory, **kwargs):
    """``factory(name, **kwargs)``; an unexpected error becomes one line naming the component."""
    from dinotools.pipeline.stages import first_line, passes_through

    try:
        return factory(name, **kwargs)
    except (UserError, ComponentError):
        raise
    except Exception as exc:  # noqa: BLE001 - plugins may raise anything
        if passes_through(exc):
            raise
        raise ComponentError(f"{kind} {name!r} failed to build: {type(exc).__name__}: {first_line(exc)}") from exc


def build_tracker(settings: RunSettings):
    """The tracker ``settings`` describe (backbone weights loaded): built once, reusable for many videos.

    ``device`` "auto" is resolved here (the tracker's ``device`` says which one was used);
    ``--weights random`` draws its weights from ``settings.seed``, without touching the global RNG.
    """
    import torch

    from dinotools.ops.devices import resolve_device
    from dinotools.registry import (
        REGISTRIES,
        create_backbone,
        create_propagator,
        create_tracker,
    )
    from dinotools.runs.limits import check_kwargs

    device = str(resolve_device(settings.device))
    backbone_kwargs = {}
    if settings.weights is not None:
        backbone_kwargs["weights"] = settings.weights
    if settings.dtype is not None:
        backbone_kwargs["dtype"] = settings.dtype
    backbone, propagator = settings.backbone, settings.propagator
    if settings.tracker == "label-propagation":  # built one by one so that a failure names its component
        factory = REGISTRIES["backbone"].get(backbone)
        check_kwargs("backbone", backbone, factory, backbone_kwargs, {"weights": "--weights", "dtype": "--dtype"})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            backbone = build_component("backbone", backbone, create_backbone, device=device, **backbone_kwargs)
        propagator = build_component("propagator", propagator, create_propagator)
    refine = {}  # only when asked: a plugin tracker need not know refiners
    if settings.refine is not None:
        refine = {"refiner": settings.refine, "refiner_kwargs": dict(settings.refine_args)}
    return build_component(
        "tracker", settings.tracker, create_tracker, backbone=backbone, propagator=propagator,
        device=device, backbone_kwargs=backbone_kwargs, **settings.tracker_kwargs(), **refine,
    )


def component_name(stage: str, settings: RunSettings) -> str:
    """The component a failed stage belongs to, named as the user chose it."""
    return {
        "backbone": f"backbone {settings.backbone!r}",
        "propagate": f"tracker {settings.tracker!r} (propagator {settings.propagator!r})",
        "initializer": f"initializer {settings.init!r}",
    }.get(stage, stage)


def out_of_memory(exc: BaseException) -> Optional[str]:
    """``"GPU"`` or ``"RAM"`` when ``exc`` (or the component error it wraps) is memory exhaustion, else None."""
    import re
    import sys

    from dinotools.pipeline.stages import StageError

    if isinstance(exc, StageError):
        exc = exc.original
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return "GPU"
    if isinstance(exc, MemoryError):
        return "RAM"
    text = str(exc)
    if isinstance(exc, RuntimeError) and re.search(r"can't allocate memory|not enough memory|out of memory", text, re.I):
        return "GPU" if re.search(r"cuda|hip|gpu", text, re.I) else "RAM"
    return None


def out_of_memory_message(exc: BaseException, settings: RunSettings, where: str = "GPU") -> str:
    """One line for an out-of-memory error, naming the settings that lower memory and their values."""
    from dinotools.pipeline.stages import StageError, first_line

    s = settings
    original = exc.original if isinstance(exc, StageError) else exc
    what = "GPU memory" if where == "GPU" else "memory (RAM)"
    lower = [f"a smaller --short-side (now {s.short_side})", f"a shorter --max-context (now {s.max_context})"]
    lower += [f"--dtype bf16 (now {s.dtype or 'fp32'})"] if s.dtype in (None, "fp32") else []
    lower += [f"--batch-size 1 (now {s.batch_size})"] if s.batch_size > 1 else []
    lower += [f"--prefetch 1 (now {s.prefetch})"] if s.prefetch > 1 else []
    lower += [f"--backbone-workers 1 (now {s.backbone_workers})"] if (s.backbone_workers or 1) > 1 else []
    return f"out of {what} ({first_line(original)[:160]}). To use less: {', '.join(lower)}"


def describe_failure(exc: BaseException, settings: RunSettings) -> Optional[str]:
    """The one-line message for a failed component, memory exhaustion or a file-system error; None otherwise."""
    import logging

    from dinotools.pipeline.stages import StageError

    where = out_of_memory(exc)
    if where is not None:
        return out_of_memory_message(exc, settings, where)
    if isinstance(exc, StageError):
        logging.getLogger("dinotools").debug("traceback of the failed component", exc_info=exc.original)
        return f"{exc.describe(component_name(exc.stage, settings))} (-vv shows the traceback)"
    if isinstance(exc, OSError):  # a file the checks could not foresee (a disk failing mid-run, a name too long)
        name = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{name}{exc.strerror or exc}"
    return None
