"""Issue 20 item 7: every numeric parameter of every built-in component has a declared range, checked on
creation from Python and, before any work, on what a command line passes (including the frame's bounds).

Reproduction: ``--refine guided --refine-arg eps=inf`` or ``radius=100000`` exited 0 with every object
gone after frame 0.
"""
import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_demo_clip

from dinotools.commands.run import main
from dinotools.errors import ConfigError
from dinotools.io.masks import read_mask, write_mask
from dinotools.interfaces.params import Range, owner_of, params_of
from dinotools.registry import REGISTRIES
from dinotools.registry.builtins import BUILTINS
from dinotools.runs.limits import check_params, ranges_table

README = Path(__file__).resolve().parents[1] / "README.md"
FLAG = {"refiner": "--refine-arg", "initializer": "--init-arg", "backbone": "--backbone-arg",
        "propagator": "--propagator-arg", "tracker": "--tracker-arg"}


def builtins():
    """``(kind, name, factory)`` of every built-in (the dinov3_ aliases are the same factories)."""
    return [(kind, name, REGISTRIES[kind].get(name)) for kind, table in BUILTINS.items() for name in sorted(table)
            if not name.startswith("dinov3_")]


def numeric_parameters(factory):
    """Constructor parameters annotated int/float (Optional too) or with an int/float default; bools and
    sequences of numbers (frame lists) excluded."""
    out = []
    for p in inspect.signature(factory).parameters.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        note = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", str(p.annotation))
        default_numeric = isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
        scalar = not any(word in note for word in ("bool", "Sequence", "List", "list", "dict"))
        annotated = p.annotation is not p.empty and ("int" in note or "float" in note) and scalar
        if annotated or default_numeric:
            out.append(p.name)
    return out


def bad_values(rng: Range):
    """Values outside ``rng``, each refused whatever the frame: NaN, inf where finite, past each bound, a
    non-integer for an integer, a string."""
    values = [math.nan, "x"]
    if rng.finite:
        values.append(math.inf)
    if rng.lo is not None:
        values.append(rng.lo if rng.lo_open else (rng.lo - 1 if rng.integer else rng.lo - 0.5))
    if rng.hi is not None:
        values.append(rng.hi if rng.hi_open else (rng.hi + 1 if rng.integer else rng.hi * 2 + 1))
    if rng.integer:
        values.append((rng.lo or 0) + 1.5)
    return values


CASES = [(kind, name, key, value) for kind, name, factory in builtins() for key, rng in params_of(factory).items()
         for value in bad_values(rng)]


def test_every_numeric_constructor_parameter_has_a_declaration():
    """A new numeric parameter without a declared range fails here; so does a declaration of no parameter."""
    missing, stray = [], []
    for kind, name, factory in builtins():
        declared = params_of(factory)
        missing += [f"{kind} {name}: {p}" for p in numeric_parameters(factory) if p not in declared]
        params = inspect.signature(factory).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        stray += [f"{kind} {name}: {k}" for k in declared if k not in params and not takes_any]
    assert not missing, f"numeric parameters without a declared Range: {missing}"
    assert not stray, f"declared ranges of no parameter: {stray}"
    # the detector itself sees what it should (a check that cannot pass vacuously)
    assert "temperature" in numeric_parameters(REGISTRIES["tracker"].get("label-propagation"))
    assert "batch_size" in numeric_parameters(REGISTRIES["backbone"].get("vits16"))
    assert "predict" not in numeric_parameters(REGISTRIES["tracker"].get("points"))
    assert len({(k, n) for k, n, _, _ in CASES}) >= 8


def _create(kind, name, tmp_path, **kwargs):
    if kind == "initializer":
        kwargs.setdefault("path", tmp_path)  # the file initializer needs a path (checked after the ranges)
    return REGISTRIES[kind].get(name)(**kwargs)


@pytest.mark.parametrize("kind,name,key,value", CASES, ids=[f"{k}-{n}-{p}={v!r}" for k, n, p, v in CASES])
def test_out_of_range_values_are_refused_on_creation_and_on_the_command_line(kind, name, key, value, tmp_path):
    owner = owner_of(REGISTRIES[kind].get(name))
    assert owner.startswith(kind + " ")  # "refiner guided", "backbone dinov3"
    with pytest.raises(ConfigError) as exc:
        _create(kind, name, tmp_path, **{key: value})
    assert f"{key} of {owner} must be" in str(exc.value) and f"got {value!r}" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        check_params(kind, name, {key: value}, flag=FLAG[kind])
    assert str(exc.value).startswith(f"{FLAG[kind]} {key}={value}: {key} of {owner} must be"), str(exc.value)


@pytest.mark.parametrize("kind,name,factory", builtins(), ids=[f"{k}-{n}" for k, n, _ in builtins()])
def test_the_declared_defaults_are_in_range(kind, name, factory):
    from dinotools.interfaces.params import range_errors

    defaults = {p.name: p.default for p in inspect.signature(factory).parameters.values() if p.default is not p.empty}
    assert range_errors(name, params_of(factory), {k: defaults[k] for k in params_of(factory) if k in defaults}) == {}


