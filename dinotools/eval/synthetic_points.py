"""TAP-Vid-style sequences with exact ground truth: a real image seen through a smoothly moving, deforming camera.

Frame t shows the source image through the map ``B_t(p) = H_t(p + d_t(p))`` from frame pixels to
source pixels: ``H_t`` a homography (shift, rotation, zoom, perspective, all smooth in t) and
``d_t`` a smooth, small, invertible deformation. A track is a source point ``s`` followed through
``p_t = B_t^-1(s)`` (exact: ``H_t`` inverted in closed form, ``p + d_t(p)`` by a contraction to
1e-9 px). Occluders are textured discs and boxes pasted in front, moving on their own; a point is
occluded exactly when it lies inside one (the same test as the pasted pixels' centres) or
outside the frame. Coordinates: (x, y) pixels, (0, 0) the top-left corner of the top-left pixel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import cv2
import numpy as np


@dataclass
class Warp:
    """``B(p) = H(p + d(p))``: frame pixels -> source pixels; ``d(p) = sum_j a_j sin(k_j . p + phi_j)``."""

    homography: np.ndarray  # [3,3]
    amps: np.ndarray  # [J,2] displacement amplitude (x, y) of each wave, pixels
    waves: np.ndarray  # [J,2] wave vectors, radians per pixel
    phases: np.ndarray  # [J]

    def deform(self, p: np.ndarray) -> np.ndarray:
        """``p [...,2]`` -> ``p + d(p)``."""
        arg = p @ self.waves.T + self.phases  # [...,J]
        return p + np.sin(arg) @ self.amps

    def lipschitz(self) -> float:
        """An upper bound of the Lipschitz constant of ``d`` (< 1 makes ``p + d(p)`` invertible)."""
        return float(np.sum(np.linalg.norm(self.amps, axis=1) * np.linalg.norm(self.waves, axis=1)))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """``p [...,2]`` frame pixels -> source pixels."""
        q = self.deform(np.asarray(p, dtype=np.float64))
        hq = q @ self.homography[:, :2].T + self.homography[:, 2]
        return hq[..., :2] / hq[..., 2:]

    def inverse(self, s: np.ndarray, tol: float = 1e-9, max_iter: int = 500) -> np.ndarray:
        """``s [...,2]`` source pixels -> the frame pixels ``p`` with ``B(p) = s``."""
        s = np.asarray(s, dtype=np.float64)
        hs = s @ np.linalg.inv(self.homography)[:, :2].T + np.linalg.inv(self.homography)[:, 2]
        q = hs[..., :2] / hs[..., 2:]  # p + d(p) = q
        p = q.copy()
        for _ in range(max_iter):  # p <- q - d(p): a contraction because lipschitz() < 1
            nxt = q - (self.deform(p) - p)
            if np.max(np.abs(nxt - p), initial=0.0) < tol:
                return nxt
            p = nxt
        raise RuntimeError("deformation inverse did not converge (lipschitz >= 1?)")


@dataclass
class Occluder:
    """A textured disc (``half[0]`` = radius) or box (``half`` = half sizes) moving linearly in the frame."""

    kind: str  # "disc" or "box"
    start: np.ndarray  # [2] centre (x, y) at frame 0
    velocity: np.ndarray  # [2] pixels per frame
    half: np.ndarray  # [2]
    texture: np.ndarray  # [2*hy, 2*hx, 3] uint8 covering the shape's bounding box

    def inside(self, p: np.ndarray, t: int) -> np.ndarray:
        """``p [...,2]`` -> bool ``[...]``: strictly inside the shape at frame ``t``."""
        rel = np.asarray(p, dtype=np.float64) - (self.start + self.velocity * t)
        if self.kind == "disc":
            return np.sum(rel * rel, axis=-1) < self.half[0] ** 2
        return np.all(np.abs(rel) < self.half, axis=-1)


@dataclass
class PointSequence:
    """A generated video and its exact tracks (query-first: each query is its track's first visible frame)."""

    frames: np.ndarray  # [T,H,W,3] uint8
    tracks: np.ndarray  # [N,T,2] float64 (x, y) pixels, also where occluded
    occluded: np.ndarray  # [N,T] bool (inside an occluder or outside the frame)
    queries: np.ndarray  # [N,3] (t, x, y)
    source_points: np.ndarray  # [N,2] the tracked points in source pixels
    warps: List[Warp] = field(default_factory=list)
    occluders: List[Occluder] = field(default_factory=list)

    @property
    def frame_size(self) -> Tuple[int, int]:
        return self.frames.shape[1], self.frames.shape[2]


def _smooth(rng, n: int, speed: float) -> np.ndarray:
    """A random smooth curve over frames ``0..n-1``: starts at 0, changes by at most ``speed`` per frame
    (a sinusoid with a period of 40-120 frames, so its amplitude is ``speed * period / 2pi``)."""
    period, phase = rng.uniform(40, 120), rng.uniform(0, 2 * np.pi)
    a = rng.uniform(0.5, 1.0) * speed * period / (2 * np.pi) * rng.choice([-1, 1])
    t = np.arange(n)
    return a * (np.sin(2 * np.pi * t / period + phase) - np.sin(phase))


def _camera(rng, n: int, size, src_size, motion: float) -> List[Warp]:
    """``n`` warps of an ``(H, W)`` frame into a source of ``src_size``: smooth in t, identity-like at t=0."""
    h, w = size
    sh, sw = src_size
    r = 0.5 * np.hypot(h, w)  # frame corner distance: rotation, zoom and perspective move it the most
    # Per-frame speeds at motion=1: shift 2-5 px, rotation and zoom up to ~1 px at the corners.
    shift = np.stack([_smooth(rng, n, rng.uniform(2, 5) * motion), _smooth(rng, n, rng.uniform(1, 3) * motion)], 1)
    angle = _smooth(rng, n, 1.0 * motion / r)
    zoom = np.exp(_smooth(rng, n, 1.0 * motion / r))
    persp = np.stack([_smooth(rng, n, 0.5 * motion / r ** 2), _smooth(rng, n, 0.5 * motion / r ** 2)], 1)
    # Three travelling waves of displacement, their Lipschitz bound kept <= 0.5 so that p + d(p)
    # is invertible (and the inverse's fixed-point iteration converges fast).
    direction = rng.uniform(0, 2 * np.pi, size=3)
    length = rng.uniform(0.6, 1.2, size=3) * max(h, w)  # wavelengths, pixels
    waves = np.stack([np.cos(direction), np.sin(direction)], 1) * (2 * np.pi / length)[:, None]
    amps = rng.uniform(-4, 4, size=(3, 2)) * motion / np.sqrt(2)
    bound = np.sum(np.linalg.norm(amps, axis=1) * np.linalg.norm(waves, axis=1))
    amps *= min(1.0, 0.5 / max(bound, 1e-12))  # large `motion`: keep the deformation invertible
    phase0, speed = rng.uniform(0, 2 * np.pi, size=3), rng.uniform(-0.1, 0.1, size=3)  # radians per frame
    to_centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1.0]])
    warps = []
    for i in range(n):
        c, s = np.cos(angle[i]) / zoom[i], np.sin(angle[i]) / zoom[i]
        rot = np.array([[c, -s, 0], [s, c, 0], [persp[i, 0], persp[i, 1], 1.0]])
        place = np.array([[1, 0, sw / 2 + shift[i, 0]], [0, 1, sh / 2 + shift[i, 1]], [0, 0, 1.0]])
        envelope = 1 - np.exp(-i / 10)  # no deformation at frame 0, growing smoothly
        warps.append(Warp(place @ rot @ to_centre, amps * envelope, waves, phase0 + speed * i))
    return warps


