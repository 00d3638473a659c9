"""The DINOv3 backbone as the tracker sees it: protocol, dtypes, batching, preprocessing, end to end."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import shared_path

import dinotools
from dinotools.backbones.dinov3.backbone import DINOv3Backbone
from dinotools.backbones.dinov3.model import DinoVisionTransformer
from dinotools.errors import ConfigError
from dinotools.interfaces import Backbone
from dinotools.ops.preprocess import IMAGENET_MEAN, IMAGENET_STD
from dinotools.pipeline import track_video


@pytest.fixture(scope="module")
def parity():
    return torch.load(shared_path("fixtures", "dinov3_tiny_parity.pt"), weights_only=False)


def _backbone(case, **kwargs) -> DINOv3Backbone:
    model = DinoVisionTransformer(**case["config"], device="meta")
    model.load_state_dict(case["state_dict"], strict=True, assign=True)
    return DINOv3Backbone(model, variant="tiny", pretrain="lvd1689m", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                          device="cpu", **kwargs)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
@pytest.mark.parametrize("name", ["tiny_mlp", "tiny_swiglu", "tiny_7b_style"])
def test_half_precision_features_match_fp32(parity, name, dtype):
    case = parity[name]
    backbone = _backbone(case, dtype=dtype)
    for x, ref in zip(case["inputs"], case["outputs"]):
        feats = backbone(x)  # [B,h,w,D]
        assert feats.dtype == torch.float32
        expected = ref["last"].permute(0, 2, 3, 1)  # the official fp32 output
        cos = F.cosine_similarity(feats, expected, dim=-1)
        assert cos.min().item() >= 0.99, f"{name} {dtype}: worst patch cosine {cos.min().item():.4f} < 0.99"


def test_fp32_backbone_is_the_fixture(parity):
    case = parity["tiny_7b_style"]
    backbone = _backbone(case)
    for x, ref in zip(case["inputs"], case["outputs"]):
        # 1e-4 absolute on the normalised features, as in test_dinov3_model.
        torch.testing.assert_close(backbone(x), ref["last"].permute(0, 2, 3, 1), rtol=0, atol=1e-4)


def test_batched_equals_one_by_one(parity):
    case = parity["tiny_swiglu"]
    x = torch.cat([case["inputs"][0], case["inputs"][0].flip(-1)])  # [4,3,64,96]
    together = _backbone(case)(x)
    one_by_one = _backbone(case, batch_size=1)(x)
    # Same maths, different matmul blocking: fp32 rounding only.
    torch.testing.assert_close(together, one_by_one, rtol=0, atol=1e-5)
    assert together.shape == (4, 4, 6, 64)


def test_layers_option_concatenates_blocks(parity):
    case = parity["tiny_mlp"]
    backbone = _backbone(case, layers=2)
    assert backbone.embed_dim == 2 * 64
    feats = backbone(case["inputs"][0])
    expected = torch.cat([t.permute(0, 2, 3, 1) for t in case["outputs"][0]["last2"]], dim=-1)
    torch.testing.assert_close(feats, expected, rtol=0, atol=1e-4)
    with pytest.raises(ConfigError, match="layers"):
        _backbone(case, layers=[7])


def test_registry_names_and_protocol():
    for name in ("vits16", "dinov3_vits16"):
        backbone = dinotools.create_backbone(name, weights="random", device="cpu", dtype="fp32")
        assert isinstance(backbone, Backbone) and isinstance(backbone, DINOv3Backbone)
        assert (backbone.patch_size, backbone.embed_dim) == (16, 384)
        assert tuple(backbone.mean) == IMAGENET_MEAN and tuple(backbone.std) == IMAGENET_STD
    with pytest.raises(ConfigError, match="dtype"):
        dinotools.create_backbone("vits16", weights="random", dtype="int8")
    with pytest.raises(ConfigError, match="sat493m"):
        dinotools.create_backbone("vitb16", weights="random", pretrain="sat493m")


def test_preprocess_resizes_and_normalises():
    backbone = dinotools.create_backbone("vits16", weights="random")
    frames = np.full((2, 100, 150, 3), 128, dtype=np.uint8)
    x = backbone.preprocess(frames, short_side=50)
    # Notebook rule: short side 50 -> 64 (next multiple of 16), long side 150 * 64/100 = 96.
    assert x.shape == (2, 3, 64, 96) and x.dtype == torch.float32
    expected = (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[0, :, 10, 10].numpy(), expected, rtol=0, atol=1e-6)
    assert backbone(x).shape == (2, 4, 6, 384)
    single = backbone.preprocess(torch.from_numpy(frames[0]), short_side=None)  # [H,W,3] tensor, no resize
    assert single.shape == (1, 3, 112, 160)


def test_tracker_end_to_end_on_davis_dog():
    frames_dir = shared_path("data", "davis2016-mini", "JPEGImages", "480p", "dog")
    mask_path = shared_path("data", "davis2016-mini", "Annotations", "480p", "dog", "00000.png")
    from dinotools.io.frames import open_frames
    from dinotools.io.masks import read_mask

    first_mask = read_mask(mask_path)
    frames = list(itertools.islice(iter(open_frames(frames_dir)), 5))
    backbone = dinotools.create_backbone("vits16", weights="random")
    tracker = dinotools.create_tracker("label-propagation", backbone=backbone, propagator="torch", short_side=224)
    results = list(track_video(tracker, frames, first_mask, batch_size=4))
    assert [r.index for r in results] == list(range(5))
    for r in results:
        assert r.labels.shape == first_mask.shape
        assert set(np.unique(r.labels)) <= set(np.unique(first_mask))
    np.testing.assert_array_equal(results[0].labels, first_mask)
    assert (results[-1].labels > 0).any(), "the dog was lost entirely after 4 frames"
