#!/usr/bin/env bash
# Run HERE (a machine with the package index and ../shared), in a python that has torch: fills the
# git-ignored .gpu/ with what a bare GPU machine lacks, to carry there with benchmarks/gpu_check.sh:
#   .gpu/fixtures/notebook_propagate_cases.pt   the notebook fixtures (from ../shared/fixtures)
#   .gpu/wheels/                                 sam2 1.1.0 (built here: PyPI has only its sdist, whose
#                                                build imports torch), hydra-core, omegaconf, antlr4
#                                                runtime, iopath: all pure Python (about 1 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/fixtures .gpu/wheels
if [[ -f ../shared/fixtures/notebook_propagate_cases.pt ]]; then
  cp ../shared/fixtures/notebook_propagate_cases.pt .gpu/fixtures/
else
  echo "gpu_prepare: ../shared/fixtures not found; gpu_check.py will use its generated cases only" >&2
fi
SAM2_BUILD_CUDA=0 python -m pip wheel -q --no-deps --no-build-isolation -w .gpu/wheels \
  sam2==1.1.0 hydra-core==1.3.8 "omegaconf>=2.2,<2.4" antlr4-python3-runtime==4.9.3 iopath==0.1.10
ls -la .gpu/wheels
du -sh .gpu
