"""``batch --points``: what differs from a mask batch (each video's tracks are ``OUTPUT/<name>.npz``).

The engines, the record (``batch.json``) and the worker are the mask batch's; ``is_points`` tells
them apart by the settings (``runs.point_settings.PointSettings``). A video's queries are an
``N x N`` grid (``settings.grid``) or ``QUERIES/<name>.csv`` (``settings.queries_dir``).
"""
from __future__ import annotations

from pathlib import Path
from typing import List

from dinotools.batch.sources import BatchInputError, Video
from dinotools.errors import InputError
from dinotools.runs.point_settings import PointSettings


def is_points(settings) -> bool:
    return isinstance(settings, PointSettings)


def tracks_path(output: Path, name: str) -> Path:
    return Path(output) / f"{name}.npz"


def check_queries(settings: PointSettings, videos: List[Video]) -> None:
    """Exactly one of grid/queries folder, and every video's CSV present: one line per missing file."""
    if (settings.grid is None) == (settings.queries_dir is None):
        raise BatchInputError(["batch --points needs exactly one of --grid N or --queries DIR"])
    if settings.queries_dir is None:
        return
    folder = Path(settings.queries_dir)
    if not folder.is_dir():
        raise BatchInputError([f"--queries {folder} is not a folder (one <video name>.csv per video)"])
    missing = [f"{v.where}: queries file {settings.queries_file(v.name)} not found" for v in videos
               if not settings.queries_file(v.name).is_file()]
    if missing:
        raise BatchInputError(missing)


def locate_tracks(output: Path, name: str):
    """``(tracks file, whether it is there, whether a stopped run's record lies beside it)`` (see ``run._plan``)."""
    from dinotools.runs.point_record import record_path

    out = tracks_path(output, name)
    return out, out.is_file(), record_path(out).exists()


def check_finished_tracks(videos: List[Video], output: Path, record) -> None:
    """Before anything changes: refuse a video whose finished tracks were made with other settings, which a
    resume would take as done (``BatchRecord.check_outputs`` does this for mask folders)."""
    if record.overwrite:
        return
    for v in videos:
        prev, out = record.previous(v.name), tracks_path(output, v.name)
        if prev is not None and out.is_file() and prev.get("settings") != record.key:
            raise InputError(f"{record.path}: video {v.name} was tracked with other settings "
                             f"({record._changes(prev.get('settings'))}); its tracks are not this run's: rerun with "
                             f"--overwrite to replace them")
