#!/usr/bin/env bash
# A wheel that installs (issue 19): build the sdist, build the wheel FROM the sdist (so the sdist is
# proven complete), check that the wheel carries every subpackage and the compiled operator, install
# it (not editable) into a fresh venv, then from a folder outside the checkout run
# `python -m dinotools.run --demo`, `--info`, `--list`, and the test suite against the installed
# package (tests/conftest.py stops the run if dinotools were imported from the checkout).
# Usage: bash .ci/wheel.sh [VENV]   (needs python3 with venv; installs torch 2.13.0 into VENV)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${TMPDIR:-/tmp}/dinotools-wheel-venv}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dinotools-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

rm -rf "$VENV"
python3 -m venv "$VENV"
# shellcheck disable=SC1091
source "$VENV/bin/activate"
python -m pip install -q --upgrade pip
pip install -q torch==2.13.0 setuptools wheel ninja build

echo "== wheel: sdist"
(cd "$ROOT" && python -m build --sdist --no-isolation --outdir "$WORK/dist" > "$WORK/sdist.log" 2>&1) \
  || { tail -40 "$WORK/sdist.log"; exit 1; }
sdist="$(ls "$WORK"/dist/dinotools-*.tar.gz)"
echo "== wheel: wheel built from $(basename "$sdist")"
(cd "$WORK" && pip wheel -q --no-build-isolation --no-deps "$sdist" -w "$WORK/dist" > "$WORK/wheel.log" 2>&1) \
  || { tail -40 "$WORK/wheel.log"; exit 1; }
wheel="$(ls "$WORK"/dist/dinotools-*.whl)"

echo "== wheel: contents of $(basename "$wheel")"
python - "$ROOT" "$wheel" <<'PYEOF'
import sys, zipfile
from pathlib import Path
from setuptools import find_packages

root, wheel = Path(sys.argv[1]), sys.argv[2]
names = zipfile.ZipFile(wheel).namelist()
packages = find_packages(str(root), include=["dinotools", "dinotools.*"])
source = {str(p.relative_to(root)) for p in (root / "dinotools").rglob("*.py")}
missing = sorted(source - set(names))
assert not missing, f"the wheel lacks {missing}"
folders = {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}
lacking = sorted(f for f in {p.replace(".", "/") for p in packages} if f not in folders)
assert not lacking, f"packages without __init__.py in the wheel: {lacking}"
dirs = {str(p.relative_to(root)) for p in (root / "dinotools").rglob("*") if p.is_dir() and p.name != "__pycache__"}
no_init = sorted(d for d in dirs if not (root / d / "__init__.py").exists() and any((root / d).glob("*.py")))
assert not no_init, f"folders of modules without __init__.py (find_packages leaves them out): {no_init}"
ext = [n for n in names if n.startswith("dinotools/_C") and n.endswith((".so", ".pyd"))]
assert ext, "the wheel carries no compiled operator dinotools/_C*.so"
print(f"wheel: {len(packages)} packages, {len(source)} modules, compiled operator {ext[0]}")
PYEOF

echo "== wheel: install (not editable) + plugins + test extras"
pip install -q "$wheel[dev]"
pip install -q --no-build-isolation --no-deps "$ROOT"/plugins/*
cd "$WORK"  # outside the checkout: nothing of the source tree is importable from here
python -c "import dinotools, sys; print('dinotools from', dinotools.__file__)"
python -m dinotools.run --info | tee "$WORK/info.txt"
grep -q "compiled operator dinotools._C: loaded" "$WORK/info.txt"
python -m dinotools.run --list > /dev/null
python -m dinotools.run --demo --output "$WORK/demo" --no-progress
for script in dinotools dinotools-run dinotools-points dinotools-batch dinotools-eval dinotools-convert; do
  "$script" --help > /dev/null
done
echo "== wheel: test suite against the installed package"
DINOTOOLS_TEST_INSTALLED=1 python -m pytest -q -p no:cacheprovider --rootdir "$ROOT" -c "$ROOT/pyproject.toml" "$ROOT/tests"
