"""dinotools: segment and track every object in a video with DINOv3 label propagation.

Importing this package is cheap: components are discovered on first list/create.
"""
from .registry import (
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
    "__version__",
]
