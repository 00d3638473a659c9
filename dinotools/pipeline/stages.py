"""Which stage of the pipeline failed: a component's error wrapped with its stage and frames, and
the errors that pass through unwrapped (they already speak to the user)."""
from __future__ import annotations

import torch

from dinotools.errors import UserError


class StageError(RuntimeError):
    """A component raised while running: ``stage`` (backbone/propagate/initializer) and the frames."""

    def __init__(self, stage: str, first: int, last: int, exc: BaseException) -> None:
        self.stage, self.first, self.last, self.original = stage, first, last, exc
        super().__init__(self.describe(stage))

    def describe(self, component: str) -> str:
        """One line: ``<component> failed on frame(s) ...: <error type>: <first line of its message>``."""
        frames = f"frame {self.first}" if self.first == self.last else f"frames {self.first}-{self.last}"
        return f"{component} failed on {frames}: {type(self.original).__name__}: {first_line(self.original)}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def passes_through(exc: BaseException) -> bool:
    """Errors that already speak to the user (or must reach the CLI unchanged) are never wrapped."""
    return isinstance(exc, (UserError, StageError, torch.OutOfMemoryError, MemoryError, KeyboardInterrupt))


class NoStats:
    """A ``stats`` that drops every timing (the loops' default)."""

    def add(self, stage: str, seconds: float) -> None:
        pass


def guarded(stage: str, index: int, fn, *args, **kwargs):
    """Calls ``fn``; an error from a component (not a user error) becomes a ``StageError`` naming it."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        if passes_through(exc):
            raise
        raise StageError(stage, index, index, exc) from exc
