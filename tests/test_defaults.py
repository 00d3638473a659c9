"""Issue 12, defaults and conventions: device auto, tqdm bars, --help defaults, one-way imports, eval checks."""
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import write_demo_clip

from dinotools import create_tracker
from dinotools.commands.run import build_parser, main
from dinotools.errors import ConfigError
from dinotools.io.masks import write_mask
from dinotools.ops.devices import resolve_device
from dinotools.runs.report import progress_bar
from dinotools.runs.settings import RunSettings, tracker_fields

AUTO = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_device_defaults_to_auto_everywhere():
    assert RunSettings().device == "auto" and build_parser().parse_args([]).device == "auto"
    from dinotools.commands.eval import build_parser as eval_parser

    assert eval_parser().parse_args(["--davis", "x", "--track"]).device == "auto"
    assert resolve_device("auto") == AUTO and resolve_device(None) == AUTO
    assert create_tracker("label-propagation", backbone="baseline").device == AUTO  # the Python API


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_config_error():
    with pytest.raises(ConfigError, match="device 'cuda'"):
        resolve_device("cuda")


def test_bad_device_names_are_config_errors():
    with pytest.raises(ConfigError, match="not a device name"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="cuda:99"):
        resolve_device("cuda:99")


def test_info_and_the_run_summary_say_the_device(tmp_path, capsys):
    assert main(["--info"]) == 0
    assert f"device 'auto' (the default) resolves to: {AUTO.type}" in capsys.readouterr().out
    frames, gt = write_demo_clip(tmp_path, 3, (48, 64))
    write_mask(tmp_path / "m.png", gt[0])
    assert main(["--frames", str(frames), "--mask", str(tmp_path / "m.png"), "--output", str(tmp_path / "o"),
                 "--backbone", "baseline", "--short-side", "48", "--no-progress"]) == 0
    assert f"on {AUTO.type}" in capsys.readouterr().out


def test_progress_bar_is_tqdm_and_silent_without_a_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress_bar(10)  # a StringIO is not a terminal
    bar.update(10)
    bar.close()
    assert stream.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    videos = progress_bar(2, unit="video", desc="videos")  # a batch runner's outer bar, frames inside
    for _ in range(2):
        frames = progress_bar(5, desc="clip", leave=False, position=1)
        frames.update(5)
        frames.close()
        videos.update(1)
    videos.close()
    assert "2/2" in tty.getvalue() and "video" in tty.getvalue()
    off = progress_bar(3, enabled=False)
    assert off.disable


def test_help_shows_every_default_and_a_meaning_per_tracker_parameter():
    text = " ".join(build_parser().format_help().split())
    for f in tracker_fields():
        option = "--" + f.name.replace("_", "-")
        assert option in text and f.metadata["help"].split()[0] in text
        # a None default (upsample: the refiner decides) is described by the help text itself
        shown = f.metadata["help"] if f.default is None else f"{f.metadata['help']} (default: {f.default})"
        assert shown in text, option
    for default in ("(default: vitl16)", "(default: auto)", "(default: 2)", "(default: discover", "(default: fp32)"):
        assert default in text


def test_demo_cli_does_not_import_the_command_line():
    code = "import sys, dinotools.commands.demo; print('dinotools.commands.run' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def _davis(tmp_path):
    from PIL import Image

    from dinotools.eval.synthetic_clip import make_clip

    frames, gt = make_clip(4, (48, 64))
    (tmp_path / "D/JPEGImages/480p/s").mkdir(parents=True)
    (tmp_path / "D/Annotations/480p/s").mkdir(parents=True)
    for i, (f, m) in enumerate(zip(frames, gt)):
        Image.fromarray(f).save(tmp_path / f"D/JPEGImages/480p/s/{i:05d}.jpg")
        write_mask(tmp_path / f"D/Annotations/480p/s/{i:05d}.png", m)
    return ["--davis", str(tmp_path / "D"), "--track", "--backbone", "baseline", "--short-side", "48",
            "--out", str(tmp_path / "ev")]


@pytest.mark.parametrize("extra,words", [
    (["--grid", "topkk=3,5"], ["--grid topkk", "no parameter 'topkk'", "did you mean 'topk'"]),
    (["--tracker-arg", "foo=1"], ["--tracker-arg foo=1", "no parameter 'foo'"]),
    (["--backbone-arg", "foo=1"], ["--backbone-arg foo=1", "backbone 'baseline' has no parameter 'foo'"]),
    (["--set", "test-dev"], ["image set 'test-dev' not found", "ImageSets/2017/test-dev.txt"]),
    (["--temperature", "inf"], ["--temperature", "finite"]),
    (["--grid", "topk=0,5"], ["--topk must be >= 1"]),
    (["--refine", "guided", "--refine-arg", "eps=inf"], ["eps of refiner guided", "finite", "got inf"]),
    (["--backbone-arg", "grid=0"], ["grid of backbone baseline must be an integer in [1, 16], got 0"]),
    (["--grid", "temperature=0.1,50"], ["--temperature 50", "temperature of tracker label-propagation"]),
])
def test_eval_bad_options_are_one_line_errors_before_tracking(tmp_path, capsys, extra, words):
    """Reproduction: dinotools.eval --grid topkk=3,5, --tracker-arg foo=1, an unknown --backbone-arg gave
    tracebacks, and --set NAME without its ImageSets file silently used every sequence."""
    from dinotools.commands.eval import main as eval_main

    assert eval_main(_davis(tmp_path) + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert all(w in err for w in words), err
    assert not (tmp_path / "ev").exists()


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--dtype", "int8"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith("error: argument --dtype")


@pytest.mark.parametrize("size,shape", [(12, "circle"), (0, "circle"), (2.5, "circle"), (3, "square"), (0.5, "square")])
def test_topk_limit_counts_the_neighbourhood_cells(size, shape):
    """The --topk limit is (max_context + 1) x the window's cells, counted here independently (float64 grid)."""
    from dinotools.runs.limits import check_tracker_params, window_cells

    r = int(np.floor(size))
    dy, dx = np.meshgrid(np.arange(-r, r + 1, dtype=np.float64), np.arange(-r, r + 1, dtype=np.float64))
    dist = np.sqrt(dy ** 2 + dx ** 2) if shape == "circle" else np.maximum(abs(dy), abs(dx))
    cells = int((dist <= size).sum())
    assert window_cells(size, shape) == cells
    most = 8 * cells
    check_tracker_params({"topk": most, "size": size, "shape": shape, "max_context": 7})
    with pytest.raises(ConfigError, match=f"use at most {most}"):
        check_tracker_params({"topk": most + 1, "size": size, "shape": shape, "max_context": 7})


def test_a_huge_size_is_refused_before_counting_its_cells():
    """Reproduction: --size 1e9 hung in the --topk check, which counted the window's (2e9+1)^2 cells."""
    code = ("from dinotools.runs.limits import check_tracker_params\n"
            "try:\n    check_tracker_params({'size': 1e9, 'topk': 5, 'shape': 'circle', 'max_context': 7})\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    except subprocess.TimeoutExpired:
        pytest.fail("check_tracker_params did not return for --size 1e9")
    assert out.startswith("ConfigError --size 1000000000.0: size of tracker label-propagation must be"), out
