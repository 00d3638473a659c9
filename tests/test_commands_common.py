"""``dinotools.commands.common``: the one KEY=VALUE reading and the one exception -> line + exit code path,
the same in every command."""
import signal

import pytest

from dinotools.commands import batch, convert, eval as eval_cmd, points, run
from dinotools.commands.common import parse_kv, run_command
from dinotools.errors import Interrupted, UserError
from dinotools.registry import ComponentError


def test_one_key_value_semantics():
    got = parse_kv(["a=1", "b=0.5", "c=true", "d=False", "e=none", "f=text", "g-h= x ", "i="], "--x-arg")
    assert got == {"a": 1, "b": 0.5, "c": True, "d": False, "e": None, "f": "text", "g_h": "x", "i": ""}
    assert type(got["a"]) is int
    with pytest.raises(UserError, match=r"--x-arg expects KEY=VALUE, got 'oops'"):
        parse_kv(["oops"], "--x-arg")


def test_every_command_reads_key_values_the_same_way():
    # dinotools.run --init-arg void=true was the text "true" while dinotools.eval made it True.
    args = run.build_parser().parse_args(["--init-arg", "void=true", "--refine", "guided", "--refine-arg", "eps=none"])
    settings = run.settings_from_args(args)
    assert settings.init_args == {"void": True} and settings.refine_args == {"eps": None}
    p = points.point_settings_from_args(points.build_parser().parse_args(["--backbone-arg", "grid=4"]))
    assert p.backbone_args == {"grid": 4}


@pytest.mark.parametrize("exc, code, line", [
    (UserError("bad --x"), 2, "error: bad --x"),
    (ComponentError("backbone 'x' is not registered"), 2, "error: backbone 'x' is not registered"),
    (Interrupted("interrupted by SIGTERM", signal.SIGTERM), 143, "interrupted by SIGTERM"),
    (KeyboardInterrupt(), 130, "interrupted by Ctrl-C"),
    (OSError(28, "No space left on device"), 2, "error: known: No space left on device"),
])
def test_run_command_maps_exceptions_to_one_line_and_code(capsys, exc, code, line):
    def body():
        raise exc

    describe = lambda e: f"known: {e.strerror}" if isinstance(e, OSError) else None  # noqa: E731
    assert run_command(body, describe=describe, notes=[]) == code
    assert capsys.readouterr().err == line + "\n"


def test_unknown_exceptions_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        run_command(lambda: 1 / 0, describe=lambda e: None)


@pytest.mark.parametrize("module", [run, points, batch, eval_cmd, convert])
def test_every_command_goes_through_run_command(module, monkeypatch):
    """No command keeps its own copy of the error handling: each main() calls commands.common.run_command."""
    seen = []
    monkeypatch.setattr(module, "run_command", lambda body, **kw: seen.append(kw) or 0)
    argv = {run: ["--list"], points: [], batch: ["--list", "x.csv", "--output", "o"],
            eval_cmd: ["--davis", "d", "--results", "r"], convert: ["a", "b", "--to", "png"]}[module]
    assert module.main(argv) == 0 and len(seen) == 1
