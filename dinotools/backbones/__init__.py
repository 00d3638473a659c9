"""Built-in backbones: a weight-free baseline and the DINOv3 ViT family."""
