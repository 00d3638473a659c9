"""Native DINOv3 ViT backbones: model, variants, weight discovery and loading."""
from dinotools.backbones.dinov3.hub import create, load_dinov3
from dinotools.backbones.dinov3.model import DinoVisionTransformer
from dinotools.backbones.dinov3.weights import find_weights

__all__ = ["DinoVisionTransformer", "create", "find_weights", "load_dinov3"]
