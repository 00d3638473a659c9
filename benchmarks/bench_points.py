"""asv: one point-tracking step (matching, checks, state update) for many queries, on given features.

Features are random unit vectors of a DINOv3 width at the grid of a 480x854 frame at short side
480 (30x54 patches): the step's cost does not depend on their values, and the backbone's cost is
measured by bench_backbone.
"""
import numpy as np
import torch

from dinotools.backbones.baseline import ColorStatsBackbone
from dinotools.trackers.points import PointTracker


class PointStep:
    params = ([1000, 10000], [384, 1024])
    param_names = ["queries", "dim"]
    timeout = 300

    def setup(self, queries, dim):
        torch.manual_seed(0)
        self.tracker = PointTracker(ColorStatsBackbone())  # the backbone is not called here
        self.feats = [torch.nn.functional.normalize(torch.randn(30, 54, dim), dim=-1) for _ in range(2)]
        rng = np.random.default_rng(0)
        q = np.stack([np.zeros(queries), rng.uniform(0, 854, queries), rng.uniform(0, 480, queries)], 1)
        self.state = self.tracker.new_state(q)
        self.tracker.step(self.state, self.feats[0], (480, 854))
        self.tracker.step(self.state, self.feats[1], (480, 854))
        self.i = 0

    def time_step(self, queries, dim):
        self.i += 1
        self.tracker.step(self.state, self.feats[self.i % 2], (480, 854))