def _occluders(rng, count: int, size, texture_source: np.ndarray) -> List[Occluder]:
    h, w = size
    out = []
    for i in range(count):
        kind = "disc" if i % 2 == 0 else "box"
        half = rng.uniform(0.08, 0.16, size=2) * min(h, w)
        half[1] = half[0] if kind == "disc" else half[1]
        start = rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h])
        heading = rng.uniform(0, 2 * np.pi)
        velocity = rng.uniform(1, 4) * np.array([np.cos(heading), np.sin(heading)])  # pixels per frame
        bh, bw = int(np.ceil(2 * half[1])) + 1, int(np.ceil(2 * half[0])) + 1
        th, tw = texture_source.shape[:2]
        y0, x0 = rng.integers(0, max(th - bh, 1)), rng.integers(0, max(tw - bw, 1))
        patch = texture_source[y0:y0 + bh, x0:x0 + bw]
        patch = cv2.resize(patch, (bw, bh)) if patch.shape[:2] != (bh, bw) else patch
        # Flipped and hue-rolled: real image content, but not a copy of what it hides.
        tex = np.ascontiguousarray(np.roll(patch[::-1, ::-1], 1, axis=2)).astype(np.uint8)
        out.append(Occluder(kind, start, velocity, half, tex))
    return out


