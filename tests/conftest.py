"""Shared test fixtures: paths to ../shared (skipped with a reason when absent), seeding, devices."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DINOTOOLS_SHARED", ROOT.parent / "shared"))


def pytest_configure(config):
    """Under .ci/wheel.sh (DINOTOOLS_TEST_INSTALLED=1) the suite must test the installed wheel: a
    ``dinotools`` imported from this checkout (the working directory on sys.path, an editable
    install) would test the source tree instead, so the run stops at once."""
    if os.environ.get("DINOTOOLS_TEST_INSTALLED") == "1":
        import dinotools

        where = Path(dinotools.__file__).resolve()
        if ROOT in where.parents:
            raise pytest.UsageError(f"DINOTOOLS_TEST_INSTALLED=1 but dinotools is imported from the checkout ({where})")


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test (with the reason) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: tests against the shared fixtures/data need ../shared beside the repo")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return shared_path("fixtures")


@pytest.fixture
def data_dir() -> Path:
    return shared_path("data")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=devices())
def device(request):
    return request.param


def write_demo_clip(tmp_path, n_frames, size):
    """The demo clip written as PNG frames under ``tmp_path/frames``; returns (folder, ground-truth masks)."""
    from PIL import Image

    from dinotools.eval.synthetic_clip import make_clip

    frames, gt = make_clip(n_frames, size)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:05d}.png")
    return folder, gt
