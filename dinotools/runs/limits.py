"""Values that cannot give a useful result, refused before any work, and keyword arguments a component lacks.

The ranges are the components' own declarations (``dinotools.interfaces.params``): ``check_params`` applies
them to what a command line passes, before the backbone loads, and the frame's bounds once the
first frame's size is known.
"""
from __future__ import annotations

import difflib
import inspect
import math
from typing import Dict, List, Mapping, Optional, Tuple

from dinotools.errors import ConfigError
from dinotools.interfaces.params import markdown_table, owner_of, params_of, range_errors

PATCH = 16  # every built-in backbone's patch size
MIN_SHORT_SIDE = 2 * PATCH  # one patch row leaves no neighbourhood to propagate through
MAX_SHORT_SIDE = 4096  # (4096/16)^2 * aspect patches per frame: beyond any GPU's memory for a ViT


def window_cells(size: float, shape: str) -> int:
    """Cells of the neighbourhood of radius ``size`` (circle: Euclidean, square: Chebyshev distance)."""
    r = int(math.floor(size))
    if shape == "square":
        return (2 * r + 1) ** 2
    return sum(1 for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= size * size)


def check_tracker_params(p: Mapping[str, object]) -> None:
    """The label-propagation parameters in ``p`` (those present) are usable; one line naming the limit if not."""
    def opt(name: str) -> str:
        return "--" + name.replace("_", "-")

    for name in ("size", "temperature"):
        value = p.get(name)
        if value is not None and not math.isfinite(float(value)):
            raise ConfigError(f"{opt(name)} must be a finite number, got {value}")
    if p.get("temperature") is not None and not float(p["temperature"]) > 0:
        raise ConfigError(f"--temperature must be > 0, got {p['temperature']}")
    if p.get("size") is not None and float(p["size"]) < 0:
        raise ConfigError(f"--size (neighbourhood radius) must be >= 0, got {p['size']}")
    short = p.get("short_side")
    if short is not None and not MIN_SHORT_SIDE <= int(short) <= MAX_SHORT_SIDE:
        why = (f"frames would be {math.ceil(int(short) / PATCH)} patch(es) of {PATCH} pixels high"
               if int(short) < MIN_SHORT_SIDE else "the backbone's features would not fit in any GPU's memory")
        raise ConfigError(f"--short-side {short} is outside {MIN_SHORT_SIDE}..{MAX_SHORT_SIDE}: {why}")
    if p.get("max_context") is not None and int(p["max_context"]) < 0:
        raise ConfigError(f"--max-context must be >= 0, got {p['max_context']}")
    topk = p.get("topk")
    if topk is not None and int(topk) < 1:
        raise ConfigError(f"--topk must be >= 1, got {topk}")
    # The declared ranges (upper bounds too) before counting the window's cells: a huge --size is refused, not counted.
    check_params("tracker", "label-propagation", p, flags={k: "--" + k.replace("_", "-") for k in p}, unknown=False)
    if topk is not None:
        size, shape, context = p.get("size", 12), p.get("shape", "circle"), p.get("max_context", 7)
        if size is not None and shape in ("circle", "square") and context is not None:
            cells = window_cells(float(size), str(shape))
            most = (int(context) + 1) * cells
            if int(topk) > most:
                raise ConfigError(f"--topk {topk} exceeds the {most} candidates a pixel has ({int(context) + 1} "
                                  f"context frames x {cells} cells of a {shape} of radius {size}); use at most {most}")


