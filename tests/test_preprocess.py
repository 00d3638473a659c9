"""Preprocessing in pure torch vs the notebook's PIL/torchvision pipeline."""
import numpy as np
import pytest
import torch
from PIL import Image

from dinotools.ops.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    preprocess,
    resize,
    target_size,
    to_tensor,
)


@pytest.mark.parametrize(
    "hw,expected",
    [((480, 854), (960, 1712)),  # landscape: the notebook's 60x107 grid
     ((854, 480), (1712, 960)),  # portrait
     ((500, 500), (960, 960)),
     ((157, 283), (960, 1744))],
)
def test_target_size_rule(hw, expected):
    assert target_size(*hw, 960, 16) == expected


def test_bicubic_matches_pil_within_one_level(data_dir):
    """Torch's antialiased bicubic (PIL's kernel) rounded to uint8: within 1 level of PIL everywhere."""
    img = np.asarray(Image.open(data_dir / "davis2016-mini/JPEGImages/480p/dog/00000.jpg").convert("RGB"))
    for size in [(960, 1712), (240, 432)]:  # up- and down-sampling
        pil = np.asarray(Image.fromarray(img).resize(size[::-1], Image.BICUBIC)).astype(np.int16)
        ours = (resize(to_tensor(img), size)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int16)
        assert np.abs(pil - ours).max() <= 1


def test_preprocess_normalises():
    frames = np.full((2, 20, 30, 3), 255, np.uint8)
    x = preprocess(frames, short_side=32, multiple=16, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert x.shape == (2, 3, 32, 48) and x.dtype == torch.float32
    expected = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(x[0, :, 5, 5], expected)
