"""torch.hub entry points: ``torch.hub.load("<dinotools clone>", "dinov3_vitl16", source="local", weights=...)``
returns the bare DINOv3 model (same interface as the official hub model)."""
dependencies = ["torch"]

from dinotools.backbones.dinov3.hub import load_dinov3  # noqa: E402


def _factory(variant):
    def load(weights="auto", pretrain=None):
        return load_dinov3(variant, weights, pretrain=pretrain)

    load.__doc__ = f"DINOv3 {variant} (official architecture and state-dict keys)."
    return load


dinov3_vits16 = _factory("vits16")
dinov3_vits16plus = _factory("vits16plus")
dinov3_vitb16 = _factory("vitb16")
dinov3_vitl16 = _factory("vitl16")
dinov3_vitl16plus = _factory("vitl16plus")
dinov3_vith16plus = _factory("vith16plus")
dinov3_vit7b16 = _factory("vit7b16")
