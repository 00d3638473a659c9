"""Native DINOv3 ViT against the official implementation's outputs and released state-dict shapes."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import shared_path

from dinotools.backbones.dinov3.model import DinoVisionTransformer
from dinotools.backbones.dinov3.variants import VARIANTS

# Normalised outputs (values ~1-10): absolute 1e-4. The unnormalised residual stream reaches ~100
# and the reference itself differs from a float64 run by up to 1.3e-3 there, so for it the 1e-4
# is relative to the tensor's scale: max|a - r| <= 1e-4 * max(1, max|r|).
TOL = 1e-4


def _close(actual: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    assert actual.shape == ref.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(ref.shape)}"
    err = (actual - ref).abs().max().item()
    assert err <= TOL * max(1.0, ref.abs().max().item()), f"{what}: max abs error {err:.3g}"


def _load_fixture():
    return torch.load(shared_path("fixtures", "dinov3_tiny_parity.pt"), weights_only=False)


def _model(case) -> DinoVisionTransformer:
    model = DinoVisionTransformer(**case["config"], device="meta")
    model.load_state_dict(case["state_dict"], strict=True, assign=True)
    return model.eval()


@pytest.fixture(scope="module")
def parity():
    return _load_fixture()


@pytest.mark.parametrize("name", ["tiny_mlp", "tiny_swiglu", "tiny_7b_style"])
def test_tiny_parity_every_output(parity, name):
    case = parity[name]
    model = _model(case)
    assert len(case["inputs"]) == 3
    with torch.inference_mode():
        for j, (x, ref) in enumerate(zip(case["inputs"], case["outputs"])):
            tag = f"{name}[{j}] {tuple(x.shape)}"
            (last,) = model.get_intermediate_layers(x, n=1, reshape=True, norm=True)
            _close(last, ref["last"], f"{tag} last")
            last2 = model.get_intermediate_layers(x, n=2, reshape=True, norm=True)
            assert len(last2) == len(ref["last2"]) == 2
            for k in range(2):
                _close(last2[k], ref["last2"][k], f"{tag} last2[{k}]")
            (raw,) = model.get_intermediate_layers(x, n=1, reshape=True, norm=False)
            _close(raw, ref["last_unnormed"], f"{tag} last_unnormed")
            feats = model.forward_features(x)
            _close(feats["x_norm_clstoken"], ref["cls"], f"{tag} cls")
            _close(feats["x_storage_tokens"], ref["storage"], f"{tag} storage")
            # forward() is the CLS token through the (identity) head, as upstream.
            _close(model(x), ref["cls"], f"{tag} forward")


def test_intermediate_layer_variants_agree(parity):
    case = parity["tiny_mlp"]
    model = _model(case)
    x = case["inputs"][0]
    with torch.inference_mode():
        by_count = model.get_intermediate_layers(x, n=2, reshape=True)
        by_index = model.get_intermediate_layers(x, n=[1, -1], reshape=True)
        with_tokens = model.get_intermediate_layers(x, n=1, return_class_token=True, return_extra_tokens=True)
        feats = model.patch_features(x, layers=2)
    for a, b in zip(by_count, by_index):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    patches, cls, extra = with_tokens[0]
    assert patches.shape == (2, 24, 64) and cls.shape == (2, 64) and extra.shape == (2, 4, 64)
    _close(cls, case["outputs"][0]["cls"], "return_class_token")
    _close(extra, case["outputs"][0]["storage"], "return_extra_tokens")
    # patch_features concatenates the selected blocks along D in [B,h,w,D] layout.
    expected = torch.cat([t.permute(0, 2, 3, 1) for t in case["outputs"][0]["last2"]], dim=-1)
    _close(feats, expected, "patch_features(layers=2)")
    with pytest.raises(ValueError, match="block indices"):
        model.block_indices([3])


def test_non_multiple_input_is_cropped_like_upstream(parity):
    # A stride-16 conv drops the remainder; upstream reshape uses H//16, W//16 the same way.
    case = parity["tiny_swiglu"]
    model = _model(case)
    x = case["inputs"][1]  # [1,3,48,48]
    padded = torch.cat([x, torch.randn(1, 3, 7, 48)], dim=2)
    with torch.inference_mode():
        (a,) = model.get_intermediate_layers(x, reshape=True)
        (b,) = model.get_intermediate_layers(padded, reshape=True)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.fixture(scope="module")
def shapes():
    return json.loads(shared_path("fixtures", "dinov3_state_dict_shapes.json").read_text())


@pytest.mark.parametrize("name", [*VARIANTS, "vitl16_sat493m"])
def test_meta_state_dict_matches_release(shapes, name):
    variant, _, pretrain = name.partition("_")
    model = DinoVisionTransformer(**VARIANTS[variant].config(pretrain or "lvd1689m"), device="meta")
    assert all(t.is_meta for t in model.state_dict().values())  # nothing allocated, 7B included
    got = {k: [list(t.shape), str(t.dtype).replace("torch.", "")] for k, t in model.state_dict().items()}
    expected = shapes[name]
    assert sorted(set(expected) - set(got)) == [], "keys the release has and the model lacks"
    assert sorted(set(got) - set(expected)) == [], "keys the model has and the release lacks"
    assert got == expected
    if f"{name}::params" in shapes:
        assert sum(p.numel() for p in model.parameters()) == shapes[f"{name}::params"]


def test_default_periods_round_to_release_values(parity):
    # The released periods are the default ones rounded through bf16 (DINOV3.md B.3).
    for case in parity.values():
        model = DinoVisionTransformer(**case["config"])
        stored = case["state_dict"]["rope_embed.periods"]
        torch.testing.assert_close(model.rope_embed.default_periods().bfloat16().float(), stored, rtol=0, atol=0)
