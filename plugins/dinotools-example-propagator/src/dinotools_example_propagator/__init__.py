"""dinotools-example-propagator: a template plugin adding the ``example-knn`` propagator to dinotools."""
from .knn import NearestNeighbourPropagator

__all__ = ["NearestNeighbourPropagator"]
