"""DINOv3 weights: transformers key mapping, file formats, discovery, and the errors users see."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import shared_path

from dinotools.backbones.dinov3 import convert, hub
from dinotools.backbones.dinov3.model import DinoVisionTransformer
from dinotools.backbones.dinov3.variants import (
    SAT_MEAN,
    VARIANTS,
    pretrain_from_filename,
)
from dinotools.backbones.dinov3.weights import find_weights
from dinotools.errors import WeightsError

X = torch.randn(1, 3, 48, 64, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def parity():
    return torch.load(shared_path("fixtures", "dinov3_tiny_parity.pt"), weights_only=False)


def _outputs(sd, config, x):
    model = DinoVisionTransformer(**config, device="meta")
    model.load_state_dict(sd, strict=True, assign=True)
    with torch.inference_mode():
        return model.eval().get_intermediate_layers(x, n=2, reshape=True, return_class_token=True)


@pytest.mark.parametrize("name", ["tiny_mlp", "tiny_swiglu", "tiny_7b_style"])
def test_transformers_round_trip_is_lossless(parity, name):
    case = parity[name]
    sd, heads = case["state_dict"], case["config"]["num_heads"]
    hf = convert.to_transformers(sd)
    assert "layer.0.attention.q_proj.weight" in hf and "embeddings.patch_embeddings.weight" in hf
    assert hf["embeddings.mask_token"].shape == (1, 1, sd["mask_token"].shape[-1])
    assert not any("bias_mask" in k or "periods" in k or "local_cls_norm" in k for k in hf)
    back = convert.from_transformers(hf, heads)
    dropped = {k for k in sd if k.startswith("local_cls_norm.")}  # training-only, absent in transformers
    assert set(back) == set(sd) - dropped
    for key in back:
        if key.endswith("attn.qkv.bias"):
            # transformers has no key bias: the k third comes back as 0; the bias the model uses is unchanged.
            mask = sd[key + "_mask"]
            torch.testing.assert_close(back[key] * back[key + "_mask"], sd[key] * mask, rtol=0, atol=0)
        else:
            torch.testing.assert_close(back[key], sd[key], rtol=0, atol=0, msg=key)
    # The folded form is an exact fixed point of official -> transformers -> official.
    again = convert.from_transformers(convert.to_transformers(back), heads)
    assert all(torch.equal(again[k], back[k]) for k in back)
    # ... and gives the same outputs as the original state dict, bit for bit.
    if dropped:
        back.update({k: sd[k] for k in dropped})
    for a, b in zip(_outputs(back, case["config"], X), _outputs(sd, case["config"], X)):
        assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_older_transformers_naming_is_accepted(parity):
    sd = parity["tiny_swiglu"]["state_dict"]
    hf = convert.to_transformers(sd)
    old_names = {"q_proj": "query", "k_proj": "key", "v_proj": "value", "o_proj": "proj", "lambda1": "gamma",
                 "gate_proj": "w1", "up_proj": "w2", "down_proj": "w3", "patch_embeddings.": "patch_embeddings.proj."}
    old = {}
    for key, val in hf.items():
        for new, was in old_names.items():
            key = key.replace(new, was)
        old[key] = val
    from_old, from_new = convert.from_transformers(old, 2), convert.from_transformers(hf, 2)
    assert from_old.keys() == from_new.keys()
    assert all(torch.equal(from_old[k], v) for k, v in from_new.items())


# --- real variants: checkpoints on disk ------------------------------------------------------------

def _shaped_state_dict(variant: str, pretrain: str = "lvd1689m") -> dict:
    """A checkpoint with the release's keys/shapes but stride-0 tensors: tiny on disk even for ViT-L."""
    model = DinoVisionTransformer(**VARIANTS[variant].config(pretrain), device="meta")
    return {k: torch.full((1,), 0.01).expand(t.shape) for k, t in model.state_dict().items()}


@pytest.fixture(scope="module")
def vits16_ckpt(tmp_path_factory):
    """A random ViT-S/16 saved under Meta's file name, and the model it came from."""
    torch.manual_seed(0)
    model = DinoVisionTransformer(**VARIANTS["vits16"].config()).eval()
    path = tmp_path_factory.mktemp("w") / VARIANTS["vits16"].filename()
    torch.save(model.state_dict(), path)
    with torch.inference_mode():
        expected = model.patch_features(X)
    return path, expected


