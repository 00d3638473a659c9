"""The component contracts (public API for plugins): the protocols each kind follows
(``protocols``) and the declared ranges of their numeric parameters (``params``)."""
from dinotools.interfaces.params import Range, declare_params
from dinotools.interfaces.protocols import (
    Backbone,
    MaskInitializer,
    PointTracker,
    Propagator,
    Refiner,
    Tracker,
    missing_members,
    protocol_members,
)

__all__ = ["Backbone", "MaskInitializer", "PointTracker", "Propagator", "Refiner", "Tracker", "Range",
           "declare_params", "missing_members", "protocol_members"]
