"""DAVIS-style dataset walking: sequence lists, ground-truth annotations and result folders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from dinotools.errors import InputError
from dinotools.io.masks import read_mask

VOID_ID = 255  # DAVIS-2017 "void" label (object borders, unlabelled regions)


@dataclass
class SequenceGT:
    """Ground truth of one sequence in the official tool's conventions.

    ``ids [T,H,W]`` uint8 object ids with void pixels set to 0; ``void [T,H,W]`` bool;
    ``num_objects`` K = max id of the first frame (objects 1..K are evaluated);
    ``binary``: the annotations were DAVIS-2016 0/255 masks (read as object 1, no void).
    """

    name: str
    frames: List[str]  # annotation file stems, sorted
    paths: List[Path]
    ids: np.ndarray
    void: np.ndarray
    num_objects: int
    binary: bool

    @property
    def shape(self):
        return self.ids.shape[1:]


class DavisDataset:
    """``root/Annotations/<resolution>/<seq>/*.png`` (+ ``JPEGImages``) and its sequence list.

    Sequences come from ``sequences`` when given, else from the first image set found among
    ``ImageSets/2017/<split>.txt``, ``ImageSets/2016/<split>.txt`` and the DAVIS-2016 style
    ``ImageSets/<resolution>/<split>.txt`` (lines of frame paths), else every annotation folder.
    ``max_frames`` keeps only the first frames of each sequence (quick runs; scores then cover
    that shorter clip). ``require_split``: the image set must exist (a set the user named is never
    silently replaced by every sequence).
    """

    def __init__(
        self,
        root,
        split: str = "val",
        resolution: str = "480p",
        sequences: Optional[Sequence[str]] = None,
        max_frames: Optional[int] = None,
        require_split: bool = False,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.max_frames = max_frames
        self.annotations = self.root / "Annotations" / resolution
        self.images = self.root / "JPEGImages" / resolution
        if not self.annotations.is_dir():
            raise InputError(
                f"{self.annotations} not found: --davis must be a DAVIS root holding Annotations/{resolution}/<seq>/"
            )
        self.imageset: Optional[Path] = None
        listed = self._listed_sequences()
        if require_split and self.imageset is None and not sequences:
            sets = self.root / "ImageSets"
            raise InputError(f"image set {split!r} not found: looked for {sets}/2017/{split}.txt, {sets}/2016/{split}.txt "
                             f"and {sets}/{resolution}/{split}.txt; name an existing set, or list --sequences")
        if sequences:
            unknown = [s for s in sequences if not (self.annotations / s).is_dir()]
            if unknown:
                raise InputError(f"sequence(s) {', '.join(unknown)} not found under {self.annotations}")
            self.sequences = list(sequences)
        else:
            self.sequences = listed
        if not self.sequences:
            raise InputError(f"no sequences found under {self.annotations}")

    def _listed_sequences(self) -> List[str]:
        sets = self.root / "ImageSets"
        for path in (sets / "2017" / f"{self.split}.txt", sets / "2016" / f"{self.split}.txt",
                     sets / self.annotations.name / f"{self.split}.txt"):
            if path.is_file():
                self.imageset = path
                names: List[str] = []
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise InputError(f"{path}: cannot be read as a UTF-8 list of sequences ({exc})") from None
                for line in text.split("\n"):
                    line = line.strip()
                    # DAVIS-2016 lists frame paths ("/JPEGImages/480p/bear/00000.jpg ..."); 2017 lists names
                    name = Path(line.split()[0]).parent.name if "/" in line else line
                    if name and name not in names:
                        names.append(name)
                missing = [s for s in names if not (self.annotations / s).is_dir()]
                if missing:
                    raise InputError(f"{path} lists sequence(s) with no annotation folder: {', '.join(missing)}")
                return names
        return sorted(p.name for p in self.annotations.iterdir() if p.is_dir())

    def frame_dir(self, seq: str) -> Path:
        """Folder of the RGB frames of ``seq``."""
        path = self.images / seq
        if not path.is_dir():
            raise InputError(f"frames of sequence {seq} not found: {path} does not exist")
        return path

    def annotation_paths(self, seq: str) -> List[Path]:
        """Sorted annotation PNGs of ``seq`` (the first ``max_frames`` when set)."""
        paths = sorted((self.annotations / seq).glob("*.png"))[: self.max_frames or None]
        if not paths:
            raise InputError(f"sequence {seq}: no annotation PNGs in {self.annotations / seq}")
        return paths

    def first_annotation(self, seq: str):
        """(``[H,W]`` uint8 ids of the first annotation with void cleared, its file stem)."""
        path = self.annotation_paths(seq)[0]
        mask = _read_annotation(path)
        # A tracker must not see 255 as an object id: void is "unknown", i.e. background here.
        return np.where(mask == VOID_ID, 0, mask).astype(np.uint8), path.stem

    def load(self, seq: str) -> SequenceGT:
        """Read every annotation of ``seq`` (void 255 -> 0 and recorded, binary 0/255 -> id 1)."""
        paths = self.annotation_paths(seq)
        first = _read_annotation(paths[0])
        ids = np.zeros((len(paths), *first.shape), dtype=np.uint8)
        void = np.zeros(ids.shape, dtype=bool)
        for t, path in enumerate(paths):
            mask = first if t == 0 else _read_annotation(path)
            if mask.shape != first.shape:  # the official tool would fail on a numpy broadcast here
                raise InputError(
                    f"annotation {path} is {mask.shape[1]}x{mask.shape[0]} but {paths[0].name} is "
                    f"{first.shape[1]}x{first.shape[0]}: all annotations of a sequence must have one size"
                )
            void[t] = mask == VOID_ID
            ids[t] = np.where(void[t], 0, mask)
        # read_mask already mapped DAVIS-2016 0/255 greyscale to id 1; remember it for the report.
        binary = bool(ids.max(initial=0) <= 1 and not void.any() and _is_greyscale(paths[0]))
        # K comes from the first frame only: ids that appear later are never scored.
        return SequenceGT(seq, [p.stem for p in paths], paths, ids, void, int(ids[0].max(initial=0)), binary)


def _read_annotation(path: Path) -> np.ndarray:
    mask = read_mask(path)
    if mask.max(initial=0) > VOID_ID:
        raise InputError(f"annotation {path} holds id {int(mask.max())}; DAVIS ids are 0..255")
    return mask


def _is_greyscale(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as img:
        return img.mode in ("L", "1", "LA")


def read_results(results_dir, gt: SequenceGT, frames: Sequence[str]) -> np.ndarray:
    """Predicted id maps ``[N,H,W]`` uint8 of ``gt.name`` for the frame stems ``frames``.

    Raises InputError naming the file for a missing sequence folder or frame, a size that
    differs from the ground truth, or an id above the ground truth's object count.
    """
    folder = Path(results_dir) / gt.name
    if not folder.is_dir():
        raise InputError(f"results for sequence {gt.name} not found: {folder} does not exist")
    out = np.zeros((len(frames), *gt.shape), dtype=np.uint8)
    # Only the frames to be scored are read, as the official tool: the first and last may be absent.
    for i, stem in enumerate(frames):
        path = folder / f"{stem}.png"
        if not path.is_file():
            raise InputError(
                f"result frame {path} is missing: results need one PNG per annotated frame, named like the "
                f"ground truth ({gt.paths[0].parent}/{stem}.png)"
            )
        pred = read_mask(path)
        if pred.shape != gt.shape:
            raise InputError(
                f"result {path} is {pred.shape[1]}x{pred.shape[0]} but the ground truth is "
                f"{gt.shape[1]}x{gt.shape[0]}: results must have the annotations' size"
            )
        top = int(pred.max(initial=0))
        if top > gt.num_objects:  # the official tool exits without saying where; name file and id
            raise InputError(
                f"result {path} holds id {top} but sequence {gt.name} has {gt.num_objects} object(s) "
                f"(ids 1..{gt.num_objects} from its first annotation {gt.paths[0].name})"
            )
        out[i] = pred
    return out
