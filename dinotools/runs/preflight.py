"""Checks a job makes before its backbone loads: parameters against the frame, masks against the frames, every
output path."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import List, Optional, Tuple

from dinotools.errors import InputError, UserError
from dinotools.io.export_common import video_name
from dinotools.io.masks import MAX_PNG_ID, check_mask, read_mask
from dinotools.io.overlay import check_overlay_path
from dinotools.io.paths import (
    check_name_lengths,
    check_output_file,
    make_output_folder,
    name_max,
    remove_created,
)
from dinotools.runs.earlier import check_overwrite, remove_earlier, survey

log = logging.getLogger(__name__)


def first_frame_size(source) -> Tuple[int, int]:
    """``(H, W)`` of the first frame (decodes one frame; a video is reopened when tracking starts)."""
    if source.files is not None:
        return tuple(source.read(0).shape[:2])
    frames = iter(source)
    try:
        return tuple(next(frames).shape[:2])
    finally:
        frames.close()


def check_frame_params(settings, source) -> None:
    """Parameters bounded by the frame (a refiner's radius no larger than the frame) against the first
    frame's size, read only when such a parameter is given."""
    from dinotools.runs.limits import check_settings_params, needs_frame_size

    if needs_frame_size(settings):
        check_settings_params(settings, first_frame_size(source))


def check_masks(masks: dict, source=None) -> None:
    """Unreadable masks, masks without objects, ids an indexed PNG cannot hold, masks for frames past
    the end: one line each. Masks are read one at a time (a folder of thousands stays cheap in memory)."""
    if source is not None and masks:
        last = max(masks)
        if last >= len(source):
            where = f"mask {masks[last]}" if isinstance(masks[last], (str, Path)) else f"the mask for frame {last}"
            if not source.is_video:
                raise InputError(f"{where} is for frame {last}, but {source.path} holds {len(source)} frames "
                                 f"(0-{len(source) - 1})")
            log.warning("%s is for frame %d, but video %s announces %d frames; it is used if that frame decodes",
                        where, last, source.path, len(source))
    for index, m in masks.items():
        if isinstance(m, (str, Path)):
            arr, where = read_mask(m), f"mask {m}"
        else:
            arr, where = m, f"mask for frame {index}"
        check_mask(arr, where)
        if arr.max() > MAX_PNG_ID:
            raise UserError(f"{where} has object id {int(arr.max())}; the indexed PNG outputs hold ids up to "
                            f"{MAX_PNG_ID}: renumber the objects")


def _same(a, b) -> bool:
    try:
        return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def check_outputs(settings, source, frames, mask, output: Path, save_probs: Optional[Path], *, overwrite: bool,
                  resume: bool) -> List[Path]:
    """Every output path is usable before any work: returns the folders created (removed if the run stops
    before writing). Outputs never replace an input: the frames, the masks or the video."""
    inputs = [frames, mask] if mask is not None else [frames]
    files = {"--report": settings.report, "--overlay": settings.overlay}
    for flag, path in {"--output": output, "--save-probs": save_probs, **files}.items():
        if any(_same(path, p) for p in inputs):
            raise InputError(f"{flag} {path} is an input (the frames or the masks): writing there would replace "
                             f"it; choose another path")
    read = _inputs(frames, mask, source)
    for flag, folder in (("--output", output), ("--save-probs", save_probs)):
        if folder is not None:
            _check_holds_no_input(folder, flag, read)
    if settings.report is not None and _same(settings.report, settings.overlay):
        raise InputError(f"--report and --overlay are the same file {settings.report}; give two names")
    for flag, path in files.items():
        check_output_file(path, flag)
    if settings.overlay is not None:
        check_overlay_path(settings.overlay)
    created = prepare_output(output, overwrite, resume=resume)
    try:
        if save_probs is not None:
            created += make_output_folder(save_probs, "--save-probs folder")
        _check_frame_names(source, output, save_probs)
        if overwrite:  # before anything is removed: files dinotools did not write are never touched
            check_overwrite(survey(output, [save_probs, output / "probs"], video_name(frames), settings.formats))
    except BaseException:
        remove_created(created)
        raise
    return created


def _inputs(frames, mask, source) -> List[Path]:
    """Every path a run reads: the frames (folder or video), the mask file or folder, and the targets
    of symlinked frame or mask files (one ``lstat`` each: cheap next to decoding the frames)."""
    paths = [Path(p) for p in (frames, mask) if p is not None]
    files = list(getattr(source, "files", None) or [])
    if mask is not None and Path(mask).is_dir():
        files += list(Path(mask).iterdir())
    return paths + [Path(p).resolve() for p in files if Path(p).is_symlink()]


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_holds_no_input(folder: Path, flag: str, inputs: List[Path]) -> None:
    """``folder`` holds no input at any depth, and is not inside an input folder (its outputs would mix
    with the inputs; ``--overwrite`` would see them). Paths are compared as given and with symlinks
    resolved, so neither a symlinked output folder nor a symlinked input slips through."""
    for path in inputs:
        for out in {Path(os.path.abspath(folder)), Path(folder).resolve()}:
            for inp in {Path(os.path.abspath(path)), path.resolve()}:
                if _inside(inp, out):
                    raise InputError(f"{flag} {folder} holds the input {path}: outputs and inputs would mix (and "
                                     f"--overwrite could remove it); choose a folder that holds no input")
                if _inside(out, inp) and inp.is_dir():
                    raise InputError(f"{flag} {folder} is inside the input folder {path}: outputs and inputs would "
                                     f"mix; choose a folder outside it")


def _check_frame_names(source, output: Path, save_probs: Optional[Path]) -> None:
    """Outputs are named like the frames: the longest name must fit the output file system."""
    longest = max(source.names, key=lambda n: len(os.fsencode(n)), default="")
    for folder, suffix in ((output, ".png"), (save_probs, ".npz")):
        if folder is not None and len(os.fsencode(longest + suffix)) > name_max(folder):
            raise InputError(f"frame name {longest[:40]!r}... is too long for an output name in {folder} (the file "
                             f"system takes {name_max(folder)} bytes): rename the frames")


def prepare_output(output: Path, overwrite: bool, resume: bool = False) -> List[Path]:
    """Create ``output``; refuse a non-empty folder unless ``overwrite`` or ``resume`` (finished work is
    kept), and one this process cannot write into (checked before any frame is tracked).
    Returns the folders created."""
    output = Path(output)
    check_name_lengths(output, "output folder")
    if output.exists() and not output.is_dir():
        raise InputError(f"output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not (overwrite or resume):
        raise InputError(f"output folder {output} is not empty; pass --overwrite to replace its files "
                         f"or --resume to continue an interrupted run")
    return make_output_folder(output, "output folder")


def remove_earlier_outputs(output: Path, save_probs: Optional[Path], video: Optional[str] = None,
                           formats=()) -> None:
    """``--overwrite``: remove what an earlier run wrote in ``output`` (label PNGs, exports, spool, run
    record, temp files) and its probabilities in ``save_probs`` and ``OUTPUT/probs``, so the folder
    never mixes two runs (a shorter new run would leave stale frames, a run without ``--format`` or
    ``--save-probs`` stale exports or probabilities). Files dinotools did not write are never removed:
    they are refused first (``dinotools.runs.earlier``). ``video``: this run's video name (default: the
    folder's), ``formats``: its exports."""
    output = Path(output)
    earlier = survey(output, [save_probs, output / "probs"], video or output.name, formats)
    check_overwrite(earlier)  # checked again right before removing: the folder may have changed
    remove_earlier(earlier, output)
