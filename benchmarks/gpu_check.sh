#!/usr/bin/env bash
# On a bare GPU machine (see benchmarks/gpu_prepare.sh for what to carry there): build dinotools._C
# (CPU + CUDA kernels for sm_80 and sm_90) against that machine's python and torch, exactly as CI
# builds it, then run benchmarks/gpu_check.py, which prints one JSON (also written to OUT.json).
#   bash benchmarks/gpu_check.sh [OUT.json] [gpu_check.py arguments...]
# Carried, when present: .gpu/wheels/*.whl (SAM 2 and its pure-Python needs, installed to a
# scratch folder) and .gpu/fixtures/notebook_propagate_cases.pt (the notebook fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check.json}"
shift || true
t0=$SECONDS
# The machine's python may be called python3 only; the build helpers call `python`.
if ! command -v python >/dev/null; then
  mkdir -p /tmp/dinotools-bin && ln -sf "$(command -v python3)" /tmp/dinotools-bin/python
  export PATH="/tmp/dinotools-bin:$PATH"
fi
if compgen -G ".gpu/wheels/*.whl" >/dev/null; then
  python -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/dinotools-site .gpu/wheels/*.whl
  export PYTHONPATH="/tmp/dinotools-site${PYTHONPATH:+:$PYTHONPATH}"
fi
fixtures=()
if [[ -f .gpu/fixtures/notebook_propagate_cases.pt ]]; then fixtures=(--fixtures .gpu/fixtures); fi

# shellcheck source=.ci/cuda_build_env.sh
source .ci/cuda_build_env.sh
dt_cuda_build_env
rm -rf build dinotools/_C*.so  # never reuse objects built against another torch
MAX_JOBS="${MAX_JOBS:-$(nproc)}" python -m pip install -q --no-index --no-deps --no-build-isolation -e .
build_s=$((SECONDS - t0))
info="$(python -m dinotools.run --info)"
echo "$info"
grep -q "(CPU + CUDA)" <<<"$info" || { echo "gpu_check.sh: the CUDA kernels were not built (see --info above)" >&2; exit 1; }
echo "gpu_check.sh: built in ${build_s} s" >&2
set +e
PYTHONUNBUFFERED=1 python benchmarks/gpu_check.py --build-seconds "$build_s" --out "$out" "${fixtures[@]}" "$@"
status=$?
echo "gpu_check.sh: total $((SECONDS - t0)) s (exit status $status)" >&2
exit $status