def render(warp: Warp, source: np.ndarray, size) -> np.ndarray:
    """The source (``[Hs,Ws,C]`` float32) seen through ``warp``: ``[H,W,C]`` float32, bilinear,
    pixel (r, c) sampled at ``warp((c + 0.5, r + 0.5))`` (cv2 indexes pixel centres, hence -0.5)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    src = warp(np.stack([xx + 0.5, yy + 0.5], -1)) - 0.5
    return cv2.remap(source, src[..., 0].astype(np.float32), src[..., 1].astype(np.float32),
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def paste(frame: np.ndarray, occ: Occluder, t: int) -> np.ndarray:
    """Paint ``occ`` over ``frame [H,W,C]`` (in place) at the pixels whose centres lie inside; returns that mask."""
    h, w = frame.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    centres = np.stack([xx + 0.5, yy + 0.5], -1)
    mask = occ.inside(centres, t)
    rel = centres[mask] - (occ.start + occ.velocity * t) + occ.half  # position inside the bounding box
    ty = np.clip(rel[:, 1].astype(int), 0, occ.texture.shape[0] - 1)
    tx = np.clip(rel[:, 0].astype(int), 0, occ.texture.shape[1] - 1)
    frame[mask] = occ.texture[ty, tx]
    return mask


def make_sequence(
    image: np.ndarray,
    *,
    num_frames: int = 24,
    size: Tuple[int, int] = (240, 320),
    num_points: int = 256,
    num_occluders: int = 3,
    motion: float = 1.0,
    noise: float = 2.0,
    seed: int = 0,
    occluder_image: np.ndarray = None,
) -> PointSequence:
    """A sequence of ``num_frames`` ``size`` frames made from ``image [Hs,Ws,3]`` uint8 RGB.

    ``motion`` scales the camera motion and deformation; ``noise`` is the per-frame Gaussian
    noise (grey levels); occluder textures come from ``occluder_image`` (default: ``image``).
    Half the points are sampled uniformly in frame 0, half in random later frames; points
    never visible are dropped, so ``len(queries) <= num_points``.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    scale = 1.45 * max(h / image.shape[0], w / image.shape[1])  # the view covers ~70% of the source
    src_w, src_h = int(round(image.shape[1] * scale)), int(round(image.shape[0] * scale))
    source = cv2.resize(image, (src_w, src_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    source = source.astype(np.float32)
    warps = _camera(rng, num_frames, size, (src_h, src_w), motion)
    occluders = _occluders(rng, num_occluders, size,
                           image if occluder_image is None else occluder_image)
    gain = 1 + _smooth(rng, num_frames, 0.005)  # slow exposure change
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for t, warp in enumerate(warps):
        frame = render(warp, source, size) * gain[t] + rng.normal(0, noise, size=(h, w, 3))
        frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)
        for occ in occluders:
            paste(frame, occ, t)
        frames[t] = frame
    # Points: half in frame 0, half in random frames; each one a source point followed through every frame.
    start_t = np.where(np.arange(num_points) < num_points // 2, 0, rng.integers(0, num_frames, num_points))
    p0 = rng.uniform(0, 1, size=(num_points, 2)) * np.array([w, h])
    source_points = np.stack([warps[t0](p) for t0, p in zip(start_t, p0)])
    tracks = np.stack([warp.inverse(source_points) for warp in warps], axis=1)  # [N,T,2]
    outside = (tracks[..., 0] < 0) | (tracks[..., 0] >= w) | (tracks[..., 1] < 0) | (tracks[..., 1] >= h)
    hidden = np.zeros_like(outside)
    for occ in occluders:
        hidden |= np.stack([occ.inside(tracks[:, t], t) for t in range(num_frames)], axis=1)
    occluded = outside | hidden
    keep = ~occluded.all(axis=1)
    tracks, occluded, source_points = tracks[keep], occluded[keep], source_points[keep]
    first = np.argmax(~occluded, axis=1)
    queries = np.concatenate([first[:, None], tracks[np.arange(len(first)), first]], axis=1)
    return PointSequence(frames, tracks, occluded, queries, source_points, warps, occluders)
