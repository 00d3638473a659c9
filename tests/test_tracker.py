"""Label-propagation tracker through the public API: notebook loop parity, ids, anchors, discovery."""
import numpy as np
import pytest
import torch

import dinotools
from dinotools.errors import ConfigError, InputError
from dinotools.eval.metrics import j_per_object
from dinotools.eval.synthetic_clip import make_clip
from dinotools.pipeline import track_video
from dinotools.trackers.discovery import DiscoveryConfig, new_objects


class FixtureBackbone:
    """A backbone defined here (no registry) that hands back precomputed features in order."""

    patch_size = 16
    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)

    def __init__(self, features):
        self.features, self.calls = features, 0
        self.embed_dim = features.shape[-1]

    def __call__(self, images):
        out = self.features[self.calls : self.calls + images.shape[0]]
        self.calls += images.shape[0]
        return out


@pytest.mark.parametrize("propagator", ["reference", "torch", "auto"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_notebook_loop_cases(fixtures_dir, propagator, batch_size):
    """The whole notebook loop through tracker.track: every output pixel identical (tolerance 0)."""
    for case in torch.load(fixtures_dir / "notebook_loop_cases.pt", weights_only=False):
        p = case["params"]
        t, (hh, ww) = case["features"].shape[0], case["first_mask"].shape
        tracker = dinotools.create_tracker(
            "label-propagation", backbone=FixtureBackbone(case["features"]), propagator=propagator,
            max_context=p["max_context"], size=p["size"], shape=p["shape"], topk=p["topk"],
            temperature=p["temperature"], upsample=p["upsample"], short_side=None,
        )
        frames = (np.zeros((hh, ww, 3), np.uint8) for _ in range(t))  # a generator: the tracker streams
        out = np.stack([r.labels for r in track_video(tracker, frames, case["first_mask"].numpy(), batch_size=batch_size)])
        np.testing.assert_array_equal(out, case["expected"].numpy())


@pytest.mark.parametrize("channels", [1, 2, 5, 40])
def test_first_argmax_matches_torch_argmax_with_ties(channels):
    """The fast channel argmax against torch.argmax(dim=0), on stretched values full of ties (0 and 1)."""
    from dinotools.trackers.label_propagation import first_argmax

    g = torch.Generator().manual_seed(channels)
    x = torch.randint(0, 3, (channels, 37, 53), generator=g).float() / 2  # values 0, 0.5, 1: many ties
    np.testing.assert_array_equal(first_argmax(x).numpy(), x.argmax(dim=0).numpy())


def test_registered_backbone_and_probs():
    @dinotools.register_backbone("test-constant-colour", override=True)
    class Colour(dinotools.create_backbone("baseline").__class__):
        pass

    frames, gt = make_clip(n_frames=4, size=(64, 96))
    tracker = dinotools.create_tracker("label-propagation", backbone="test-constant-colour", short_side=64)
    results = list(track_video(tracker, frames, gt[0], return_probs=True))
    assert [r.index for r in results] == [0, 1, 2, 3]
    np.testing.assert_array_equal(results[0].labels, gt[0])  # frame 0 is the given mask
    for r in results[1:]:
        assert r.probs.shape == (4, 64, 96) and r.ids == (1, 2, 3)
        assert float(r.probs.min()) >= 0 and float(r.probs.max()) <= 1  # min-max stretched
        assert r.raw_probs.shape[-1] == 4


def test_ids_are_kept_whatever_their_values():
    frames, gt = make_clip(n_frames=5, size=(64, 96))
    remap = np.zeros(4, dtype=np.int64)
    remap[[1, 2, 3]] = [7, 42, 300]  # non-contiguous, one above 255
    mask = remap[gt[0]]
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", short_side=64)
    results = list(track_video(tracker, frames, mask))
    assert results[1].labels.dtype == np.uint16
    for r in results[1:]:
        assert set(np.unique(r.labels)) <= {0, 7, 42, 300}
        assert {7, 42, 300} <= set(np.unique(r.labels))


def test_tracking_quality_on_demo_clip():
    """The baseline must actually follow the demo's objects (mean IoU well above chance)."""
    frames, gt = make_clip(n_frames=8, size=(120, 160))
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", short_side=240)
    results = list(track_video(tracker, frames, gt[0]))
    ious = [np.mean(list(j_per_object(gt[r.index], r.labels).values())) for r in results[1:]]
    assert min(ious) > 0.6, ious


def test_masks_at_later_frames_add_objects():
    frames, gt = make_clip(n_frames=8, size=(96, 128))
    first = np.where(gt[0] == 1, 1, 0)
    later = np.where(gt[4] == 3, 9, 0)  # object 3 introduced at frame 4 under id 9
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", short_side=96)
    results = list(track_video(tracker, frames, masks={0: first, 4: later}))
    for r in results[:4]:
        assert 9 not in r.labels
    for r in results[4:]:
        assert 9 in r.labels and 1 in r.labels
    np.testing.assert_array_equal(results[4].labels[later == 9], 9)  # given pixels override
    assert results[-1].ids == (1, 9)


def test_mask_errors():
    frames, gt = make_clip(n_frames=3, size=(64, 96))
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", short_side=64)
    with pytest.raises(InputError, match="no object"):
        list(track_video(tracker, frames, np.zeros((64, 96), np.uint8)))
    with pytest.raises(InputError, match=r"aspect ratios differ"):
        list(track_video(tracker, frames, np.ones((64, 64), np.uint8)))
    with pytest.raises(InputError, match="only 3 frames"):
        list(track_video(tracker, frames, masks={0: gt[0], 7: gt[0]}))
    with pytest.raises(ConfigError, match="topk"):
        dinotools.create_tracker("label-propagation", backbone="baseline", topk=0)


def test_slightly_smaller_mask_is_resized_with_warning(caplog):
    frames, gt = make_clip(n_frames=3, size=(64, 96))
    tracker = dinotools.create_tracker("label-propagation", backbone="baseline", short_side=64)
    results = list(track_video(tracker, frames, gt[0][:, :95]))
    assert results[0].labels.shape == (64, 96)
    assert "95x64 but the frames are 96x64" in caplog.text


def test_discovery_rule():
    labels = np.zeros((40, 40), np.uint8)
    labels[:20, :20] = 1
    proposals = np.zeros((40, 40), np.int64)
    proposals[:20, :20] = 5  # exactly the tracked object: ignored
    proposals[25:35, 25:35] = 6  # on background: new
    proposals[10:30, 15:22] = 7  # half on object 1: ignored
    out = new_objects(proposals, labels, [1, 4], DiscoveryConfig(min_new_fraction=0.8, min_area=50))
    assert set(np.unique(out)) == {0, 5}  # next free id after 4; ids are never reused
    assert (out[25:35, 25:35] == 5).all()


class OracleBackbone:
    """Features = one-hot of the true object at each patch: isolates the tracking logic from
    backbone quality (the baseline's colour features cannot separate every object)."""

    patch_size, embed_dim = 16, 8
    mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    def __init__(self, gt):
        self.gt, self.calls = gt, 0

    def __call__(self, images):
        b, _, hh, ww = images.shape
        out = []
        for g in self.gt[self.calls : self.calls + b]:
            ids = torch.from_numpy(g.astype(np.int64))[None, None].float()
            grid = torch.nn.functional.interpolate(ids, size=(hh // 16, ww // 16), mode="nearest")[0, 0].long()
            out.append(torch.nn.functional.one_hot(grid, self.embed_dim).float() + 0.01)
        self.calls += b
        return torch.stack(out)


def entering_clip(n_frames=10, enter_at=4):
    """240x320 id maps: object 1 sits on the left; object 2 enters from the right border at
    ``enter_at`` and moves left (as objects enter real videos: at the border, on background)."""
    masks = []
    for i in range(n_frames):
        m = np.zeros((240, 320), np.uint8)
        m[80:160, 30:110] = 1
        if i >= enter_at:
            x0 = 300 - 12 * (i - enter_at)
            m[100:180, x0 : x0 + 60] = 2
        masks.append(m)
    return masks


def test_discovery_gives_entering_objects_one_id():
    """A fake automatic initializer proposes every visible object; the entering object gets
    exactly one new id, kept for the rest of the video; tracked objects never get a second."""
    visible = entering_clip()
    frames = [np.full((240, 320, 3), 128, np.uint8)] * len(visible)

    def propose(index, frame):
        return visible[index] * 10  # proposal ids differ from tracked ids on purpose

    tracker = dinotools.create_tracker("label-propagation", backbone=OracleBackbone(visible), short_side=240, size=5)
    results = list(track_video(tracker, frames, initializer=propose, discover_every=2))
    assert results[0].ids == (10,)
    first_new = next(r.index for r in results if len(r.ids) == 2)
    assert first_new == 4 and results[-1].ids == (10, 11)  # next free id after 10
    for r in results[first_new:]:
        assert 11 in r.labels and 10 in r.labels
    for r in results[:first_new]:
        assert 11 not in r.labels


class PixelRefiner:
    """A refiner that reads the frame's pixels (as guided does) and records what it was given."""

    name = "pixel-recorder"

    def __init__(self):
        self.frames = []

    def __call__(self, frame, raw):
        self.frames.append(frame)
        size = frame.shape[:2]
        up = torch.nn.functional.interpolate(raw.permute(2, 0, 1)[None].float(), size=size, mode="nearest")
        return up[0]


@pytest.mark.parametrize("return_probs", [False, True])
def test_discovery_amend_gives_the_refiner_the_frame(return_probs):
    """amend() (a proposal on a tracked frame) decodes with the frame's pixels, with and without
    probabilities; it used to pass the context entry in place of the frame and crash with probs."""
    visible = entering_clip()
    frames = [np.full((240, 320, 3), 40 + 10 * i, np.uint8) for i in range(len(visible))]
    refiner = PixelRefiner()
    tracker = dinotools.create_tracker("label-propagation", backbone=OracleBackbone(visible), short_side=240,
                                       size=5, refiner=refiner)
    results = list(track_video(tracker, frames, initializer=lambda i, f: visible[i] * 10, discover_every=2,
                               return_probs=return_probs))
    assert results[-1].ids == (10, 11)
    amended = next(r for r in results if len(r.ids) == 2)
    assert all(isinstance(f, np.ndarray) and f.shape == (240, 320, 3) for f in refiner.frames)
    # the refiner saw the amended frame's own pixels (each frame has its own grey level)
    assert any(int(f[0, 0, 0]) == 40 + 10 * amended.index for f in refiner.frames)
    if return_probs:
        assert amended.probs is not None and amended.probs.shape == (3, 240, 320)
