"""Reading frames and masks, writing label maps and overlays."""
