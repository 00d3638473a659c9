"""Build the CPU operator of another git revision (default: the one issue 13 started from) beside this one, for side-by-side timing.

The kernel file of that revision is compiled as it was built there (``-O3``, no OpenMP unless the
revision's own flags are passed) and registered as ``torch.ops.dinotools_baseline.topk_propagate``,
so both operators run in one process. Usage from a benchmark::

    from baseline_kernel import load_baseline
    op = load_baseline()  # or load_baseline("some-branch")  # None (with the reason printed) when git or the revision is missing
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FILES = ("csrc/cpu/topk_propagate_kernel.cpp", "csrc/checks.h", "csrc/window.h")
SCHEMA = ("topk_propagate(Tensor current, Tensor context, Tensor context_probs, float size, str shape, "
          "int topk, float temperature) -> Tensor")
# The CPU operator issue 13 started from (single-threaded AVX2 build, score buffer): the fixed
# yardstick of "x today's operator". A branch name would move with the new kernel once merged.
ISSUE13_BASELINE = "badcbd9829dbb71b50a9ffed74e2107ea6d2eb73"
IMPL = re.compile(r"TORCH_LIBRARY_IMPL\(\s*dinotools\s*,\s*CPU\s*,\s*m\s*\)")


def _git_show(ref: str, path: str) -> str:
    return subprocess.run(["git", "-C", ROOT, "show", f"{ref}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def baseline_sources(ref: str, folder: str) -> str:
    """Writes the revision's kernel (re-registered under ``dinotools_baseline``) into folder; returns the .cpp."""
    os.makedirs(os.path.join(folder, "cpu"), exist_ok=True)
    texts = {path: _git_show(ref, path) for path in FILES}
    kernel = texts[FILES[0]]
    if not IMPL.search(kernel):
        raise RuntimeError(f"{ref}:{FILES[0]} has no TORCH_LIBRARY_IMPL(dinotools, CPU, m) block to rename")
    kernel = IMPL.sub(f'TORCH_LIBRARY(dinotools_baseline, m) {{ m.def("{SCHEMA}"); }}\n'
                      "TORCH_LIBRARY_IMPL(dinotools_baseline, CPU, m)", kernel, count=1)
    texts[FILES[0]] = kernel
    for path, text in texts.items():
        with open(os.path.join(folder, os.path.relpath(path, "csrc")), "w") as f:
            f.write(text)
    return os.path.join(folder, "cpu", "topk_propagate_kernel.cpp")


def load_baseline(ref: str = ISSUE13_BASELINE, flags=("-O3",), verbose: bool = False):
    """``torch.ops.dinotools_baseline.topk_propagate`` built from ``ref``, or None (reason printed)."""
    if hasattr(torch.ops, "dinotools_baseline") and hasattr(torch.ops.dinotools_baseline, "topk_propagate"):
        return torch.ops.dinotools_baseline.topk_propagate
    from torch.utils.cpp_extension import load

    try:
        sha = subprocess.run(["git", "-C", ROOT, "rev-parse", ref], check=True, capture_output=True,
                             text=True).stdout.strip()
        folder = os.path.join(ROOT, "build", "baseline_kernel", sha[:12])
        source = baseline_sources(ref, folder)
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"baseline {ref}: not built ({exc})")
        return None
    name = "dinotools_baseline_" + hashlib.sha1((sha + " ".join(flags)).encode()).hexdigest()[:10]
    load(name=name, sources=[source], extra_cflags=list(flags), extra_include_paths=[folder],
         build_directory=folder, is_python_module=False, verbose=verbose)
    return torch.ops.dinotools_baseline.topk_propagate
