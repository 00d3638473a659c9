"""dinotools-sam2: SAM 2 automatic masks as a dinotools mask initializer (entry point ``sam2``).

Importing this package does not import SAM 2, torch or torchvision; they load when the
initializer is built with weights.
"""
from .idmap import fill_holes, quality, records_to_id_map
from .initializer import Sam2AutomaticInitializer
from .loading import Sam2Unavailable

__all__ = ["Sam2AutomaticInitializer", "Sam2Unavailable", "fill_holes", "quality", "records_to_id_map"]
