"""Checks a points run makes before its backbone loads, and keeping tracks the target disk refuses."""
from __future__ import annotations

import errno
import logging
import os
import tempfile
from pathlib import Path
from typing import Optional, Tuple

from dinotools.errors import UserError

log = logging.getLogger(__name__)


def check_writable(path: Path, what: str, suffixes, overwrite: bool, *, exists_ok: bool = False) -> None:
    """Refuse, before any frame is tracked, an output that could not be written at the end.
    ``exists_ok``: an existing file is fine (a resumed run replaces its own partial tracks)."""
    if str(path) == "":
        raise UserError(f"--{what} needs a path, got ''")
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{what} {path} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not (overwrite or exists_ok):
        raise UserError(f"{what} {path} exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {what} {path}: folder {path.parent} does not exist")
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def first_frame_size(source) -> Tuple[int, int]:
    """``(H, W)`` of the first frame (decodes one frame; a video is reopened when tracking starts)."""
    if source.files is not None:
        return source.read(0).shape[:2]
    frames = iter(source)
    try:
        return next(frames).shape[:2]
    finally:
        frames.close()


# Errors of a disk that cannot take the file (rather than of a path the checks refused before the run).
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS)


def rescue_folder() -> Path:
    """Where tracks go when their target refuses them: ``$TMPDIR`` (or the system's temp folder)."""
    return Path(tempfile.gettempdir())


def write_or_rescue(write, path: Path, tracks) -> Optional[Path]:
    """``write(path, tracks)``; when the disk refuses it (full, quota, read-only, I/O error), the tracks
    are written to the rescue folder instead and that file is returned (None: written at ``path``).
    The ``OSError`` propagates when the rescue fails too; its message then says so."""
    try:
        write(path, tracks)
        return None
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        rescue = rescue_folder() / f"{path.stem}.rescued-{os.getpid()}{path.suffix}"
        try:
            write(rescue, tracks)
        except OSError as again:
            exc.strerror = (f"{exc.strerror or exc}; the tracks could not be kept in {rescue.parent} either "
                            f"({again.strerror or again}): they are lost")
            raise exc from None
        log.warning("cannot write %s (%s): the tracks are in %s", path, exc.strerror, rescue)
        return rescue
