"""Zero-shot point tracker: each query's patch feature matched frame by frame near the point's predicted position.

Per frame and query (all queries at once, ``dinotools.ops.local_match``): top-k soft-argmax of the
template's similarity in a ``(2r+1)^2`` window around the predicted position, refined by a local
soft-argmax on the bicubically upsampled similarity. Visible when the similarity clears
``sim_threshold`` and the found point, matched back into the previous frame, lands within
``fb_threshold`` patches of where it was (after an occlusion: of where the scene carried it).
Occluded points move with the visible points around them (``scene_motion``). Streams: the state
holds one frame's features and a few vectors per query.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dinotools.errors import ConfigError, InputError
from dinotools.interfaces.params import Range, declare_params
from dinotools.ops.local_match import MatchConfig, local_match, sample_features
from dinotools.ops.preprocess import preprocess as default_preprocess
from dinotools.registry import create_backbone
from dinotools.trackers.point_state import PointResult, PointState
from dinotools.trackers.scene_motion import scene_motion


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@declare_params(
    "tracker points",
    short_side=Range(32, 4096, integer=True, optional=True, doc="frames resized to this short side (pixels); below "
                     "32 a frame is one patch high, above 4096 its features fit in no GPU"),
    radius=Range(1, 256, integer=True, doc="search window half-size in patches; the window's (2r+1)^2 cells are "
                 "scored per query and frame, beyond 256 (the grid of a 4096-pixel side) more than any frame holds"),
    topk=Range(1, integer=True, doc="candidates of the coarse soft-argmax (more than the window's cells: all of them)"),
    temperature=Range(1e-4, 10, doc="coarse soft-argmax temperature over cosine similarities (in [-1, 1]); below "
                      "1e-4 it is already an argmax, above 10 the candidates weigh alike"),
    refine_scale=Range(1, 16, integer=True, doc="similarity upsampling for sub-patch refinement (1: off); 16 is "
                       "one pixel per sub-cell at patch size 16"),
    refine_radius=Range(0, 256, lo_open=True, doc="refinement radius in grid cells; at least sqrt(0.5) / "
                        "refine_scale (or no sub-cell is selected), at most the largest search window"),
    refine_temperature=Range(1e-4, 10, doc="refinement soft-argmax temperature, bounds as temperature's"),
    sim_threshold=Range(-1, 1, doc="occluded below this cosine similarity (cosines lie in [-1, 1])"),
    fb_threshold=Range(0, lo_open=True, finite=False, doc="forward-backward tolerance in patches (inf: no check)"),
    template_update=Range(0, 1, doc="weight of the latest visible feature blended into the template"),
    motion_bins=Range(1, 64, integer=True, doc="cells per side of the scene-motion partition; beyond 64 (4096 "
                      "cells) a cell rarely holds a visible point to take the median of"),
    shifts=Range(1, 16, integer=True, doc="sub-patch offsets per side (shifts^2 backbone passes); must divide the "
                 "patch size (16)"),
)
class PointTracker:
    """Tracks query points ``(t, x, y)`` (pixels; any query frame) through a video.

    Args:
        backbone: registered name or a backbone object (see ``dinotools.interfaces.Backbone``).
        short_side: frames resized so their short side is this (rounded up to the patch size)
            before the backbone; ``None`` keeps the frame size. Positions are always reported in
            the input frame's pixels.
        radius: search window half-size in patches around the predicted position.
        topk, temperature: candidates of the coarse soft-argmax and its softmax temperature.
        refine_scale, refine_radius, refine_temperature: sub-cell refinement (``MatchConfig``;
            the radius in grid cells); ``refine_scale=1`` turns it off.
        sim_threshold: a point whose best similarity falls below this is occluded.
        fb_threshold: forward-backward tolerance in patches (``inf`` turns the check off).
        template_update: weight of the feature at the last visible position blended into the
            query's template (0 = match the query frame's feature only).
        motion_bins: occluded points move with the median motion of the visible points in their cell of
            a ``motion_bins x motion_bins`` partition of the frame; a point this motion carries
            out of the frame is occluded (see ``scene_motion``).
        predict: centre the next search where the scene's latest motion would carry each point
            (constant velocity), instead of at its last position.
        shifts: features at ``shifts x shifts`` sub-patch offsets: the backbone also runs on copies
            of the frame shifted by multiples of ``patch_size / shifts`` pixels and the outputs
            interleave into a grid ``shifts`` times denser (``shifts**2`` backbone passes). A
            point moving by a fraction of a patch then still finds a patch centred near it.
        center: subtract each frame's mean patch feature before L2-normalising. Patch features
            share a large common component (colour statistics do, so do ViT features), which
            squeezes every cosine similarity towards 1; without it the similarities carry
            little contrast for the soft-argmax and the occlusion threshold.
        device: where features and matching live.
        backbone_kwargs: passed to ``create_backbone`` when ``backbone`` is a name.
    """

    def __init__(
        self,
        backbone="baseline",
        *,
        short_side: Optional[int] = 480,
        radius: int = 2,
        topk: int = 4,
        temperature: float = 0.05,
        refine_scale: int = 4,
        refine_radius: float = 1.0,
        refine_temperature: float = 0.02,
        sim_threshold: float = 0.5,
        fb_threshold: float = 1.0,
        template_update: float = 0.0,
        motion_bins: int = 4,
        predict: bool = True,
        shifts: int = 1,
        center: bool = True,
        device="cpu",
        backbone_kwargs: Optional[dict] = None,
    ) -> None:
        # A sub-cell lies within sqrt(2)/2 sub-cells of any point: a smaller radius could select none.
        _check(refine_radius >= math.sqrt(0.5) / refine_scale,
               f"refine_radius must be >= {math.sqrt(0.5) / refine_scale:.3f} cells, got {refine_radius!r}")
        self.device = torch.device(device)
        if isinstance(backbone, str):
            backbone = create_backbone(backbone, device=str(self.device), **(backbone_kwargs or {}))
        self.backbone = backbone
        self.short_side = short_side
        # The search radius is given in patches (it is about motion); matching works in grid cells.
        self.match = MatchConfig(radius * shifts, topk, float(temperature), refine_scale, float(refine_radius),
                                 float(refine_temperature))
        self.sim_threshold, self.fb_threshold = float(sim_threshold), float(fb_threshold)
        self.template_update = float(template_update)
        self.center = bool(center)
        self.shifts = shifts
        self.motion_bins = motion_bins
        self.predict = bool(predict)

    # features -----------------------------------------------------------------------------
    def preprocess(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """``B x [H,W,3]`` uint8 -> ``[B,3,H',W']`` normalised, on the tracker's device."""
        batch = np.stack(frames) if not isinstance(frames, np.ndarray) else frames
        custom = getattr(self.backbone, "preprocess", None)
        if custom is not None:
            return custom(batch, short_side=self.short_side, device=self.device)
        return default_preprocess(batch, short_side=self.short_side, multiple=self.backbone.patch_size,
                                  mean=self.backbone.mean, std=self.backbone.std, device=self.device)

    @torch.inference_mode()
    def encode(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """``B x [H,W,3]`` uint8 frames -> ``[B,h,w,D]`` float32 features, (centred and) L2-normalised per patch."""
        images = self.preprocess(frames)  # [B,3,H',W']
        feats = self.backbone(images).float() if self.shifts == 1 else self._shifted(images)
        if self.center:
            feats = feats - feats.mean(dim=(1, 2), keepdim=True)
        return F.normalize(feats, p=2, dim=-1)

    def _shifted(self, images: torch.Tensor) -> torch.Tensor:
        """``[B,3,H',W']`` -> ``[B,s*h,s*w,D]``: cell (I, J) is the patch whose top-left corner is at
        ``(I, J) * patch_size / s`` (copies shifted left/up, the uncovered border replicated)."""
        s, p = self.shifts, self.backbone.patch_size
        if p % s:
            raise ConfigError(f"shifts ({s}) must divide the backbone's patch size ({p})")
        b = images.shape[0]
        out = None
        for i in range(s):
            for j in range(s):
                dy, dx = i * p // s, j * p // s
                shifted = F.pad(images[:, :, dy:, dx:], (0, dx, 0, dy), mode="replicate")
                f = self.backbone(shifted).float()  # [B,h,w,D]
                if out is None:
                    out = f.new_empty(b, f.shape[1] * s, f.shape[2] * s, f.shape[3])
                out[:, i::s, j::s] = f
        return out

    # state and step -----------------------------------------------------------------------
    def new_state(self, queries) -> PointState:
        """``queries [N,3]`` (t, x, y): frame index (an integer) and pixel position."""
        q = torch.as_tensor(np.asarray(queries, dtype=np.float64))
        if q.ndim != 2 or q.shape[1] != 3:
            raise InputError(f"queries must be an [N,3] array of (t, x, y), got shape {tuple(q.shape)}")
        if not torch.isfinite(q).all():
            raise InputError(f"query {int((~torch.isfinite(q)).any(1).nonzero()[0])} is not finite")
        bad = (q[:, 0] < 0) | (q[:, 0] != q[:, 0].round())
        if bad.any():
            i = int(bad.nonzero()[0])
            raise InputError(f"query {i}: frame index t={q[i, 0].item():g} must be an integer >= 0")
        return PointState(queries=q, device=self.device)

    @torch.inference_mode()
    def step(self, state: PointState, features: torch.Tensor, frame_size) -> PointResult:
        """Track one frame. ``features [h,w,D]`` (from ``encode``), ``frame_size`` (H, W) of the input frame."""
        index = state.next_index
        state.next_index += 1
        if not state.started:
            self._start(state, features, frame_size)
        elif tuple(features.shape[:2]) != state.grid or tuple(int(s) for s in frame_size) != state.frame_size:
            raise InputError(f"frame {index} is {frame_size[1]}x{frame_size[0]} ({features.shape[0]}x"
                             f"{features.shape[1]} patches) but the video started with {state.frame_size[1]}x"
                             f"{state.frame_size[0]}: all frames must have the same size")
        tracked = state.active.nonzero().squeeze(1)  # queries whose frame came before this one
        if tracked.numel():
            # All of them (the usual case): a slice, so that no [N,D] template copy is made.
            self._track(state, features, slice(None) if tracked.numel() == state.num_queries else tracked)
        new = (state.queries[:, 0] == index).to(self.device).nonzero().squeeze(1)
        if new.numel():
            self._activate(state, features, new)
        state.prev_features = features
        xy = state.to_pixels(state.pos)
        xy[new] = state.queries[new.cpu(), 1:].float().to(xy.device)  # the query itself, exactly
        xy[~state.active] = float("nan")
        return PointResult(index, xy.cpu().numpy(), (state.visible & state.active).cpu().numpy())

    def _start(self, state: PointState, features: torch.Tensor, frame_size) -> None:
        hh, ww = (int(s) for s in frame_size)
        x, y = state.queries[:, 1], state.queries[:, 2]
        outside = (x < 0) | (x > ww) | (y < 0) | (y > hh)
        if outside.any():
            i = int(outside.nonzero()[0])
            raise InputError(f"query {i} (x={x[i].item():g}, y={y[i].item():g}) lies outside the {ww}x{hh} "
                             f"frame (0 <= x <= {ww}, 0 <= y <= {hh})")
        n, d = state.num_queries, features.shape[-1]
        state.frame_size, state.grid = (hh, ww), tuple(features.shape[:2])
        state.anchor = features.new_zeros(n, d)
        state.template = features.new_zeros(n, d)
        state.offset = self.shifts / 2  # a cell's patch starts at its grid position: its centre is half a patch on
        state.pos = state.to_grid(state.queries[:, 1:]).to(self.device)
        state.centre = state.pos.clone()
        state.visible = torch.zeros(n, dtype=torch.bool, device=self.device)
        state.active = torch.zeros(n, dtype=torch.bool, device=self.device)

    def _activate(self, state: PointState, features: torch.Tensor, new: torch.Tensor) -> None:
        feats = F.normalize(sample_features(features, state.pos[new]), dim=1)
        state.anchor[new] = feats
        state.template[new] = feats
        state.centre[new] = state.pos[new]
        state.visible[new] = True
        state.active[new] = True

    def _track(self, state: PointState, features: torch.Tensor, idx) -> None:
        """Match the queries ``idx`` (an index tensor, or ``slice(None)`` for all) in this frame."""
        prev_pos, was_visible = state.pos[idx], state.visible[idx]
        pos, score = local_match(state.template[idx], features, state.centre[idx], self.match)
        visible = score >= self.sim_threshold
        if math.isfinite(self.fb_threshold):
            # Match the found point back into the previous frame: it must land where the point was.
            found = F.normalize(sample_features(features, pos), dim=1)
            back, _ = local_match(found, state.prev_features, pos, self.match)
            consistent = (back - prev_pos).norm(dim=1) <= self.fb_threshold * self.shifts
            visible &= consistent | ~was_visible  # after an occlusion there is nothing to match back to
        both = visible & was_visible
        field = scene_motion(prev_pos[both], pos[both] - prev_pos[both], state.grid, self.motion_bins)
        # Where the visible points around it carry each point. An occluded point (or a lost one: a
        # failed check says the match is not the point) is put there; one carried out of the frame
        # is out of view (its match can only sit on the border).
        carried = prev_pos + field(prev_pos)
        if math.isfinite(self.fb_threshold):
            # Coming back from an occlusion: the match must be where the scene carried the point.
            near = (pos - carried).norm(dim=1) <= self.fb_threshold * self.shifts
            visible &= was_visible | near
        visible &= state.inside(carried)
        found = torch.where(visible[:, None], pos, carried)
        state.pos[idx] = found
        # The next search is centred where the scene's motion would carry the point (constant velocity).
        state.centre[idx] = found + field(found) if self.predict else found
        state.visible[idx] = visible
        if self.template_update > 0 and visible.any():
            keep = visible.nonzero().squeeze(1) if isinstance(idx, slice) else idx[visible]
            recent = F.normalize(sample_features(features, pos[visible]), dim=1)
            blend = (1 - self.template_update) * state.anchor[keep] + self.template_update * recent
            state.template[keep] = F.normalize(blend, dim=1)

    # whole videos -----------------------------------------------------------------------------