def test_unknown_keys_and_wrong_types_name_the_option():
    with pytest.raises(ConfigError, match=r"--refine-arg foo=1: refiner 'guided' has no parameter 'foo'"):
        check_params("refiner", "guided", {"foo": 1}, flag="--refine-arg")
    with pytest.raises(ConfigError, match=r"--refine-arg radius=1.5: radius of refiner guided must be an integer"):
        check_params("refiner", "guided", {"radius": 1.5}, flag="--refine-arg")
    with pytest.raises(ConfigError, match=r"--init-arg void=a: void of initializer file must be an integer"):
        check_params("initializer", "file", {"void": "a"}, flag="--init-arg")


def _clip(tmp_path):
    """12 frames of 64x48, tracked at --short-side 48: a 3x4 patch grid, a 6x8 low resolution for guided (scale 2)."""
    folder, gt = write_demo_clip(tmp_path, 12, (48, 64))
    write_mask(tmp_path / "mask.png", gt[0])
    return ["--frames", str(folder), "--mask", str(tmp_path / "mask.png"), "--backbone", "baseline",
            "--propagator", "torch", "--short-side", "48", "--no-progress"]


@pytest.mark.parametrize("arg,words", [
    ("eps=inf", "--refine-arg eps=inf: eps of refiner guided must be a finite number in (0, 1], got inf"),
    ("radius=100000", "--refine-arg radius=100000: radius of refiner guided must be <= 2 (a window of 2r+1 pixels "
                      "fits in the 6-pixel short side"),
    ("radius=3", "--refine-arg radius=3: radius of refiner guided must be <= 2"),
    ("eps=0", "eps of refiner guided must be a finite number in (0, 1], got 0"),
    ("scale=nan", "scale of refiner guided must be a finite number in [1, 16], got nan"),
])
def test_run_refuses_parameters_that_erase_the_result(tmp_path, capsys, arg, words):
    """Reproduction of issue 20 item 7: these exited 0 with every object gone after frame 0. The frame's
    bound: 48 px short side -> 3 patches -> x2 = 6 low-resolution pixels; a window 2r+1 <= 6 -> r <= 2."""
    args = _clip(tmp_path)
    assert main(args + ["--output", str(tmp_path / "out"), "--refine", "guided", "--refine-arg", arg]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_the_largest_radius_the_frame_allows_runs_and_keeps_the_object(tmp_path):
    args = _clip(tmp_path)
    assert main(args + ["--output", str(tmp_path / "out"), "--refine", "guided", "--refine-arg", "radius=2"]) == 0
    assert all((read_mask(p) > 0).any() for p in sorted((tmp_path / "out").glob("*.png")))


def test_a_python_caller_learns_the_frame_bound_from_the_refiner():
    refiner = REGISTRIES["refiner"].get("guided")(radius=3)
    frame = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(ConfigError, match="radius of refiner guided must be <= 2"):
        refiner(frame, torch.rand(3, 4, 2))
    assert REGISTRIES["refiner"].get("guided")(radius=2)(frame, torch.rand(3, 4, 2)).shape == (2, 48, 64)


def test_readme_lists_every_declared_range():
    """The README's table is generated from the declarations: regenerate with
    ``python -c "from dinotools.runs.limits import ranges_table; print(ranges_table())"``."""
    table = ranges_table()
    assert table in README.read_text(), "README.md's table of parameter ranges is out of date"
    for kind, name, factory in builtins():
        for key in params_of(factory):
            assert f"`{key}`" in table and f"`{name}`" in table


SAM2_CHECK = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]  # this checkout's plugin source (not a stale installed copy), tests/
from test_param_ranges import bad_values, numeric_parameters
from dinotools.errors import ConfigError
from dinotools.interfaces.params import owner_of, params_of
from dinotools_sam2 import Sam2AutomaticInitializer, Sam2Refiner

problems, cases = [], 0
for factory in (Sam2AutomaticInitializer, Sam2Refiner):
    declared = params_of(factory)
    problems += [f"{factory.__name__}.{p} has no Range" for p in numeric_parameters(factory) if p not in declared]
    for key, rng in declared.items():
        for value in bad_values(rng):
            cases += 1
            try:
                factory(**{key: value})
                problems.append(f"{factory.__name__}({key}={value!r}) accepted")
            except ConfigError as exc:
                if f"{key} of {owner_of(factory)} must be" not in str(exc):
                    problems.append(str(exc))
print(json.dumps({"problems": problems, "cases": cases}))
"""


def test_the_sam2_plugin_declares_every_numeric_parameter_and_refuses_bad_values():
    """No SAM 2 needed: the ranges are checked before the plugin builds its model. In a subprocess, so that
    the plugin is this checkout's source, whatever copy the environment has installed."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", SAM2_CHECK, str(root / "plugins" / "dinotools-sam2" / "src"),
                          str(root / "tests")], capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["problems"] == [] and result["cases"] >= 40, result