def check_kwargs(kind: str, name: str, factory, kwargs: Mapping[str, object],
                 flags: Optional[Dict[str, str]] = None, flag: str = "") -> None:
    """Refuse keyword arguments ``factory`` does not take (when its signature says so), naming the option.

    ``flags`` maps a keyword to the option that set it (``{"weights": "--weights"}``); ``flag`` is
    the option of the others (``--tracker-arg``).
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key, value in kwargs.items():
        if key in accepted:
            continue
        given = (flags or {}).get(key) or f"{flag} {key}={value}".strip()
        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{given}: {kind} {name!r} has no parameter {key!r}{hint}; it takes "
                          f"{', '.join(accepted) or 'no parameters'}")


def _given(key: str, value, flag: str, flags: Optional[Dict[str, str]]) -> str:
    """How the user gave ``key``: ``--size 1e9`` (an option of its own) or ``--refine-arg eps=inf``."""
    if flags and key in flags:
        return f"{flags[key]} {value}"
    return f"{flag} {key}={value}".strip()


def patch_grid(frame_size: Tuple[int, int], short_side: Optional[int], patch: int = PATCH) -> Tuple[int, int]:
    """``(h, w)``: the patch grid of an ``(H, W)`` frame resized as the trackers resize it (``--short-side``)."""
    from dinotools.ops.preprocess import target_size

    height, width = target_size(int(frame_size[0]), int(frame_size[1]), short_side, patch)
    return height // patch, width // patch


def _defaults(factory) -> Dict[str, object]:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not p.empty}


def check_params(kind: str, name: str, values: Mapping[str, object], *, flag: str = "",
                 flags: Optional[Dict[str, str]] = None, frame: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None,
                 unknown: bool = True) -> None:
    """The keyword arguments ``values`` of component ``kind``/``name`` exist (``unknown``) and are in their
    declared ranges (``dinotools.interfaces.params``); with ``frame``, ``((H, W), (h, w))`` the frame's size and
    patch grid, also the bounds of the frame.

    One ``ConfigError`` line naming the option as given: ``--refine-arg radius=100000: radius of refiner
    guided must be <= 14 (...), got 100000``. ``flags``/``flag`` as for ``check_kwargs``.
    """
    from dinotools.registry import REGISTRIES

    factory = REGISTRIES[kind].get(name)
    if unknown:
        check_kwargs(kind, name, factory, values, flags, flag)
    errors = range_errors(owner_of(factory), params_of(factory), values, frame, _defaults(factory))
    for key, message in errors.items():
        raise ConfigError(f"{_given(key, values[key], flag, flags)}: {message}")


def frame_bounded(kind: str, name: str, values: Mapping[str, object]) -> bool:
    """Whether any of ``values`` has a bound that depends on the frame (so the frame size must be read first)."""
    from dinotools.registry import REGISTRIES

    ranges = params_of(REGISTRIES[kind].get(name))
    return any(key in ranges and ranges[key].frame is not None for key in values)


def settings_params(settings) -> List[Tuple[str, str, Dict[str, object], str, Optional[Dict[str, str]]]]:
    """``(kind, name, values, flag, flags)`` of every component whose arguments ``settings`` (a
    ``RunSettings``) set: the tracker's options, ``--refine-arg``, ``--init-arg``."""
    tracker = settings.tracker_kwargs()
    out = [("tracker", settings.tracker, tracker, "--tracker-arg", {k: "--" + k.replace("_", "-") for k in tracker})]
    if settings.refine is not None:
        out.append(("refiner", settings.refine, dict(settings.refine_args), "--refine-arg", None))
    if settings.init_args or settings.init != "file":
        out.append(("initializer", settings.init, dict(settings.init_args), "--init-arg", None))
    return out


def check_settings_params(settings, frame_size: Optional[Tuple[int, int]] = None) -> None:
    """Every component argument of ``settings`` exists and is in range (with ``frame_size``: the frame's
    bounds too), before the backbone loads. The tracker's options are range-checked only: a plugin
    tracker need not take every option of label-propagation (it fails on creation, naming itself)."""
    frame = None if frame_size is None else (tuple(frame_size), patch_grid(frame_size, settings.short_side))
    for kind, name, values, flag, flags in settings_params(settings):
        check_params(kind, name, values, flag=flag, flags=flags, frame=frame, unknown=kind != "tracker")


def needs_frame_size(settings) -> bool:
    """Whether a component argument of ``settings`` is bounded by the frame (the first frame is then read)."""
    return any(frame_bounded(kind, name, values) for kind, name, values, _, _ in settings_params(settings))


def ranges_table() -> str:
    """The README's table of every built-in component's declared parameter ranges (markdown); components
    sharing one declaration (the DINOv3 variants) share a row."""
    from dinotools.registry import REGISTRIES
    from dinotools.registry.builtins import BUILTINS

    groups: Dict[int, list] = {}
    for kind, table in BUILTINS.items():
        for name in sorted(table):
            factory = REGISTRIES[kind].get(name)
            if params_of(factory) and not name.startswith("dinov3_"):  # the dinov3_ aliases: same factories
                groups.setdefault(id(factory.PARAMS), [kind, [], factory])[1].append(name)
    return markdown_table([(kind, names, factory) for kind, names, factory in groups.values()])


def check_command_params(tracker: str, options: Mapping[str, object], backbone: str,
                         backbone_args: Mapping[str, object]) -> None:
    """A command's tracker options (``--radius 0``, named as options) and ``--backbone-arg`` values exist and
    are in their declared ranges, before the backbone loads (``python -m dinotools.points``)."""
    check_params("tracker", tracker, options, flags={k: "--" + k.replace("_", "-") for k in options}, unknown=False)
    check_params("backbone", backbone, backbone_args, flag="--backbone-arg")
