"""Refiners: patch-grid probabilities ``[h,w,M]`` + the frame -> full-resolution scores ``[M,H,W]``."""
from dinotools.refiners.base import first_argmax, stretch
from dinotools.refiners.bilinear import BilinearRefiner
from dinotools.refiners.nearest import NearestRefiner

__all__ = ["BilinearRefiner", "NearestRefiner", "first_argmax", "stretch"]
