"""The ``file`` mask initializer: one mask file for the first frame, or a folder of per-frame masks."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from .errors import InputError
from .io.frames import natural_key
from .io.masks import read_mask

MASK_SUFFIXES = {".png", ".npy"}


class FileInitializer:
    """Masks from files: PNG (palette, greyscale ids, binary 0/255) or ``.npy``.

    ``path`` a file: the mask of frame 0 (or of ``frame``). ``path`` a folder: one mask per
    frame that has one, named like the frame (``00005.png`` for ``00005.jpg``) or by index.
    """

    def __init__(self, path, frame: int = 0) -> None:
        self.path = Path(path)
        self.frame = frame
        if self.path.is_dir():
            self.files = sorted(
                (p for p in self.path.iterdir() if p.suffix.lower() in MASK_SUFFIXES),
                key=lambda p: natural_key(p.name),
            )
            if not self.files:
                raise InputError(f"mask folder {self.path} holds no .png or .npy mask")
        elif self.path.is_file():
            self.files = [self.path]
        else:
            raise InputError(f"mask {self.path} not found")

    def masks(self, frame_names: Optional[Sequence[str]] = None) -> Dict[int, Path]:
        """``{frame index: mask file}``; folder files are matched to ``frame_names`` by stem,
        or read as indices when their stem is a number."""
        if not self.path.is_dir():
            return {self.frame: self.path}
        by_name = {n: i for i, n in enumerate(frame_names or [])}
        out = {}
        for p in self.files:
            if p.stem in by_name:
                out[by_name[p.stem]] = p
            elif p.stem.isdigit():
                out[int(p.stem)] = p
            else:
                raise InputError(f"mask {p} matches no frame name and its name is not a frame index")
        return out

    def __call__(self, frame_index: int, frame: np.ndarray) -> Optional[np.ndarray]:
        path = self.masks().get(frame_index)
        return None if path is None else read_mask(path)
