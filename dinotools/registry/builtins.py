"""Built-in components, declared once: setup.py turns this table into entry points.

This file must stay importable without torch (setup.py executes it at build time).
Each value is an entry-point object reference ``module:attr``.
"""

GROUPS = {
    "backbone": "dinotools.backbones",
    "propagator": "dinotools.propagators",
    "initializer": "dinotools.mask_initializers",
    "tracker": "dinotools.trackers",
    "refiner": "dinotools.refiners",
}

_DINOV3_VARIANTS = (
    "vits16", "vits16plus", "vitb16", "vitl16", "vitl16plus", "vith16plus", "vit7b16",
)

BUILTINS = {
    "backbone": {
        "baseline": "dinotools.backbones.baseline:ColorStatsBackbone",
        **{v: f"dinotools.backbones.dinov3.hub:{v}" for v in _DINOV3_VARIANTS},
        **{f"dinov3_{v}": f"dinotools.backbones.dinov3.hub:{v}" for v in _DINOV3_VARIANTS},
    },
    "propagator": {
        "reference": "dinotools.ops.propagators:DensePropagator",
        "torch": "dinotools.ops.propagators:WindowPropagator",
        "fused": "dinotools.ops.propagators:FusedPropagator",
        "auto": "dinotools.ops.propagators:auto_propagator",
    },
    "initializer": {
        "file": "dinotools.initializers.file:FileInitializer",
    },
    "tracker": {
        "label-propagation": "dinotools.trackers.label_propagation:LabelPropagationTracker",
        "points": "dinotools.trackers.points:PointTracker",
    },
    "refiner": {
        "nearest": "dinotools.refiners.nearest:NearestRefiner",
        "bilinear": "dinotools.refiners.bilinear:BilinearRefiner",
        "guided": "dinotools.refiners.guided:GuidedRefiner",
    },
}


def entry_points() -> dict:
    """``{group: ["name = module:attr", ...]}`` as setuptools expects."""
    return {
        GROUPS[kind]: [f"{name} = {ref}" for name, ref in sorted(table.items())]
        for kind, table in BUILTINS.items()
    }
