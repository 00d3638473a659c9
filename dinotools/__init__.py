"""dinotools: segment and track every object in a video with DINOv3 label propagation.

Importing this package is cheap: components are discovered on first list/create.
"""
from dinotools.registry import (
    ComponentError,
    create_backbone,
    create_initializer,
    create_propagator,
    create_refiner,
    create_tracker,
    list_components,
    register_backbone,
    register_initializer,
    register_propagator,
    register_refiner,
    register_tracker,
)

__version__ = "0.1.0"

_PIPELINE = ("track_video", "track_points")  # the frame loops, imported on first use (they need torch)


def __getattr__(name: str):
    if name in _PIPELINE:
        import dinotools.pipeline as pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'dinotools' has no attribute {name!r}")


__all__ = [
    "ComponentError",
    "create_backbone",
    "create_initializer",
    "create_propagator",
    "create_refiner",
    "create_tracker",
    "list_components",
    "register_backbone",
    "register_initializer",
    "register_propagator",
    "register_refiner",
    "register_tracker",
    "track_points",
    "track_video",
    "__version__",
]
