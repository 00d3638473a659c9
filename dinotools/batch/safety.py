"""A batch's output folder kept apart from its inputs, and one batch at a time writing into it.

Three guards, all checked by ``run_batch`` before any video runs:

- ``check_apart``: the output folder neither holds nor lies inside any video's frames or masks (or a
  DAVIS root's input folders), whatever the flags: ``OUTPUT/<name>/`` and ``OUTPUT/batch.json``
  must never replace or land among the inputs.
- ``BatchLock``: an exclusive ``flock`` on ``OUTPUT/.dinotools-batch.lock``, held by the live
  driver. Two batches into one folder would mix their frames; the kernel drops the lock when its
  holder dies (SIGKILL included), so it is never left stale.
- ``Fence``: the generation id of the batch now writing into the folder, in
  ``OUTPUT/.dinotools-batch.gen``. Each worker checks it before every frame it writes: a worker
  of a dead batch (a Ray actor outlives its driver by seconds) stops as soon as a rerun has
  taken over, instead of writing beside it.
"""
from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from dinotools.batch.sources import Video
from dinotools.errors import InputError
from dinotools.io.masks import atomic_save

log = logging.getLogger(__name__)

LOCK = ".dinotools-batch.lock"
GENERATION = ".dinotools-batch.gen"
STALE_EXIT = 75  # exit status of a worker process that found its batch replaced (EX_TEMPFAIL)


def _overlaps(a: Path, b: Path) -> bool:
    """``a`` is ``b``, inside it, or holds it (both resolved)."""
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_apart(output: Path, videos: Sequence[Video], input_folders: Iterable[Path] = ()) -> None:
    """Raise ``InputError`` when ``output`` (resolved) is, holds or lies inside an input: a video's
    frames or mask, or one of ``input_folders`` (e.g. a DAVIS root's ``JPEGImages``, ``Annotations``)."""
    for folder in input_folders:
        folder = Path(folder).resolve()
        if _overlaps(output, folder):
            raise InputError(f"--output {output} {_relation(output, folder)} the input folder {folder}: the batch "
                             f"would write among its inputs; choose an output folder outside it")
    for v in videos:
        for field, path in (("frames", v.frames), ("mask", v.mask)):
            if path is not None and _overlaps(output, Path(path)):
                raise InputError(f"--output {output} {_relation(output, Path(path))} video {v.name}'s {field} "
                                 f"{path}: the batch would write among its inputs; choose an output folder "
                                 f"outside them")


def _relation(output: Path, path: Path) -> str:
    return "is" if output == path else "holds" if path.is_relative_to(output) else "is inside"


class BatchLock:
    """``flock(LOCK_EX | LOCK_NB)`` on ``OUTPUT/.dinotools-batch.lock`` for as long as this object is held
    (``release`` or process death frees it). ``flock`` (not ``lockf``) so that two holders in one process
    exclude each other too, and it works on Linux NFS (emulated with byte-range locks)."""

    def __init__(self, output: Path) -> None:
        import fcntl

        self.path = Path(output) / LOCK
        try:
            self._fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise InputError(f"cannot create the batch lock {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            raise InputError(f"another batch ({holder}) is writing into {self.path.parent} (it holds {self.path}); "
                             f"wait for it to end or stop it, or choose another --output") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)  # who holds it, for the message

    def remove_stale_temps(self, *names: str) -> int:
        """Delete the temp files a killed batch left while replacing ``OUTPUT/<name>`` (``atomic_save``'s
        ``.<name>.<random>.tmp``): safe only under the lock, when no other batch writes them."""
        stale = [p for name in names for p in self.path.parent.glob(f".{name}.*.tmp") if p.is_file()]
        for p in stale:
            p.unlink()
        return len(stale)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


class StaleBatchError(RuntimeError):
    """This worker's batch is no longer the one writing into the output folder (a rerun took over)."""


@dataclass(frozen=True)
class Fence:
    """Picklable: travels with each task to the worker. ``check()`` before every frame write."""

    path: Path
    generation: str

    @classmethod
    def take_over(cls, output: Path) -> "Fence":
        """A new generation for ``output``: from now on, workers of any earlier batch stop at their next write."""
        fence = cls(Path(output) / GENERATION, uuid.uuid4().hex)
        try:
            atomic_save(fence.path, lambda f: f.write(fence.generation.encode()))
        except OSError as exc:
            raise InputError(f"cannot write {fence.path}: {exc.strerror or exc}") from None
        return fence

    def current(self) -> bool:
        try:
            return self.path.read_text().strip() == self.generation
        except OSError:  # removed with the output folder: nothing of this batch may be written there
            return False

    def check(self) -> None:
        if not self.current():
            raise StaleBatchError(f"{self.path.parent} is now written by another batch (generation file "
                                  f"{self.path}); this worker of an earlier batch stops without writing")

    def check_or_exit(self) -> None:
        """``check`` in a worker process: a stale one ends at once, so none of its cleanup (removing an
        empty run's record, spools) can touch the folder the new batch is using."""
        if not self.current():
            log.warning("%s is now written by another batch: this worker of an earlier batch exits", self.path.parent)
            os._exit(STALE_EXIT)
