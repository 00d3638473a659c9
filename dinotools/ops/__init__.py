"""Tensor operations under the trackers: the notebook's dense reference (``dense``), the windowed
PyTorch propagation (``window``), the fused compiled operator (``fused``), the propagator
components built on them (``propagators``), frame preprocessing and device resolution."""
