"""Audit cases (``benchmarks/audit.py``): every declared numeric parameter at non-finite and out-of-range values.

Generated from the components' declarations (``dinotools.interfaces.params.Range``): for each built-in
parameter a command line can set, NaN and inf (where it must be finite), one value below and one
above its range, through the real commands that take it (``python -m dinotools.run``,
``dinotools.points``, ``dinotools.eval --track``); each case expects exit 2, one ``error:`` line
naming the parameter and its component, no traceback, and (``dinotools.run``) no output folder.
The frame's bound (guided's radius) runs at 100000 and one past the largest the clip allows.
Run alone: ``python benchmarks/audit.py --only param``.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by asv's discovery
from audit_inputs import TRACK, simple  # noqa: E402
from audit_runs import _davis  # noqa: E402

EVAL = ["--davis", "D", "--track", "--backbone", "baseline", "--short-side", "48", "--out", "ev"]
POINTS = ["--frames", "frames", "--grid", "2", "--output", "t.npz", "--backbone", "baseline", "--short-side", "48",
          "--no-progress"]
# Parameters with no command-line option: reachable from Python only (tests/test_param_ranges.py covers them).
NO_OPTION = {("propagator", "torch", "block"), ("propagator", "auto", "block"), ("tracker", "points", "motion_bins")}


def bad_values(rng) -> list:
    """Command-line spellings of values outside ``rng``: nan, inf (where it must be finite), below, above."""
    def text(x):
        return str(int(x)) if rng.integer else repr(float(x))

    values = ["nan"] + (["inf"] if rng.finite else [])
    if rng.lo is not None:
        values.append(text(rng.lo) if rng.lo_open else text(rng.lo - 1 if rng.integer or rng.lo <= 0 else rng.lo / 10))
    if rng.hi is not None:
        values.append(text(rng.hi) if rng.hi_open else text(rng.hi + 1 if rng.integer else rng.hi * 2))
    return values


def _no_output(d, res):
    return "output created before the refusal" if (d / "out").exists() else None


def _commands(kind: str, name: str, key: str, value: str):
    """``[(command label, module, args, clip)]``: the commands through which ``key=value`` reaches the component."""
    option = "--" + key.replace("_", "-")
    out = []
    if kind == "refiner":
        out += [("run", "dinotools.run", [*TRACK, "--refine", name, "--refine-arg", f"{key}={value}"]),
                ("eval", "dinotools.eval", [*EVAL, "--refine", name, "--refine-arg", f"{key}={value}"])]
    elif kind == "initializer":
        out += [("run", "dinotools.run", [*TRACK, "--init-arg", f"{key}={value}"])]
    elif kind == "tracker" and name == "label-propagation":
        out += [("run", "dinotools.run", [*TRACK, option, value]), ("eval", "dinotools.eval", [*EVAL, option, value])]
    elif kind == "tracker" and name == "points":
        out += [("points", "dinotools.points", [*POINTS, option, value])]
    elif kind == "backbone":
        backbone = [] if name == "baseline" else ["--backbone", name]  # a DINOv3 variant: refused before its weights
        out += [("points", "dinotools.points", [*POINTS, *backbone, "--backbone-arg", f"{key}={value}"])]
        if name == "baseline":
            out += [("eval", "dinotools.eval", [*EVAL, "--backbone-arg", f"{key}={value}"])]
    return out


def build(audit) -> None:
    from dinotools.interfaces.params import owner_of, params_of
    from dinotools.registry import REGISTRIES
    from dinotools.registry.builtins import BUILTINS

    for kind, table in BUILTINS.items():
        for name in sorted(table):
            if name.startswith("dinov3_") or (kind == "backbone" and name not in ("baseline", "vits16")):
                continue  # the DINOv3 variants share one declaration: vits16 stands for them
            factory = REGISTRIES[kind].get(name)
            owner = owner_of(factory)
            for key, rng in params_of(factory).items():
                if (kind, name, key) in NO_OPTION:
                    continue
                for value in bad_values(rng):
                    if kind == "tracker" and rng.integer and value in ("nan", "inf"):
                        continue  # an int option of its own: argparse refuses these before dinotools sees them
                    # a tracker option is named as typed (--size ...), the KEY=VALUE arguments by their component
                    want = "--" + key.replace("_", "-") if kind == "tracker" else f"{key} of {owner}"
                    for label, module, args in _commands(kind, name, key, value):
                        run = module == "dinotools.run"
                        simple(audit, f"param {label} {owner} {key}={value}", args, module=module,
                               want=want, out="out" if run else None, check=_no_output if run else None,
                               clip=module != "dinotools.eval", prep=_davis if module == "dinotools.eval" else None)
    # The frame's bound: the clip is 64x48 at --short-side 48, a 3x4 patch grid, 6x8 at guided's scale 2:
    # a window 2r+1 <= 6 pixels, so r <= 2.
    for value in ("100000", "3"):
        simple(audit, f"param run refiner guided radius={value} (frame)", [*TRACK, "--refine", "guided", "--refine-arg",
               f"radius={value}"], want="radius of refiner guided must be <= 2", check=_no_output)
        simple(audit, f"param eval refiner guided radius={value} (frame)", [*EVAL, "--refine", "guided",
               "--refine-arg", f"radius={value}"], module="dinotools.eval", clip=False, out=None, prep=_davis,
               want="radius of refiner guided must be <= 2")
    simple(audit, "param run refiner guided radius=2 (the frame's largest)", [*TRACK, "--refine", "guided",
           "--refine-arg", "radius=2"], rc=0)
