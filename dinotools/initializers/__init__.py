"""Mask initializers: where a video's first masks come from (``file``; plugins add automatic ones)."""
from dinotools.initializers.file import FileInitializer

__all__ = ["FileInitializer"]
