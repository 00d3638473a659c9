#!/usr/bin/env bash
# Emulated CUDA checks (issue 11): builds dinotools._C_emu from csrc/cuda/*.cu with g++ against the
# emulator of csrc/emu (no nvcc, no GPU), runs the emulator's self-tests and the operator tests on
# the cuda-emu device (three schedules), and fails on any failure or skip.
#   bash .ci/cuda_emu.sh               build + tests
#   bash .ci/cuda_emu.sh --mutations   also the mutation check (.ci/cuda_emu_mutations.toml)
# Needs the active Python to have torch, pytest, numpy and ninja (the `dev` extra).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python}"

start=$SECONDS
echo "== cuda-emu: build dinotools._C_emu (csrc/emu/build.py)"
"$PY" csrc/emu/build.py
echo "== cuda-emu: built in $((SECONDS - start)) s"

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
tests_start=$SECONDS
"$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_emu.py tests/test_ops.py tests/test_cuda_kernel.py --junitxml="$report"
# Skips are failures here: every emulated test must run (xfails, the known kernel bugs, are fine).
"$PY" - "$report" <<'PYEOF'
import sys
import xml.etree.ElementTree as ET

skipped = [(case.get("classname", "") + "::" + case.get("name", ""), s.get("message", ""))
           for case in ET.parse(sys.argv[1]).iter("testcase") for s in case.findall("skipped")
           if s.get("type") != "pytest.xfail"]
for name, why in skipped:
    print(f"cuda-emu: skipped (not allowed here): {name}: {why}")
sys.exit(1 if skipped else 0)
PYEOF
# Issue 23: which launch plans ran on which device model and dtype (tests/test_cuda_kernel.py ids).
"$PY" - "$report" <<'PYEOF'
import re
import sys
import xml.etree.ElementTree as ET

ran = {}
for case in ET.parse(sys.argv[1]).iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None or case.find("skipped") is not None:
        continue
    m = re.search(r"cuda-emu-(sm_\d+)-(\w+?)-D(\d+)-(\w+?\d)", case.get("name", ""))  # picked by the device
    f = re.search(r"cuda-emu-(\w+?\d)-(sm_\d+)-([a-z0-9]+)(-refused)?\]", case.get("name", ""))  # forced
    if m:
        ran.setdefault((m[4], m[1], m[2]), set()).add("D" + m[3])
    elif f:
        ran.setdefault((f[1], f[2], f[3]), set()).add("forced" if not f[4] else "forced:refused(too-big)")
print("cuda-emu launch plans passed (plan, device, dtype: picked at D / forced):")
for (plan, dev, dtype), how in sorted(ran.items()):
    print(f"  {plan:<10} {dev}  {dtype:<9} {' '.join(sorted(how, key=lambda x: (len(x), x)))}")
PYEOF
echo "== cuda-emu: tests passed in $((SECONDS - tests_start)) s"

if [[ "${1:-}" == "--mutations" ]]; then
  echo "== cuda-emu: mutation check"
  "$PY" .ci/cuda_emu_mutations.py
fi
echo "cuda_emu: OK ($((SECONDS - start)) s)"
