"""Mutation check of the emulated CUDA tests: each mutation of .ci/cuda_emu_mutations.toml is applied
to a copy of csrc/, built with csrc/emu/build.py and run under the emulated operator tests.

Exit status 1 when a mutation expected to be caught passes the tests, or when a pattern is stale.
    python .ci/cuda_emu_mutations.py [--only ID ...] [--table FILE]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_ops.py", "tests/test_cuda_kernel.py", "-k", "cuda-emu", "-x", "-q", "-p", "no:cacheprovider"]


def apply(csrc: Path, m: dict) -> None:
    path = csrc / "cuda" / m["file"]
    text = path.read_text()
    count = int(m.get("count", 1))
    found = text.count(m["find"])
    if found != count:
        raise SystemExit(f"mutation {m['id']}: expected {count} occurrence(s) of its `find` text in "
                         f"{m['file']}, found {found}: update .ci/cuda_emu_mutations.toml")
    path.write_text(text.replace(m["find"], m["replace"]))


def run_one(m: dict, work: Path, timeout: int) -> tuple[str, str, float]:
    csrc = work / m["id"] / "csrc"
    shutil.copytree(ROOT / "csrc", csrc)
    apply(csrc, m)
    lib = work / m["id"] / "_C_emu.so"
    start = time.time()
    build = subprocess.run([sys.executable, str(ROOT / "csrc/emu/build.py"), "--kernels", str(csrc / "cuda"),
                            "--out", str(lib)], capture_output=True, text=True)
    if build.returncode != 0:
        raise SystemExit(f"mutation {m['id']}: the mutated kernel does not build:\n{build.stdout[-3000:]}")
    env = dict(os.environ, DINOTOOLS_CUDA_EMU_LIB=str(lib))
    try:
        test = subprocess.run([sys.executable, "-m", "pytest", *TESTS], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)
        caught = test.returncode != 0
        lines = [ln for ln in test.stdout.splitlines() if ln.startswith(("FAILED", "ERROR", "E "))]
        detail = lines[0][:200] if lines else (test.stdout.strip().splitlines() or ["(no output)"])[-1][:200]
        if test.returncode < 0:
            detail = f"test process killed by signal {-test.returncode}"
    except subprocess.TimeoutExpired:
        caught, detail = True, f"tests hung past {timeout} s"
    return ("caught" if caught else "not-caught"), detail, time.time() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=ROOT / ".ci" / "cuda_emu_mutations.toml")
    ap.add_argument("--only", nargs="*", help="mutation ids to run (default: all)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per mutation's test run")
    args = ap.parse_args(argv)
    mutations = tomllib.loads(args.table.read_text())["mutation"]
    if args.only:
        mutations = [m for m in mutations if m["id"] in args.only]
    bad = 0
    with tempfile.TemporaryDirectory(prefix="cuda-emu-mutations-") as tmp:
        for m in mutations:
            got, detail, secs = run_one(m, Path(tmp), args.timeout)
            ok = got == m["expect"] or m["expect"] == "not-caught"
            verdict = "ok" if got == m["expect"] else ("UNEXPECTEDLY CAUGHT" if ok else "MISSED")
            print(f"{m['id']:32s} expect={m['expect']:10s} got={got:10s} {verdict:18s} {secs:6.0f}s  {detail}",
                  flush=True)
            bad += not ok
    print(f"cuda-emu mutations: {len(mutations) - bad}/{len(mutations)} as required")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
