# Sourced (bash): export what a FULL CUDA build of dinotools._C needs for the active python's torch.
#   CUDA_HOME              the toolkit that nvcc belongs to (the nvcc on PATH may be a wrapper script,
#                          so torch cannot infer it from the path): asked of nvcc itself
#   CPATH                  + the nvidia wheels' include folders (cusparse/cublas/cusolver headers that
#                          torch's CUDA headers include come from those wheels, not from the toolkit)
#   TORCH_CUDA_ARCH_LIST   "8.0;9.0" (A100 and H100/H200) unless already set
#   DINOTOOLS_FORCE_CUDA=1 build the CUDA kernels even without a GPU (setup.py reads it)
# Returns non-zero with a one-line reason when no usable toolkit is found.

_dt_toolkit_ok() {  # $1 has bin/nvcc and the CUDA runtime header
  [[ -n "$1" && -x "$1/bin/nvcc" ]] && { [[ -f "$1/include/cuda_runtime.h" ]] ||
    compgen -G "$1/targets/*/include/cuda_runtime.h" >/dev/null; }
}

dt_find_cuda_home() {  # prints the toolkit folder
  local here candidate
  if _dt_toolkit_ok "${CUDA_HOME:-}"; then echo "$CUDA_HOME"; return 0; fi
  if command -v nvcc >/dev/null; then
    # nvcc reports its own folder (#$ _HERE_=<toolkit>/bin) even when called through a wrapper or link.
    here="$(nvcc -dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ _HERE_=//p' | head -n1)"
    if [[ -n "$here" ]] && _dt_toolkit_ok "$(cd "$here/.." && pwd -P)"; then (cd "$here/.." && pwd -P); return 0; fi
  fi
  for candidate in /usr/local/cuda-"$(python -c 'import torch; print(torch.version.cuda or "")')" /usr/local/cuda; do
    if _dt_toolkit_ok "$candidate"; then (cd "$candidate" && pwd -P); return 0; fi
  done
  return 1
}

dt_cuobjdump() {  # prints a cuobjdump: the toolkit's, one on PATH, or the one Triton's wheel carries
  local tool
  for tool in "${CUDA_HOME:-/nonexistent}/bin/cuobjdump" "$(command -v cuobjdump || true)" \
    "$(python -c 'import os, triton; print(os.path.dirname(triton.__file__))' 2>/dev/null)/backends/nvidia/bin/cuobjdump"; do
    if [[ -x "$tool" && -f "$tool" ]]; then echo "$tool"; return 0; fi
  done
  return 1
}

dt_cuda_build_env() {
  local home torch_cuda nvcc_cuda purelib inc
  torch_cuda="$(python -c 'import torch; print(torch.version.cuda or "")')"
  if [[ -z "$torch_cuda" ]]; then
    echo "cuda_build_env: $(python -c 'import torch; print(torch.__version__)') is a CPU-only torch; install a CUDA build" >&2
    return 1
  fi
  if ! home="$(dt_find_cuda_home)"; then
    echo "cuda_build_env: no CUDA toolkit found (no nvcc on PATH, no valid CUDA_HOME, no /usr/local/cuda-$torch_cuda)" >&2
    return 1
  fi
  nvcc_cuda="$("$home/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
  if [[ "${nvcc_cuda%%.*}" != "${torch_cuda%%.*}" ]]; then
    echo "cuda_build_env: nvcc in $home is CUDA $nvcc_cuda but torch was built with CUDA $torch_cuda" >&2
    return 1
  fi
  purelib="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  # CUDA 13 wheels put every header under nvidia/cu13/include; older ones use nvidia/<library>/include.
  local includes=("$purelib/nvidia/cu${torch_cuda%%.*}/include")
  [[ -d "${includes[0]}" ]] || includes=("$purelib"/nvidia/*/include)
  for inc in "${includes[@]}"; do
    if [[ -d "$inc" && ":${CPATH:-}:" != *":$inc:"* ]]; then export CPATH="${CPATH:+$CPATH:}$inc"; fi
  done
  export CUDA_HOME="$home"
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;9.0}"
  export DINOTOOLS_FORCE_CUDA=1
  echo "cuda_build_env: CUDA_HOME=$CUDA_HOME (nvcc $nvcc_cuda, torch CUDA $torch_cuda)," \
    "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, CPATH=${CPATH:-}"
}
