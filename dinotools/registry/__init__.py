"""Component registries: in-process registration plus lazily discovered entry points.

One ``Registry`` per kind (backbone, propagator, initializer, tracker, refiner). Built-ins are
declared through the same entry-point groups as third-party plugins (see ``_components``);
a plugin may never replace a built-in, and a plugin that fails to import is recorded with
its distribution and error instead of breaking the other components.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from dinotools.interfaces import (
    Backbone,
    MaskInitializer,
    PointTracker,
    Propagator,
    Refiner,
    Tracker,
    missing_members,
)
from dinotools.registry.builtins import BUILTINS, GROUPS

# What a created component must provide, per kind (a tracker follows one of two protocols).
PROTOCOLS = {
    "backbone": (Backbone,),
    "propagator": (Propagator,),
    "initializer": (MaskInitializer,),
    "tracker": (Tracker, PointTracker),
    "refiner": (Refiner,),
}

log = logging.getLogger(__name__)

BUILTIN = "built-in"
IN_PROCESS = "in-process"


class ComponentError(LookupError):
    """An unknown component name, or a component whose plugin failed to load."""


@dataclass(frozen=True)
class Component:
    """One registry entry. ``source`` is ``built-in``, ``in-process`` or ``dist==version``."""

    kind: str
    name: str
    source: str
    target: str  # "module:attr" for entry points, qualified name for in-process ones
    factory: Optional[Callable[..., Any]] = None  # None until loaded, or when loading failed
    error: Optional[str] = None  # why loading failed, with the original exception text

    @property
    def ok(self) -> bool:
        return self.error is None


def _load_ref(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module.strip())
    for part in attr.strip().split("."):
        obj = getattr(obj, part)
    return obj


def _entry_points(group: str) -> List[md.EntryPoint]:
    return sorted(md.entry_points(group=group), key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))


class Registry:
    """Name -> factory for one component kind; entry points are read on first use."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.group = GROUPS[kind]
        self._entries: Dict[str, Component] = {}  # name -> entry (built-ins, plugins, in-process)
        self._discovered = False  # entry points read yet?

    # registration -----------------------------------------------------------------------
    def register(self, name: str, *, override: bool = False) -> Callable:
        """Decorator registering ``fn`` (a class or factory) under ``name`` in this process."""

        def decorator(fn: Callable) -> Callable:
            self._discover()
            old = self._entries.get(name)
            if old is not None and not override:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered (from {old.source}); "
                    f"pass override=True to replace it or pick another name"
                )
            target = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
            self._entries[name] = Component(self.kind, name, IN_PROCESS, target, fn)
            return fn

        if not isinstance(name, str) or not name:
            raise TypeError(f"register_{self.kind}(name) needs a non-empty string name, got {name!r}")
        return decorator

    # discovery --------------------------------------------------------------------------
    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        found_self = False
        for ep in _entry_points(self.group):
            dist = ep.dist
            if dist is not None and dist.name.replace("_", "-").lower() == "dinotools":
                found_self = True
                self._add(ep.name, BUILTIN, ep.value)
            else:
                source = f"{dist.name}=={dist.version}" if dist is not None else "unknown distribution"
                self._add(ep.name, source, ep.value)
        if not found_self:
            # Running from a source tree that is not installed: the built-in table is the same.
            for name, ref in sorted(BUILTINS[self.kind].items()):
                self._add(name, BUILTIN, ref)

    def _add(self, name: str, source: str, ref: str) -> None:
        new = Component(self.kind, name, source, ref)
        old = self._entries.get(name)
        if old is None:
            self._entries[name] = new
            return
        if old.source == source:
            return
        # A built-in always wins; between plugins the first in sorted order does.
        keep, drop = (new, old) if source == BUILTIN and old.source != BUILTIN else (old, new)
        self._entries[name] = keep
        warnings.warn(
            f"{self.kind} {name!r} from {drop.source} is ignored: the name is already taken by {keep.source}",
            RuntimeWarning,
            stacklevel=3,
        )

    def _load(self, comp: Component) -> Component:
        if comp.factory is not None or comp.error is not None:
            return comp
        try:
            obj = _load_ref(comp.target)
            if not callable(obj):
                raise TypeError(f"{comp.target} is a {type(obj).__name__}, not a class or factory")
            comp = Component(comp.kind, comp.name, comp.source, comp.target, obj)
        except Exception as exc:  # noqa: BLE001 - a plugin may raise anything
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s %r from %s failed to load: %s", self.kind, comp.name, comp.source, error)
            comp = Component(comp.kind, comp.name, comp.source, comp.target, None, error)
        self._entries[comp.name] = comp
        return comp

    # lookup -----------------------------------------------------------------------------
    def names(self) -> List[str]:
        self._discover()
        return sorted(self._entries)

    def components(self) -> List[Component]:
        """Every entry, loaded (so failures show), sorted by name."""
        self._discover()
        return [self._load(self._entries[n]) for n in sorted(self._entries)]

    def get(self, name: str) -> Callable:
        self._discover()
        comp = self._entries.get(name)
        if comp is None:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ComponentError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(self._entries)) or 'none'}"
                f" (see `python -m dinotools.run --list`)"
            )
        comp = self._load(comp)
        if comp.error is not None:
            raise ComponentError(
                f"{self.kind} {name!r} from {comp.source} ({comp.target}) failed to load: {comp.error}"
            )
        return comp.factory

    def create(self, name: str, **kwargs: Any) -> Any:
        """``factory(**kwargs)``, checked against the kind's protocol (``dinotools.interfaces``)."""
        obj = self.get(name)(**kwargs)
        missing = missing_members(obj, PROTOCOLS[self.kind])
        if missing:
            comp = self._entries[name]
            wanted = " or ".join(p.__name__ for p in PROTOCOLS[self.kind])
            raise ComponentError(
                f"{self.kind} {name!r} from {comp.source} ({comp.target}) lacks {', '.join(missing)} "
                f"(the {wanted} protocol, dinotools.interfaces)"
            )
        return obj


