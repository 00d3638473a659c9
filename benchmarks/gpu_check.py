"""Every GPU claim of dinotools measured side by side in one run; prints ONE JSON.

    bash benchmarks/gpu_check.sh [OUT.json]          # a bare GPU machine: build the extension, then this
    python benchmarks/gpu_check.py [--out F.json]     # GPU, full shapes (needs dinotools._C with CUDA)
    python benchmarks/gpu_check.py --device cpu --quick   # CI: the same code at small shapes on the CPU

Sections (each timed, with its peak GPU memory; one that raises is reported and the exit code is 1):
  env        versions, device, whether the extension has its CUDA kernels, which sm_XX it holds
  parity     fused operator on the device (fp32) vs the notebook fixtures and the CPU operator on
             fixture, generated and notebook-shape cases (tolerance 1e-5, as tests/test_ops.py);
             bf16/fp16 label agreement with fp32; all ties: one normalised bf16 vector in every
             context cell, k=1 and k=5, must give the window mean of the probabilities within 1e-6
             (exit code 1 when fp32 parity or all ties fail)
  ceilings   measured copy bandwidth and bf16/fp32 matrix-product rates (the roofline's two ceilings)
  operator   fused (fp32, bf16, fp16) vs the dense reference and the PyTorch propagator at
             60x107, t=8, D=1024, M=5 and M=255; the fused operator's fraction of its roofline
  end_to_end DINOv3 ViT-L/16 (random weights), short side 960, 854x480 frames: the engine (bf16,
             batch 8, pipelined, fused) vs the notebook-style loop (fp32, batch 1, dense reference)
  sam2       SAM 2 automatic masks (random weights) per frame through dinotools-sam2, when importable
Only the public API and the ``torch.ops.dinotools`` operator are called, so new kernels keep it valid.

GPU vs CPU parity is a tolerance, never bit-identity: device ``expf`` is within 2 ulp (CUDA programming
guide), fp32 scores are summed in another order, and bf16/fp16 tensor cores do not round the exact sum
once as the emulator (csrc/emu) does. Exact (quarter-integer) features make the scores exact everywhere,
so there the tolerance only covers the softmax and the weighted sum.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_measure as gm  # noqa: E402

SETTINGS = dict(size=12, shape="circle", topk=5, temperature=0.2)  # the notebook's defaults
FP32_TOL = 1e-5
TIES_TOL = 1e-6  # all ties: equal weights, so only the fp32 sum of the probabilities rounds
PROFILES = {  # full: the claims' shapes; quick: the same code in seconds on a CPU
    "full": dict(op=(60, 107, 8, 1024), op_m=(5, 255), warmup=3, repeats=20, clip=(854, 480), short_side=960, vit="vitl16",
                 batch=8, engine_frames=64, notebook_frames=16, sam2=("t", "l"), sam2_points=32, sam2_frames=3,
                 copy_bytes=2**31, matmul_n=8192),
    "quick": dict(op=(12, 20, 3, 64), op_m=(5, 255), warmup=1, repeats=3, clip=(160, 90), short_side=64, vit="vits16",
                  batch=2, engine_frames=4, notebook_frames=2, sam2=("t",), sam2_points=4, sam2_frames=1,
                  copy_bytes=2**25, matmul_n=256),
}
SAM2_CONFIGS = {"t": "configs/sam2.1/sam2.1_hiera_t.yaml", "l": "configs/sam2.1/sam2.1_hiera_l.yaml"}
# (name, h, w, t, D, M, size, shape, topk, temperature, features): borders, radius > frame, fractional
# and zero radius, k=1 and k above the candidates, exact ties, M=1 and M=255, non-contiguous inputs.
GENERATED = [
    ("circle", 16, 24, 3, 64, 3, 5, "circle", 5, 0.2, "normal"),
    ("fractional radius, k=1", 12, 20, 4, 32, 4, 2.5, "circle", 1, 0.05, "normal"),
    ("radius > frame", 10, 14, 2, 48, 2, 30, "square", 10, 0.7, "normal"),
    ("exact ties", 14, 18, 3, 16, 3, 4, "circle", 5, 0.2, "quantised"),
    ("k above candidates", 8, 9, 2, 8, 2, 1, "square", 1000, 0.3, "quantised"),
    ("radius 0", 8, 8, 2, 12, 3, 0, "circle", 5, 0.2, "normal"),
    ("M=1", 9, 13, 2, 16, 1, 3, "circle", 5, 0.2, "normal"),
    ("M=255", 12, 16, 2, 32, 255, 4, "circle", 5, 0.2, "normal"),
    ("t=12", 6, 9, 12, 16, 2, 5.0, "circle", 7, 0.7, "normal"),
    ("non-contiguous", 14, 19, 5, 48, 4, 4, "circle", 5, 0.2, "non-contiguous"),
]


def fused(cur, ctx, probs, **params):
    from dinotools.ops.fused import fused_propagate

    return fused_propagate(cur, ctx, probs, **params)


def on(dev, x, dtype=None, non_contiguous=False):
    """``x`` on ``dev``; non_contiguous stores it feature-first and permutes back (a strided view)."""
    if not non_contiguous:
        return x.to(dev, dtype)
    return x.movedim(-1, 0).contiguous().to(dev, dtype).movedim(0, -1)


def section_env(dev, prof, args):
    from dinotools import _ext

    info = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "device": str(dev), "profile": "quick" if args.quick else "full", "ext_loaded": _ext.HAS_EXT,
            "ext_cuda_built": _ext.CUDA_BUILT, "ext_error": _ext.LOAD_ERROR, "cpu_threads": torch.get_num_threads(),
            "load_average": os.getloadavg()[0], "build_seconds": args.build_seconds}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        info.update(gpu=p.name, capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count,
                    memory_gib=round(p.total_memory / 2**30, 1))
    so = next((ROOT / "dinotools").glob("_C*.so"), None)
    from torch.utils.cpp_extension import CUDA_HOME

    tools = [os.path.join(CUDA_HOME or "", "bin", "cuobjdump"), shutil.which("cuobjdump") or ""]
    try:  # Triton's wheel carries one where the toolkit has none
        import triton

        tools.append(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump"))
    except ImportError:
        pass
    tool = next((t for t in tools if os.path.isfile(t)), "cuobjdump")
    try:  # which machine code the extension carries (sm_80 and sm_90 are asked for)
        elf = subprocess.run([tool, "--list-elf", str(so)], capture_output=True, text=True, timeout=60).stdout
        info["ext_sm"] = sorted(set(re.findall(r"sm_\d+a?", elf)))
    except (OSError, subprocess.SubprocessError, TypeError) as exc:
        info["ext_sm"] = f"not read ({type(exc).__name__})"
    return info


def _compare(out, expected, cpu_op):
    out = out.float().cpu()
    return {"max_abs_vs_expected": (out - expected).abs().max().item(),
            "max_abs_vs_cpu_operator": (out - cpu_op).abs().max().item(),
            "labels_differ": int((out.argmax(-1) != expected.argmax(-1)).sum())}


def section_parity(dev, prof, args):
    from dinotools.ops.propagators import DensePropagator

    rows = {}
    fixture = Path(args.fixtures) / "notebook_propagate_cases.pt"
    if fixture.is_file():
        for i, c in enumerate(torch.load(fixture, weights_only=False)):
            params = {k: c[k] for k in ("size", "shape", "topk", "temperature")}
            x = [c[k] for k in ("current", "context", "context_probs")]
            rows[f"fixture {i}"] = _compare(fused(*(on(dev, v) for v in x), **params), c["expected"],
                                            fused(*x, **params))
    fixtures = str(fixture) if fixture.is_file() else f"absent ({fixture}); generated cases only"
    for i, (name, h, w, t, d, m, size, shape, topk, temp, kind) in enumerate(GENERATED):
        if kind == "quantised":
            cur, ctx = gm.quantised(h, w, d, seed=i), gm.quantised(t, h, w, d, seed=100 + i)
            probs = torch.softmax(3 * torch.randn(t, h, w, m, generator=torch.Generator().manual_seed(i)), -1)
        else:
            cur, ctx, probs = gm.video_like(h, w, t, d, m, seed=i)
        params = dict(size=size, shape=shape, topk=topk, temperature=temp)
        nc = kind == "non-contiguous"
        out = fused(on(dev, cur, None, nc), on(dev, ctx, None, nc), on(dev, probs, None, nc), **params)
        rows[name] = _compare(out, DensePropagator()(cur, ctx, probs, **params), fused(cur, ctx, probs, **params))
    worst = {k: max(r[k] for r in rows.values()) for k in ("max_abs_vs_expected", "max_abs_vs_cpu_operator")}
    result = {"fixtures": fixtures, "tolerance": FP32_TOL, "cases": rows, "worst": worst,
              "pass": max(worst.values()) <= FP32_TOL}
    # The notebook's shape, device fp32 vs the CPU operator. Quantised features make every score exact
    # (sums of quarters), so any difference is a kernel bug: this one has the pass criterion. With
    # normalised D=1024 features the two sum in different orders, and a near-tie at the k-th score can
    # flip (rarely): reported, not judged.
    h, w, t, d = prof["op"]
    probs = torch.softmax(3 * torch.randn(t, h, w, 5, generator=torch.Generator().manual_seed(5)), -1)
    exact = (gm.quantised(h, w, d, seed=5), gm.quantised(t, h, w, d, seed=6), probs)
    cur, ctx, probs = gm.video_like(h, w, t, d, 5, seed=7)
    for name, x in (("notebook_shape_exact_scores", exact), ("notebook_shape_normalised", (cur, ctx, probs))):
        ref, out = fused(*x, **SETTINGS), fused(*(on(dev, v) for v in x), **SETTINGS).cpu()
        result[name] = {"shape": [h, w, t, d, 5], "max_abs_vs_cpu_operator": (out - ref).abs().max().item(),
                        "labels_differ": int((out.argmax(-1) != ref.argmax(-1)).sum())}
    result["pass"] &= result["notebook_shape_exact_scores"]["max_abs_vs_cpu_operator"] <= FP32_TOL
    result["all_ties"] = all_ties(dev, prof)
    result["pass"] &= result["all_ties"]["pass"]
    out32 = fused(on(dev, cur), on(dev, ctx), on(dev, probs), **SETTINGS).cpu()
    from dinotools.ops.fused import FEATURE_DTYPES

    for dtype in (torch.bfloat16, torch.float16):
        native = dtype in FEATURE_DTYPES.get(dev.type, ())
        # Where the device's operator takes fp32 only, the features are rounded to dtype instead.
        x = (on(dev, cur, dtype), on(dev, ctx, dtype)) if native else (on(dev, cur.to(dtype).float()),
                                                                       on(dev, ctx.to(dtype).float()))
        out = fused(*x, on(dev, probs), **SETTINGS).cpu()
        result[str(dtype).removeprefix("torch.")] = {
            "features": "native" if native else "rounded, fp32 operator", "max_abs_vs_fp32": (out - out32).abs().max().item(),
            "label_agreement_vs_fp32": (out.argmax(-1) == out32.argmax(-1)).float().mean().item()}
    return result


def all_ties(dev, prof):
    """One random normalised bf16 vector in every context cell: every window score of a query is the
    same exact number, so the output must be the window's mean probability (equal softmax weights),
    finite, within TIES_TOL. On a GPU this decides what the emulator cannot: the tensor cores round
    each candidate's score the same in the main loop and in the tie rescan (csrc/cuda/tp_epilogue.cuh),
    else survivors go missing. Features: bf16 where the device's operator takes it, else rounded to
    bf16 and given as fp32 (the CPU), and fp32."""
    from dinotools.ops.fused import FEATURE_DTYPES
    from dinotools.ops.dense import make_neighborhood_mask

    h, w, t, d = prof["op"]
    g = torch.Generator().manual_seed(23)
    v = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0).to(torch.bfloat16)
    cur = torch.nn.functional.normalize(torch.randn(h, w, d, generator=g), dim=-1).to(torch.bfloat16)
    ctx = v.expand(t, h, w, d).contiguous()
    probs = torch.softmax(3 * torch.randn(t, h, w, 5, generator=g), -1)
    window = make_neighborhood_mask(h, w, float(SETTINGS["size"]), SETTINGS["shape"])  # [h, w, h, w]
    cells = window.flatten(2).double()  # [h, w, h*w]
    expected = torch.einsum("ijc,tcm->ijm", cells, probs.double().flatten(1, 2)) / (t * cells.sum(-1, keepdim=True))
    rows = {}
    for dtype in (torch.bfloat16, torch.float32):
        native = dtype in FEATURE_DTYPES.get(dev.type, ())
        for topk in (1, 5):
            params = dict(SETTINGS, topk=topk)
            out = fused(on(dev, cur, dtype if native else torch.float32), on(dev, ctx, dtype if native else torch.float32),
                        on(dev, probs), **params).cpu()
            rows[f"{str(dtype)[6:]} k={topk}"] = {
                "features": "native" if native else "bf16 values, fp32 operator",
                "finite": bool(torch.isfinite(out).all()),
                "max_abs_vs_window_mean": (out.double() - expected).abs().max().item()}
    ok = all(r["finite"] and r["max_abs_vs_window_mean"] <= TIES_TOL for r in rows.values())
    return {"shape": [h, w, t, d, 5], "tolerance": TIES_TOL, "cases": rows, "pass": ok}


def section_ceilings(dev, prof, args):
    return {"copy": gm.copy_bandwidth(dev, prof["copy_bytes"]),
            "matmul_bf16": gm.matmul_rate(dev, prof["matmul_n"], torch.bfloat16),
            "matmul_fp32": gm.matmul_rate(dev, prof["matmul_n"], torch.float32),
            "tf32_matmul_allowed": bool(getattr(torch.backends.cuda.matmul, "allow_tf32", False))}


def section_operator(dev, prof, args, ceilings):
    from dinotools.ops.fused import FEATURE_DTYPES
    from dinotools.ops.propagators import DensePropagator, WindowPropagator

    h, w, t, d = prof["op"]
    result = {"settings": SETTINGS}
    for m in prof["op_m"]:
        cur, ctx, probs = (x.to(dev) for x in gm.video_like(h, w, t, d, m, seed=m))
        impls = {f"fused_{n}": (fused, dt) for n, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16),
                                                         ("fp16", torch.float16)) if dt in FEATURE_DTYPES[dev.type]}
        impls.update(torch_window_fp32=(WindowPropagator(), torch.float32),
                     dense_reference_fp32=(DensePropagator(), torch.float32))
        rows = {}
        for name, (fn, dt) in impls.items():
            x = (cur.to(dt), ctx.to(dt), probs)
            if dev.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            rows[name] = gm.median_ms(lambda: fn(*x, **SETTINGS), dev, warmup=prof["warmup"],
                                        repeats=prof["repeats"])
            if dev.type == "cuda":
                rows[name]["extra_gpu_mib"] = gm.mib(torch.cuda.max_memory_allocated() - base)
            if name.startswith("fused") and ceilings:
                work = gm.window_work(h, w, t, d, m, feature_bytes=torch.finfo(dt).bits // 8, **{
                    k: SETTINGS[k] for k in ("size", "shape", "topk")})
                rate = ceilings["matmul_fp32" if dt == torch.float32 else "matmul_bf16"]["macs_per_s"]
                t_mem, t_mac = work["bytes"] / ceilings["copy"]["bytes_per_s"], work["macs"] / rate
                rows[name]["roofline"] = {**work, "floor_ms": max(t_mem, t_mac) * 1e3,
                                          "bound": "memory" if t_mem >= t_mac else "compute",
                                          "fraction": max(t_mem, t_mac) * 1e3 / rows[name]["median_ms"]}
        speed = {f"{name}_vs_{base}": rows[base]["median_ms"] / rows[name]["median_ms"]
                 for name in rows if name.startswith("fused") for base in ("dense_reference_fp32", "torch_window_fp32")}
        result[f"M={m}"] = {"shape": [h, w, t, d, m], "ms": rows, "speedup": speed}
    return result


def section_end_to_end(dev, prof, args, workdir):
    from dinotools import create_tracker
    from dinotools.io.frames import open_frames
    from dinotools.runs.job import run_job

    width, height = prof["clip"]
    warm = max(2, prof["batch"] * 2)
    n = max(prof["engine_frames"], prof["notebook_frames"], warm)
    frames_dir, mask, _ = gm.write_clip(workdir / "clip", n, width, height)
    common = dict(backbone=prof["vit"], short_side=prof["short_side"], device=str(dev))
    runs = {  # name: (backbone dtype, propagator, batch, prefetch, frames)
        "notebook_fp32_loop": ("fp32", "reference", 1, 0, prof["notebook_frames"]),
        "engine_bf16": ("bf16", "auto", prof["batch"], 2, prof["engine_frames"]),
    }
    result = {"backbone": f"{prof['vit']} (random weights)", "frame_size": [width, height],
              "short_side": prof["short_side"]}
    for name, (dtype, prop, batch, prefetch, frames) in runs.items():
        torch.manual_seed(0)
        tracker = create_tracker("label-propagation", propagator=prop, backbone_kwargs={"weights": "random",
                                                                                          "dtype": dtype}, **common)
        for i, count in enumerate((warm, frames)):  # a warm-up run first: cuDNN/kernel choice, allocations
            out = workdir / f"{name}-{i}"
            out.mkdir()
            gm.sync(dev)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            rep = run_job(tracker, gm.Head(open_frames(frames_dir), count), {0: mask}, out, batch_size=batch,
                          prefetch=prefetch, progress=False).summary()
            gm.sync(dev)
            wall = time.perf_counter() - t0
        result[name] = {"dtype": dtype, "propagator": prop, "batch": batch, "prefetch": prefetch, "frames": frames,
                        "seconds": wall, "fps": frames / wall, "stage_seconds": rep["stage_seconds"],
                        "peak_gpu_mib": gm.mib(torch.cuda.max_memory_allocated()) if dev.type == "cuda" else None}
        del tracker
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    result["speedup_fps"] = result["engine_bf16"]["fps"] / result["notebook_fp32_loop"]["fps"]
    return result


def section_sam2(dev, prof, args, workdir):
    try:
        import sam2.automatic_mask_generator  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - not installed, or built for another torch
        return {"skipped": f"sam2 not importable ({type(exc).__name__}: {exc})"}
    try:
        from dinotools_sam2 import Sam2AutomaticInitializer
    except ImportError:  # plugin not installed: its source tree
        sys.path.insert(0, str(ROOT / "plugins" / "dinotools-sam2" / "src"))
        from dinotools_sam2 import Sam2AutomaticInitializer
    width, height = prof["clip"]
    _, _, frames = gm.write_clip(workdir / "sam2-clip", prof["sam2_frames"] + 1, width, height, seed=1)
    # Thresholds 0 keep every proposal a random model makes: post-processing at its most expensive.
    result = {"points_per_side": prof["sam2_points"], "frame_size": [width, height], "thresholds": 0}
    for key in prof["sam2"]:
        torch.manual_seed(0)
        init = Sam2AutomaticInitializer(config=SAM2_CONFIGS[key], random_weights=True, device=str(dev),
                                        points_per_side=prof["sam2_points"], pred_iou_thresh=0.0,
                                        stability_score_thresh=0.0)
        objects = []

        def one():
            objects.append(int(init.segment(frames[len(objects) % len(frames)]).max()))

        result[SAM2_CONFIGS[key].rsplit("/", 1)[-1]] = {**gm.median_ms(one, dev, warmup=1,
                                                                         repeats=prof["sam2_frames"]),
                                                       "objects": objects[1:]}
        del init
    return result


def ceilings_or_none(report):
    """The measured ceilings, or None when that section did not run or failed (no roofline then)."""
    ceilings = report.get("ceilings")
    return None if not ceilings or "error" in ceilings else ceilings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small shapes (seconds on a CPU)")
    ap.add_argument("--fixtures", default=str(ROOT.parent / "shared" / "fixtures"),
                    help="folder with notebook_propagate_cases.pt (default ../shared/fixtures)")
    ap.add_argument("--sections", default="env,parity,ceilings,operator,end_to_end,sam2")
    ap.add_argument("--build-seconds", type=float, default=None, help="recorded in env (gpu_check.sh passes it)")
    ap.add_argument("--out", help="also write the JSON to this file")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no GPU (use --device cpu --quick for the CPU check)", file=sys.stderr)
        return 2
    prof = PROFILES["quick" if args.quick else "full"]
    report, failed, t_all = {}, [], time.perf_counter()
    # No inference_mode around it all: a model built inside one holds inference tensors, which the
    # backbone's caches cannot version; inputs never require grad, and the tracker manages its own mode.
    with tempfile.TemporaryDirectory(prefix="dinotools-gpu-check-") as tmp:
        steps = {"env": lambda: section_env(dev, prof, args), "parity": lambda: section_parity(dev, prof, args),
                 "ceilings": lambda: section_ceilings(dev, prof, args),
                 "operator": lambda: section_operator(dev, prof, args, ceilings_or_none(report)),
                 "end_to_end": lambda: section_end_to_end(dev, prof, args, Path(tmp)),
                 "sam2": lambda: section_sam2(dev, prof, args, Path(tmp))}
        for name in args.sections.split(","):
            print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            try:
                report[name] = steps[name]()
            except Exception as exc:  # noqa: BLE001 - one broken claim must not hide the others
                traceback.print_exc()
                report[name], failed = {"error": f"{type(exc).__name__}: {exc}"}, failed + [name]
            report[name]["section_seconds"] = time.perf_counter() - t0
            if dev.type == "cuda":
                report[name]["section_peak_gpu_mib"] = gm.mib(torch.cuda.max_memory_allocated())
    parity_ok = report.get("parity", {}).get("pass", True)
    report["summary"] = {"seconds": time.perf_counter() - t_all, "failed_sections": failed, "parity_pass": parity_ok,
                         "peak_gpu_mib": max((s.get("section_peak_gpu_mib") or 0 for s in report.values()), default=0)}
    text = gm.compact_json(gm.rounded(report))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 1 if failed or not parity_ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
