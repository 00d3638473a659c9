"""dinotools-sam2: SAM 2 as a dinotools mask initializer and a refiner (entry points ``sam2`` of both kinds).

Importing this package does not import SAM 2, torch or torchvision; they load when the
initializer is built with weights, and when the refiner (``Sam2Refiner``) is first used.
"""
from .idmap import fill_holes, quality, records_to_id_map
from .initializer import Sam2AutomaticInitializer
from .loading import Sam2Unavailable

__all__ = ["Sam2AutomaticInitializer", "Sam2Refiner", "Sam2Unavailable", "fill_holes", "merge", "quality",
           "records_to_id_map"]


def __getattr__(name: str):
    if name in ("Sam2Refiner", "merge"):  # the refiner module imports torch: only on demand
        from . import refiner

        return getattr(refiner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
