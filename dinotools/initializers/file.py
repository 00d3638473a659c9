"""The ``file`` mask initializer: one mask file for the first frame, or a folder of per-frame masks."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np

from dinotools.errors import InputError
from dinotools.io.frames import natural_key
from dinotools.io.masks import read_mask
from dinotools.interfaces.params import Range, declare_params

MASK_SUFFIXES = {".png", ".npy"}


@declare_params(
    "initializer file",
    frame=Range(0, integer=True, doc="the frame a single mask file is for (0: the first); one past the last frame "
                "is refused once the frames are counted"),
    void=Range(1, 65535, integer=True, optional=True, doc="mask id read as background (DAVIS-2017: 255); 0 is the "
               "background already, and mask ids are 16-bit at most"),
)
class FileInitializer:
    """Masks from files: PNG (palette, greyscale ids, binary 0/255) or ``.npy``.

    ``path`` a file: the mask of frame 0 (or of ``frame``). ``path`` a folder: one mask per
    frame that has one, named like the frame (``00005.png`` for ``00005.jpg``) or by index.
    ``void``: an id read as background (255 in DAVIS-2017 annotations: "not labelled"); the
    masks are then returned as arrays with it cleared.
    """

    def __init__(self, path, frame: int = 0, void: Optional[int] = None) -> None:
        self.path = Path(path)
        self.frame = frame
        self.void = void
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

    def masks(self, frame_names: Optional[Sequence[str]] = None) -> Dict[int, Union[Path, np.ndarray]]:
        """``{frame index: mask file}`` (``[H,W]`` id arrays with ``void``); folder files are matched
        to ``frame_names`` by stem, or read as indices when their stem is a number."""
        if self.void is not None:
            return {i: self._clear_void(read_mask(p)) for i, p in self._paths(frame_names).items()}
        return self._paths(frame_names)

    def _clear_void(self, mask: np.ndarray) -> np.ndarray:
        return np.where(mask == self.void, 0, mask)

    def _paths(self, frame_names: Optional[Sequence[str]] = None) -> Dict[int, Path]:
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
        path = self._paths().get(frame_index)
        if path is None:
            return None
        mask = read_mask(path)
        return mask if self.void is None else self._clear_void(mask)
