"""``python -m dinotools.convert`` never deletes its input nor files it did not write (issue 20, item 1 for
convert): an output that is or holds the input is refused whatever the flags; ``--overwrite`` of a PNG
folder holding foreign files is refused naming one. Both used to replace the folder, input included."""
import numpy as np
import pytest

from dinotools.commands.convert import main
from dinotools.io.masks import write_mask


@pytest.fixture
def labels(tmp_path):
    folder = tmp_path / "lab"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        m = np.zeros((20, 30), np.uint8)
        m[5:10, 5 + i:10 + i] = 1
        write_mask(folder / f"{i:05d}.png", m)
        write_mask(folder / "sub" / f"{i:05d}.png", m)
    return folder


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
@pytest.mark.parametrize("which", ["same", "inside"])
def test_an_output_holding_the_input_is_refused(labels, capsys, flags, which):
    before = _listing(labels)
    source = labels if which == "same" else labels / "sub"
    assert main([str(source), str(labels), "--to", "png", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds the input" in err, err
    assert _listing(labels) == before


def test_overwrite_never_deletes_foreign_files(labels, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(labels), str(out), "--to", "png"]) == 0
    assert main([str(labels), str(out), "--to", "png", "--overwrite"]) == 0  # its own PNGs: replaced
    (out / "notes.txt").write_text("mine")
    assert main([str(labels), str(out), "--to", "png", "--overwrite"]) == 2
    assert "notes.txt, not written by dinotools" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
