"""asv collects every module-level function (and class method) named time_*, timeraw_*, mem_*, peakmem_* or
track_* in benchmarks/ as a benchmark and calls it without arguments: a helper with such a name in a
script breaks `asv run` (CI's kernel_checks). Checked statically, without importing the scripts."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "benchmarks"
PREFIXES = ("time_", "timeraw_", "mem_", "peakmem_", "track_")


def _required_args(fn: ast.FunctionDef, method: bool) -> list:
    args = fn.args.posonlyargs + fn.args.args
    if method:
        args = args[1:]  # self
    return [a.arg for a in args[:len(args) - len(fn.args.defaults)]]


def test_no_helper_looks_like_an_asv_benchmark():
    bad = []
    for path in sorted(ROOT.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith(PREFIXES) and _required_args(node, False):
                bad.append(f"{path.name}:{node.lineno} {node.name}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bad += [f"{path.name}:{node.lineno} imports {a.asname or a.name}" for a in node.names
                        if (a.asname or a.name).startswith(PREFIXES)]
            if isinstance(node, ast.ClassDef):
                params = any(isinstance(s, ast.Assign) and any(getattr(t, "id", "") == "params" for t in s.targets)
                             for s in node.body)
                for fn in node.body:
                    if isinstance(fn, ast.FunctionDef) and fn.name.startswith(PREFIXES):
                        required = _required_args(fn, True)
                        if required and not params:  # asv passes params only when the class declares them
                            bad.append(f"{path.name}:{fn.lineno} {node.name}.{fn.name}{tuple(required)}")
    assert not bad, "asv would call these as benchmarks and fail: " + ", ".join(bad)
