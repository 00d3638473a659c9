"""Declared ranges of components' numeric parameters: one ``Range`` per parameter, checked on creation.

A component states the values of each numeric keyword that can give a useful result::

    @declare_params("refiner guided", radius=Range(1, integer=True, frame=radius_limit, doc="..."), ...)
    class GuidedRefiner: ...

The declaration is checked when the component is created from Python (a ``ConfigError`` naming the
component and the parameter), and, before any work, by ``dinotools.runs.limits.check_params`` on
the values a command line will pass (``--refine-arg``, ``--init-arg``, ``--backbone-arg``, the
tracker options), which also checks the bounds that depend on the frame (``frame=``: a window
no wider than the grid it slides over) once the first frame's size is known. The README's table of
ranges is generated from the declarations (``dinotools.runs.limits.ranges_table``; a test keeps it current).

Written here rather than with a validation library (pydantic, attrs validators): the checks are a
few comparisons, the components must stay importable with the core dependencies only, and the
messages must name the option the user typed, which a library's messages do not.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Tuple

from dinotools.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The values of one numeric parameter that can give a useful result.

    ``lo``/``hi``: bounds (None: none), excluded when ``lo_open``/``hi_open``; ``integer``: an int
    (never a bool, never 2.0); ``finite``: inf refused (NaN always is); ``optional``: None accepted;
    ``frame``: a bound that depends on the frame, ``frame(values, (H, W), (h, w)) -> (most, why)``:
    the largest value for frames of H x W pixels whose patch grid is h x w, given the component's
    other values (defaults filled in), and what that limit is; checked once the frame size is known;
    ``doc``: what the parameter is and why the bounds are these (shown with the error and in the README).
    """

    lo: Optional[float] = None
    hi: Optional[float] = None
    integer: bool = False
    lo_open: bool = False
    hi_open: bool = False
    finite: bool = True
    optional: bool = False
    frame: Optional[Callable[[Mapping[str, object], Tuple[int, int], Tuple[int, int]], Tuple[float, str]]] = None
    doc: str = ""

    def describe(self) -> str:
        """``"an integer in [1, 16]"``, ``"a number in (0, 1]"``, ``"a number >= 0"``, ... (with None, frame)."""
        kind = "an integer" if self.integer else "a finite number" if self.finite else "a number"
        lo, hi = _num(self.lo), _num(self.hi)
        if self.lo is not None and self.hi is not None:
            text = f"{kind} in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            text = f"{kind} {'>' if self.lo_open else '>='} {lo}"
        elif self.hi is not None:
            text = f"{kind} {'<' if self.hi_open else '<='} {hi}"
        else:
            text = kind
        if self.frame is not None:
            text += ", bounded by the frame"
        if not self.finite and not self.integer:
            text += " (inf allowed)"
        return text + (" or None" if self.optional else "")

    def problem(self, value) -> Optional[str]:
        """Why ``value`` is refused (``"must be ..."``), or None when it is in range. Bounds of the frame aside."""
        if value is None:
            return None if self.optional else f"must be {self.describe()}, got None"
        wrong_type = isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            self.integer and not isinstance(value, numbers.Integral))
        if wrong_type or math.isnan(value) or (self.finite and math.isinf(value)):
            return f"must be {self.describe()}, got {value!r}"
        below = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        above = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        if below or above:
            return f"must be {self.describe()}, got {value!r}"
        return None

    def frame_problem(self, value, values: Mapping[str, object], frame_size: Tuple[int, int],
                      grid: Tuple[int, int]) -> Optional[str]:
        """Why ``value`` is refused for frames of ``frame_size`` (H, W) and patch grid ``grid`` (h, w), or None."""
        if self.frame is None or value is None:
            return None
        most, why = self.frame(values, frame_size, grid)
        if value > most:
            return f"must be <= {_num(most)} ({why}), got {value!r}"
        return None


def _num(x) -> str:
    return "inf" if x is not None and math.isinf(x) else f"{x:g}" if isinstance(x, float) else str(x)


def params_of(factory) -> Dict[str, Range]:
    """The declared ranges of ``factory`` (a class or function; ``{}`` when it declares none)."""
    return dict(getattr(factory, "PARAMS", None) or {})


def owner_of(factory) -> str:
    """``"refiner guided"``: how errors name the component that declared ``factory``'s ranges."""
    return getattr(factory, "PARAMS_OWNER", None) or getattr(factory, "__qualname__", repr(factory))


def range_errors(owner: str, ranges: Mapping[str, Range], values: Mapping[str, object],
                 frame: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None,
                 context: Optional[Mapping[str, object]] = None) -> Dict[str, str]:
    """``{parameter: "radius of refiner guided must be ..."}`` for every value of ``values`` out of its
    range (declared parameters only). ``frame``: ``((H, W), (h, w))``, the frame's size and patch grid,
    to check the bounds of the frame too, once every value is in its own range; ``context``: every
    value of the component (defaults filled in) those bounds may read; ``values`` override it."""
    out = {}
    for key, value in values.items():
        rng = ranges.get(key)
        why = rng.problem(value) if rng is not None else None
        if why is not None:
            out[key] = f"{key} of {owner} {why}"  # the why of the bounds: rng.doc, in the README's table
    if out or frame is None:
        return out
    every = {**(context or {}), **values}
    for key, value in values.items():
        rng = ranges.get(key)
        why = rng.frame_problem(value, every, *frame) if rng is not None else None
        if why is not None:
            out[key] = f"{key} of {owner} {why}"
    return out


def declare_params(owner: str, **ranges: Range) -> Callable:
    """Class or function decorator: attach ``ranges`` (``PARAMS``) and check them on every call.

    ``owner`` names the component in errors (``"refiner guided"``). Defaults are checked too, so a
    declaration that contradicts its own default fails on first use. The signature is kept
    (``inspect.signature`` and the unknown-keyword checks still see the real parameters).
    """
    def decorate(obj):
        target = obj.__init__ if isinstance(obj, type) else obj
        signature = inspect.signature(target)

        @functools.wraps(target)
        def checked(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return target(*args, **kwargs)  # the call's own TypeError, as without the check
            bound.apply_defaults()
            values = dict(bound.arguments)
            for name, param in signature.parameters.items():
                if param.kind == param.VAR_KEYWORD:  # a factory passing **kwargs on: its keywords are checked
                    values.update(values.pop(name, {}))
            errors = range_errors(owner, ranges, values)
            if errors:
                raise ConfigError(next(iter(errors.values())))
            return target(*args, **kwargs)

        if isinstance(obj, type):
            obj.__init__ = checked
            result = obj
        else:
            result = checked
        result.PARAMS, result.PARAMS_OWNER = dict(ranges), owner
        return result

    return decorate


def markdown_table(components) -> str:
    """The README's table: ``components`` is ``[(kind, names, factory), ...]``; one row per declared parameter."""
    rows = ["| component | parameter | valid values | meaning, and why these bounds |", "|---|---|---|---|"]
    for kind, names, factory in components:
        label = ", ".join(f"`{n}`" for n in names)
        for key, rng in params_of(factory).items():
            rows.append(f"| {kind} {label} | `{key}` | {rng.describe()} | {rng.doc} |")
    return "\n".join(rows)
