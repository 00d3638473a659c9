"""Output paths checked before any work: right kind, parents present, name lengths, writable.

Every check raises ``InputError`` with one line naming the option and the path, so a run that
would fail at its end (a report into a missing folder, probabilities onto a file, a read-only
disk) fails before its backbone loads instead.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Optional

from dinotools.errors import InputError

DEFAULT_NAME_MAX = 255


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or of its nearest existing parent) takes."""
    probe = existing_parent(folder)
    try:
        return os.pathconf(probe, "PC_NAME_MAX")
    except (OSError, ValueError):
        return DEFAULT_NAME_MAX


def existing_parent(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the current folder at worst)."""
    path = Path(os.path.abspath(path))
    while not _exists(path) and path != path.parent:
        path = path.parent
    return path


def _exists(path: Path) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def check_name_lengths(path: Path, what: str) -> None:
    """Every component of ``path`` fits the file system (names of up to NAME_MAX bytes, 255 on most)."""
    limit = name_max(Path(path))
    for part in Path(os.path.abspath(path)).parts[1:]:
        if len(os.fsencode(part)) > limit:
            raise InputError(f"{what} {path}: the name {part[:40]!r}... is {len(os.fsencode(part))} bytes long; "
                             f"the file system takes names of up to {limit} bytes")


def check_writable_folder(folder: Path, what: str) -> None:
    """A file can be created (and removed) in the existing ``folder``."""
    probe = folder / f".dinotools-write-test.{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"cannot write into {what} {folder}: {exc.strerror or exc}") from None


def check_output_file(path: Optional[Path], what: str) -> None:
    """``path`` can be written as a file: not a folder, its parent folder exists and is writable."""
    if path is None:
        return
    path = Path(path)
    if str(path) in ("", "."):
        raise InputError(f"{what} needs a file name, got {str(path)!r}")
    check_name_lengths(path, what)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name")
    parent = path.parent
    if not parent.exists():
        raise InputError(f"{what} {path}: its folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise InputError(f"{what} {path}: {parent} is not a folder")
    if path.exists() and not path.is_file():
        raise InputError(f"{what} {path} exists and is not a regular file")
    check_writable_folder(parent, what)


def make_output_folder(folder: Path, what: str) -> list:
    """Create ``folder`` (and its missing parents) if needed and check it is writable.

    Returns the folders created, outermost first, so a run that fails before writing can remove them.
    Failures read ``cannot write into <what> <folder>: <reason>``.
    """
    folder = Path(folder)
    fail = f"cannot write into {what} {folder}"
    if str(folder) == "":
        raise InputError(f"{what} needs a folder name, got ''")
    check_name_lengths(folder, what)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{fail}: it exists and is not a folder")
    created = []
    probe = Path(os.path.abspath(folder))
    while not _exists(probe):
        created.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{fail}: {probe} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{fail}: {exc.strerror or exc}") from None
    try:
        check_writable_folder(folder, what)
    except InputError:
        remove_created(created[::-1])
        raise
    return created[::-1]


def remove_created(created: list) -> None:
    """Remove folders ``make_output_folder`` created, innermost first, if they are still empty."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:  # not empty (something else wrote there) or gone: leave the rest
            return
