# Sourced by .ci/run: the second CI environment, torch 2.14.1 + torchvision 0.29.1 (a CUDA 13.0 build,
# run on the CPU), with the FULL CUDA extension built. Each function is one timed phase.
#
# It works in a copy of the tree (tracked + untracked-not-ignored files, no build outputs): the
# editable install compiles dinotools/_C.cpython-311-*.so and build/ INSIDE the source folder, under the
# same names for either torch, so building here in place would overwrite the CPU environment's module
# with one linked against another torch (and ninja could reuse its objects). The copy's ../shared is a
# link to the original's, so tests find the fixtures as usual.

CU_ROOT="${TMPDIR:-/tmp}/dinotools-ci-cu"
CU_VENV="$CU_ROOT/venv"
CU_SRC="$CU_ROOT/src"
SAM2_PACKAGES=(sam2==1.1.0 hydra-core==1.3.8 iopath==0.1.10)  # PyPI sam2 1.1.0: Meta's SAM 2 code, repackaged

cuda_venv() {
  rm -rf "$CU_ROOT"
  mkdir -p "$CU_ROOT"
  python3 -m venv "$CU_VENV"
  # shellcheck disable=SC1091
  source "$CU_VENV/bin/activate"
  python -m pip install -q --upgrade pip
  pip install -q torch==2.14.1 torchvision==0.29.1 setuptools wheel ninja
  python -c 'import torch, torchvision; print("torch", torch.__version__, "CUDA", torch.version.cuda, "torchvision", torchvision.__version__)'
}

cuda_tree() {
  local src_root
  src_root="$(pwd -P)"
  mkdir -p "$CU_SRC"
  # Deleted-but-tracked files are listed too; --ignore-failed-read skips them.
  git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$CU_SRC"
  if [[ -d ../shared ]]; then ln -s "$(cd ../shared && pwd -P)" "$CU_ROOT/shared"; fi
  if compgen -G "$CU_SRC/dinotools/_C*.so" >/dev/null || [[ -d "$CU_SRC/build" ]]; then
    echo "cuda_tree: build outputs were copied from $src_root" >&2
    return 1
  fi
  echo "copied $(find "$CU_SRC" -type f | wc -l) files to $CU_SRC"
}

cuda_arch_guard() {
  # Issue 23: an arch list below 8.0 must stop setup.py with the message naming the supported archs
  # ("this build's archs include ..."), before anything compiles; the .cu's #error (checked by
  # .ci/kernel_checks.sh) would be the backstop. CI's log shows the message.
  local log
  if log="$(cd "$CU_SRC" && TORCH_CUDA_ARCH_LIST="7.5;8.0" python setup.py build_ext --inplace 2>&1)"; then
    echo "cuda_arch_guard: TORCH_CUDA_ARCH_LIST=\"7.5;8.0\" built instead of stopping" >&2
    return 1
  fi
  if ! grep -q "this build's archs include 7.5" <<<"$log"; then
    echo "$log" | tail -n 20 >&2
    echo "cuda_arch_guard: the 7.5 build failed without setup.py's message (above)" >&2
    return 1
  fi
  if compgen -G "$CU_SRC/dinotools/_C*.so" >/dev/null || [[ -d "$CU_SRC/build" ]]; then
    echo "cuda_arch_guard: the refused build left outputs in $CU_SRC" >&2
    return 1
  fi
  echo "arch guard: TORCH_CUDA_ARCH_LIST=\"7.5;8.0\" stops the build: $(grep -o "dinotools: the CUDA kernel.*" <<<"$log")"
}

cuda_build() {
  # shellcheck source=.ci/cuda_build_env.sh
  source .ci/cuda_build_env.sh
  dt_cuda_build_env
  cuda_arch_guard  # first: a few seconds, in the fresh copy, before the real build
  # The dev extra holds every test dependency, so packages added there reach both environments.
  (cd "$CU_SRC" && pip install -q --no-build-isolation -e ".[dev]")
  (cd "$CU_SRC" && pip install -q --no-build-isolation --no-deps ./plugins/*)
}

cuda_sam2() {
  # SAM2_BUILD_CUDA=0: its optional extension only speeds up the video predictor's hole filling,
  # which the automatic mask generator does not use. No build isolation: sam2 ships as an sdist
  # whose build needs torch, and an isolated build would download a second torch.
  SAM2_BUILD_CUDA=0 pip install -q --no-build-isolation "${SAM2_PACKAGES[@]}"
  python -c 'import sam2.build_sam, sam2.automatic_mask_generator; print("sam2 imports")'
}

cuda_info() {
  local info elf arch tool
  info="$(cd "$CU_SRC" && python -m dinotools.run --info)"
  echo "$info"
  if ! grep -q "(CPU + CUDA)" <<<"$info"; then
    echo "cuda_info: dinotools._C was not built with its CUDA kernels (see --info above)" >&2
    return 1
  fi
  # Machine code for both targets (A100 and H100/H200), not only PTX for one of them.
  tool="$(dt_cuobjdump)" || { echo "cuda_info: no cuobjdump (toolkit, PATH or Triton) to list the machine code" >&2; return 1; }
  elf="$("$tool" --list-elf "$CU_SRC"/dinotools/_C*.so)"
  for arch in sm_80 sm_90; do
    if ! grep -q "$arch" <<<"$elf"; then echo "cuda_info: dinotools._C holds no $arch code: $elf" >&2; return 1; fi
  done
  echo "machine code: $(grep -o 'sm_[0-9]*' <<<"$elf" | sort -u | tr '\n' ' ')"
}

cuda_tests() {
  # DINOTOOLS_REQUIRE_SAM2=1: the real-SAM 2 tests fail instead of skipping when sam2 is missing.
  # The tests whose code paths depend on this environment (torch 2.14.1, the full CUDA build of
  # dinotools._C, real SAM 2): everything but the file, batch and reliability tests, which do only I/O
  # (the same on any torch) and run in the cpu and wheel environments already. Trimmed when the wheel
  # environment was added, to keep CI well under its hour.
  local skip=(test_batch_ test_reliability_ test_resume test_overwrite_safety test_readers_validate
              test_bad_input test_points_resume test_eval_ test_io test_exports test_frame_modes test_layers)
  local args=()
  for s in "${skip[@]}"; do args+=(--ignore-glob="tests/${s}*"); done
  (cd "$CU_SRC" && DINOTOOLS_REQUIRE_SAM2=1 python -m pytest -q tests "${args[@]}")
}

cuda_gpu_check() {
  # The GPU check's own code on the CPU at small shapes, so it cannot rot before a GPU runs it.
  (cd "$CU_SRC" && python benchmarks/gpu_check.py --device cpu --quick --out "$CU_ROOT/gpu_check_quick.json")
}
