"""Native DINOv3 ViT backbones: model, variants, weight discovery and loading."""
