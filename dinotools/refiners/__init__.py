"""Refiners: patch-grid probabilities ``[h,w,M]`` + the frame -> full-resolution scores ``[M,H,W]``."""
from .base import first_argmax, stretch
from .bilinear import BilinearRefiner
from .nearest import NearestRefiner

__all__ = ["BilinearRefiner", "NearestRefiner", "first_argmax", "stretch"]
