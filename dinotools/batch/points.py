"""``batch --points``: what differs from a mask batch (each video's tracks are ``OUTPUT/<name>.npz``).

The engines, the record (``batch.json``) and the worker are the mask batch's; ``is_points`` tells
them apart by the settings (``runs.point_settings.PointSettings``). A video's queries are an
``N x N`` grid (``settings.grid``) or ``QUERIES/<name>.csv`` (``settings.queries_dir``).
"""
from __future__ import annotations

from pathlib import Path
from typing import List

from dinotools.batch.sources import BatchInputError, Video
from dinotools.batch.worker import Task
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


def plan_points(videos: List[Video], output: Path, record, overwrite: bool, fence=None):
    """(tasks, skipped names), as ``run._plan`` for masks: a video recorded done whose tracks are there and
    complete (no run record beside them) is skipped; any other runs, resuming a stopped run's tracks."""
    from dinotools.runs.point_record import record_path

    tasks, skipped = [], []
    for v in videos:
        out, prev = tracks_path(output, v.name), record.previous(v.name) or {}
        finished = (prev.get("status") in ("done", "skipped") and prev.get("settings") == record.key
                    and out.is_file() and not record_path(out).exists())  # skipped only with the same settings
        if finished and not overwrite:
            record.update(v.name, status="skipped")
            skipped.append(v.name)
        else:
            tasks.append(Task(v, out, resume=not overwrite, overwrite=overwrite, fence=fence))
    return tasks, skipped
