"""A test backbone: the baseline, except that it stops before frame ``$DINOTOOLS_TEST_GATE_AFTER``
until the file ``$DINOTOOLS_TEST_GATE`` exists. A test that stops a run mid-video (a signal, a
kill) thus finds it mid-video whatever the machine's load, instead of racing it."""
from __future__ import annotations

import os
import time

import dinotools
from dinotools.backbones.baseline import ColorStatsBackbone

NAME = "gated-baseline"


class GatedBackbone(ColorStatsBackbone):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = 0

    def __call__(self, images):
        gate, after = os.environ.get("DINOTOOLS_TEST_GATE"), os.environ.get("DINOTOOLS_TEST_GATE_AFTER")
        if gate and after and self.seen + images.shape[0] > int(after):
            deadline = time.monotonic() + 600  # a test that never opens the gate fails, not hangs forever
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
        self.seen += images.shape[0]
        return super().__call__(images)


def register() -> None:
    if NAME not in dinotools.registry.REGISTRIES["backbone"].names():
        dinotools.register_backbone(NAME)(GatedBackbone)


def main(argv) -> int:
    """``python tests/gated_backbone.py ARGS``: ``python -m dinotools.run ARGS`` with the gated backbone."""
    register()
    from dinotools.commands.run import main as run_main

    return run_main(argv)


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