def test_official_pth_loads_with_same_features(vits16_ckpt):
    path, expected = vits16_ckpt
    backbone = hub.vits16(weights=str(path))
    assert backbone.pretrain == "lvd1689m" and backbone.weights_path == str(path)
    torch.testing.assert_close(backbone(X), expected, rtol=0, atol=0)
    # Memory-mapped and assigned: the parameters are the checkpoint's storage, not a second copy.
    assert _is_mapped_from(backbone.model.blocks[0].attn.qkv.weight, path)


def _is_mapped_from(tensor: torch.Tensor, path: Path) -> bool:
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc/self/maps (Linux) to see memory mappings")
    ptr = tensor.data_ptr()
    for line in maps.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5] == str(path):
            start, end = (int(a, 16) for a in fields[0].split("-"))
            if start <= ptr < end:
                return True
    return False


def test_transformers_folder_loads_with_same_features(vits16_ckpt, tmp_path):
    st = pytest.importorskip("safetensors.torch")
    path, expected = vits16_ckpt
    hf = {k: v.contiguous() for k, v in convert.to_transformers(torch.load(path, weights_only=True)).items()}
    folder = tmp_path / "dinov3-vits16-pretrain-lvd1689m"
    folder.mkdir()
    st.save_file(hf, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "dinov3_vit"}))
    torch.testing.assert_close(hub.vits16(weights=folder)(X), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(hub.vits16(weights=folder / "model.safetensors")(X), expected, rtol=1e-6, atol=1e-6)


@pytest.fixture
def empty_places(tmp_path, monkeypatch):
    """Every discovery place points at an empty folder; no Hugging Face download is attempted."""
    places = {}
    for var in ("DINOTOOLS_WEIGHTS", "DINOV3_LOCATION", "TORCH_HOME", "HF_HUB_CACHE"):
        places[var] = tmp_path / var.lower()
        places[var].mkdir()
        monkeypatch.setenv(var, str(places[var]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return places


def test_nothing_discoverable_names_every_place(empty_places):
    assert find_weights("vitl16") is None
    with pytest.raises(WeightsError) as err:
        hub.vitl16()
    msg = str(err.value)
    assert "vitl16" in msg and "dinov3_vitl16_pretrain_lvd1689m-8aa4cbdd.pth" in msg
    assert "facebook/dinov3-vitl16-pretrain-lvd1689m" in msg  # where to obtain them
    for folder in empty_places.values():
        assert str(folder) in msg, f"{folder} not listed as searched"


def test_missing_explicit_path(tmp_path):
    with pytest.raises(WeightsError, match=r"vitl16 weights .*missing\.pth.* do not exist"):
        hub.vitl16(weights=str(tmp_path / "missing.pth"))


def test_discovery_order(vits16_ckpt, empty_places):
    path, _ = vits16_ckpt
    hub_ckpts = empty_places["TORCH_HOME"] / "hub" / "checkpoints"
    hub_ckpts.mkdir(parents=True)
    (hub_ckpts / path.name).symlink_to(path)
    assert find_weights("vits16") == hub_ckpts / path.name
    assert find_weights("vitb16") is None and find_weights("not-a-model") is None  # never raises
    renamed = empty_places["DINOTOOLS_WEIGHTS"] / "dinov3_vits16_pretrain_lvd1689m.pth"
    renamed.symlink_to(path)
    assert find_weights("vits16") == renamed  # the weights folder comes before the hub cache
    assert hub.vits16().weights_path == str(renamed)


def test_hugging_face_cache_snapshot_is_found(empty_places, vits16_ckpt):
    snap = empty_places["HF_HUB_CACHE"] / "models--facebook--dinov3-vits16-pretrain-lvd1689m" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"")
    assert find_weights("vits16") == snap


def test_wrong_variant_is_named(vits16_ckpt):
    with pytest.raises(WeightsError, match="holds DINOv3 vits16 weights, not vitb16"):
        hub.vitb16(weights=vits16_ckpt[0])


def test_truncated_and_wrong_format(vits16_ckpt, tmp_path):
    data = vits16_ckpt[0].read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        hub.vits16(weights=cut)
    page = tmp_path / "page.pth"
    page.write_text("<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>")
    with pytest.raises(WeightsError, match="HTML/XML page"):
        hub.vits16(weights=page)
    junk = tmp_path / "junk.bin"
    # fixed bytes: os.urandom sometimes began with a pickle opcode and got the "unsafe pickle" message
    junk.write_bytes(b"this is not a checkpoint\n" * 10 + bytes(range(256)))
    with pytest.raises(WeightsError, match="not a PyTorch"):
        hub.vits16(weights=junk)
    v2 = tmp_path / "dinov2.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 8), "pos_embed": torch.zeros(1, 5, 8)}, v2)
    with pytest.raises(WeightsError, match="DINOv2"):
        hub.vits16(weights=v2)


def test_missing_blocks_is_incomplete(tmp_path):
    sd = {k: v for k, v in _shaped_state_dict("vits16").items() if not k.startswith("blocks.11.")}
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="11 of the 12 blocks"):
        hub.vits16(weights=tmp_path / "partial.pth")


def test_sat_weights_selected_by_file(tmp_path):
    sd = _shaped_state_dict("vitl16", "sat493m")
    named = tmp_path / VARIANTS["vitl16"].filename("sat493m")
    torch.save(sd, named)
    backbone = hub.vitl16(weights=named)
    assert backbone.pretrain == "sat493m" and backbone.mean == SAT_MEAN
    assert backbone.model.local_cls_norm is not None
    # Renamed: the SAT-only local_cls_norm still identifies it.
    renamed = tmp_path / "my_vitl.pth"
    named.rename(renamed)
    assert hub.vitl16(weights=renamed).pretrain == "sat493m"
    with pytest.raises(WeightsError, match="sat493m weights but pretrain='lvd1689m'"):
        hub.vitl16(weights=renamed, pretrain="lvd1689m")
    # transformers files drop local_cls_norm: their folder name (the HF repo id) tells.
    assert pretrain_from_filename("models--facebook--dinov3-vitl16-pretrain-sat493m/snapshots/1a2b") == "sat493m"
    assert pretrain_from_filename("dinov3_vit7b16_pretrain-a6675841.pth") == "sat493m"  # by hash


def test_torch_hub_clone(tmp_path, monkeypatch):
    """``weights="hub"`` goes through torch.hub.load of a $DINOV3_LOCATION clone, as the notebook."""
    repo = tmp_path / "dinov3"
    repo.mkdir()
    torch.save(_shaped_state_dict("vits16"), repo / "sd.pth")
    (repo / "hubconf.py").write_text(
        "import os, torch\n"
        "from dinotools.backbones.dinov3.model import DinoVisionTransformer\n"
        "from dinotools.backbones.dinov3.variants import VARIANTS\n"
        "def dinov3_vits16(pretrained=True, **kw):\n"
        "    m = DinoVisionTransformer(**VARIANTS['vits16'].config(), device='meta')\n"
        "    sd = torch.load(os.path.join(os.path.dirname(__file__), 'sd.pth'), weights_only=True)\n"
        "    m.load_state_dict(sd, assign=True)\n"
        "    return m\n"
    )
    monkeypatch.setenv("DINOV3_LOCATION", str(repo))
    backbone = hub.vits16(weights="hub")
    assert backbone.weights_path == f"torch.hub:{repo}"
    assert torch.all(backbone.model.blocks[3].mlp.fc1.weight == 0.01)


def test_random_weights_need_no_files(empty_places):
    backbone = hub.vits16(weights="random")
    assert backbone.weights_path is None
    state = backbone.model.state_dict()
    assert all(torch.isfinite(t).all() for t in state.values()), "a tensor was left uninitialised"
    feats = backbone(X)
    assert feats.shape == (1, 3, 4, 384) and torch.isfinite(feats).all()


def test_cli_reports_weights_errors_in_one_line(empty_places, tmp_path):
    import subprocess
    import sys

    data = shared_path("data", "davis2016-mini")
    base = [sys.executable, "-m", "dinotools.run", "--backbone", "vitl16",
            "--frames", str(data / "JPEGImages" / "480p" / "dog"),
            "--mask", str(data / "Annotations" / "480p" / "dog" / "00000.png"), "--output", str(tmp_path / "out")]
    for extra, expected in ((["--weights", str(tmp_path / "missing.pth")], "missing.pth"),
                            ([], str(empty_places["DINOTOOLS_WEIGHTS"]))):
        proc = subprocess.run(base + extra, capture_output=True, text=True, env=dict(os.environ), timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "vitl16" in proc.stderr and expected in proc.stderr
        assert "Traceback" not in proc.stderr
