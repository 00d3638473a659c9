"""Many videos: ``run_batch`` tracks a DAVIS root or a list of videos, locally or on Ray (``python -m dinotools.batch``)."""
from dinotools.batch.listfile import list_videos
from dinotools.batch.record import RECORD, BatchRecord
from dinotools.batch.run import BatchResult, run_batch
from dinotools.batch.sources import BatchInputError, Video, davis_videos, validate

__all__ = ["RECORD", "BatchInputError", "BatchRecord", "BatchResult", "Video", "davis_videos", "list_videos",
           "run_batch", "validate"]
