"""Native DINOv3 ViT backbones: model, variants, weight discovery and loading."""
from .hub import create, load_dinov3
from .model import DinoVisionTransformer
from .weights import find_weights

__all__ = ["DinoVisionTransformer", "create", "find_weights", "load_dinov3"]
