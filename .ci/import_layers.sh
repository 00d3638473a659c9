#!/usr/bin/env bash
# The layer contracts (pyproject.toml [tool.importlinter]) must hold, and must catch a broken layer:
# an upward import is planted into a copy of the package (a lazy one, inside a function, and a
# top-level one) and lint-imports must then fail, naming it.
# Needs the active Python to have import-linter (the `dev` extra) and the plugins installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
lint-imports

plant() {  # plant FILE LINE: lint-imports over a copy of the package with LINE appended to FILE must fail
  local tmp
  tmp="$(mktemp -d)"
  cp -r dinotools pyproject.toml "$tmp/"
  printf '\n%s  # planted by .ci/import_layers.sh\n' "$2" >> "$tmp/$1"
  if (cd "$tmp" && PYTHONPATH="$tmp" lint-imports > "$tmp/out.txt" 2>&1); then
    echo "import_layers: lint-imports passed with '$2' planted in $1" >&2
    rm -rf "$tmp"
    return 1
  fi
  grep -q "not allowed to import" "$tmp/out.txt"
  echo "import_layers: planted '$2' in $1: lint-imports fails as it must"
  rm -rf "$tmp"
}
plant dinotools/trackers/state.py "from dinotools.runs import settings"
plant dinotools/io/masks.py $'def _later():\n    from dinotools.pipeline import engine'
plant dinotools/refiners/base.py "from dinotools.backbones import baseline"
plant dinotools/runs/report.py "from dinotools.commands import common"
echo "import_layers: OK"
