"""Many videos: ``run_batch`` tracks a DAVIS root or a list of videos, locally or on Ray (``python -m dinotools.batch``)."""
from .listfile import list_videos
from .record import RECORD, BatchRecord
from .run import BatchResult, run_batch
from .sources import BatchInputError, Video, davis_videos, validate

__all__ = ["RECORD", "BatchInputError", "BatchRecord", "BatchResult", "Video", "davis_videos", "list_videos",
           "run_batch", "validate"]