REGISTRIES: Dict[str, Registry] = {kind: Registry(kind) for kind in GROUPS}


def register_backbone(name: str, *, override: bool = False) -> Callable:
    return REGISTRIES["backbone"].register(name, override=override)


def register_propagator(name: str, *, override: bool = False) -> Callable:
    return REGISTRIES["propagator"].register(name, override=override)


def register_initializer(name: str, *, override: bool = False) -> Callable:
    return REGISTRIES["initializer"].register(name, override=override)


def register_tracker(name: str, *, override: bool = False) -> Callable:
    return REGISTRIES["tracker"].register(name, override=override)


def register_refiner(name: str, *, override: bool = False) -> Callable:
    return REGISTRIES["refiner"].register(name, override=override)


def create_backbone(name: str, **kwargs: Any) -> Any:
    return REGISTRIES["backbone"].create(name, **kwargs)


def create_propagator(name: str, **kwargs: Any) -> Any:
    return REGISTRIES["propagator"].create(name, **kwargs)


def create_initializer(name: str, **kwargs: Any) -> Any:
    return REGISTRIES["initializer"].create(name, **kwargs)


def create_tracker(name: str, **kwargs: Any) -> Any:
    return REGISTRIES["tracker"].create(name, **kwargs)


def create_refiner(name: str, **kwargs: Any) -> Any:
    return REGISTRIES["refiner"].create(name, **kwargs)


def list_components(kind: Optional[str] = None) -> List[Component]:
    """Every component of ``kind`` (or of all kinds), with its source, loading each entry."""
    if kind is not None and kind not in REGISTRIES:
        raise ValueError(f"unknown component kind {kind!r}; choose from {', '.join(REGISTRIES)}")
    kinds = [kind] if kind else list(REGISTRIES)
    return [c for k in kinds for c in REGISTRIES[k].components()]
