"""Values that cannot give a useful result, refused before any work, and keyword arguments a component lacks."""
from __future__ import annotations

import difflib
import inspect
import math
from typing import Dict, Mapping, Optional

from dinotools.errors import ConfigError

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
    if topk is not None:
        if int(topk) < 1:
            raise ConfigError(f"--topk must be >= 1, got {topk}")
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
