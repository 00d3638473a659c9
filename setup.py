"""Build dinotools and its compiled operator ``dinotools._C``.

The CPU operator is always built; the CUDA one when a CUDA-enabled torch and nvcc are found.
Environment: DINOTOOLS_FORCE_CUDA=1 builds CUDA regardless of detection, DINOTOOLS_NO_CUDA=1
skips it, DINOTOOLS_NO_EXT=1 installs pure Python (the PyTorch propagator is used), DEBUG=1
compiles with -O0 -g.
"""
import glob
import os
import runpy
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
COMPONENTS = runpy.run_path(os.path.join(HERE, "dinotools", "registry", "builtins.py"))


def flag(name):
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


# The CUDA kernel needs sm_80+ (cp.async, bf16 mma.sync); torch's names for older generations.
OLD_ARCH_NAMES = ("Kepler", "Maxwell", "Pascal", "Volta", "Turing")


def refuse_old_cuda_archs(torch):
    """Stop the build, naming the supported archs, when it would compile for compute capability < 8.0
    (TORCH_CUDA_ARCH_LIST, or the visible GPUs torch builds for without it): nvcc would fail later with
    a ptxas error about cp.async (csrc/cuda/topk_propagate_kernel.cu has an #error as a backstop)."""
    listed = os.environ.get("TORCH_CUDA_ARCH_LIST", "").replace(",", ";").replace(" ", ";")
    archs = [a for a in listed.split(";") if a]
    if not archs and torch.cuda.is_available():
        caps = (torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count()))
        archs = [f"{major}.{minor}" for major, minor in caps]
    # "8.6+PTX", "9.0a", "10.0f": the number before any suffix
    old = [a for a in archs
           if a.startswith(OLD_ARCH_NAMES) or (a[:1].isdigit() and float(a.split("+")[0].rstrip("af")) < 8.0)]
    if old:
        raise SystemExit(
            f"dinotools: the CUDA kernel needs compute capability 8.0 or newer (cp.async, bf16 mma.sync); "
            f"this build's archs include {', '.join(old)} (TORCH_CUDA_ARCH_LIST={listed or 'unset: the visible GPUs'}). "
            f"Build for 8.0, 8.6, 8.7, 8.9, 9.0 or later, e.g. TORCH_CUDA_ARCH_LIST=\"8.0;9.0\", or set "
            f"DINOTOOLS_NO_CUDA=1 to build the CPU operator only.")


def extensions():
    if flag("DINOTOOLS_NO_EXT"):
        print("dinotools: DINOTOOLS_NO_EXT=1, building no compiled operator")
        return [], {}
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    debug = flag("DEBUG")
    cuda_found = torch.version.cuda is not None and CUDA_HOME is not None
    use_cuda = not flag("DINOTOOLS_NO_CUDA") and (flag("DINOTOOLS_FORCE_CUDA") or cuda_found)
    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    cxx = ["-O0", "-g"] if debug else ["-O3"]
    # OpenMP: without it at::parallel_for in the CPU kernel compiles to a serial loop. The extension
    # binds to the libgomp torch already loaded (same soname), so torch.set_num_threads applies.
    openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
    cxx += openmp
    macros = []
    if use_cuda:
        refuse_old_cuda_archs(torch)
        sources += sorted(glob.glob("csrc/cuda/*.cu") + glob.glob("csrc/cuda/*.cpp"))
        macros.append(("DINOTOOLS_WITH_CUDA", None))
    ext_cls = CUDAExtension if use_cuda else CppExtension
    extra = {"cxx": cxx}
    if use_cuda:
        # One flag set for this build and .ci/kernel_checks.sh. No --use_fast_math: it would turn sqrtf
        # into an approximation, and the window test must decide border cells as csrc/window.h does on
        # the CPU. It does not make the softmax round like the CPU kernel's: device expf is within 2 ulp
        # (CUDA programming guide), and bf16/fp16 tensor-core sums round differently too, so GPU vs CPU
        # results agree to a tolerance (benchmarks/gpu_check.py), not bit for bit.
        with open(os.path.join(HERE, "csrc", "cuda", "nvcc_flags.txt")) as f:
            nvcc = f.read().split()
        extra["nvcc"] = ["-O0", "-g"] if debug else nvcc
    print(
        f"dinotools build: torch {torch.__version__}, cuda torch={torch.version.cuda}, CUDA_HOME={CUDA_HOME}, "
        f"building CUDA={use_cuda}, debug={debug}, openmp={bool(openmp)}, sources={sources}"
    )
    ext = ext_cls("dinotools._C", sources, extra_compile_args=extra, extra_link_args=openmp, define_macros=macros,
                  include_dirs=[os.path.join(HERE, "csrc")])
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = extensions()

setup(
    name="dinotools",
    version="0.1.0",
    description="Segment and track every object in a video by propagating masks through DINOv3 features",
    long_description=open(os.path.join(HERE, "README.md")).read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["dinotools", "dinotools.*"]),
    install_requires=["torch>=2.4", "numpy>=1.23", "pillow>=9.0", "opencv-python-headless>=4.7", "tqdm>=4.60",
                      "jsonschema>=4.18"],  # the JSON files dinotools reads are checked against schemas
    extras_require={
        "dev": ["pytest>=7", "pytest-timeout>=2.1",  # a hung test fails with its stack, never wedges CI
                "import-linter>=2.1",  # the layer contracts (pyproject.toml [tool.importlinter])
                "build>=1.0",  # .ci/wheel.sh builds the sdist
                "asv>=0.6", "ninja", "safetensors>=0.4",  # safetensors: HF-format loading tests
                "pycocotools>=2.0.6",  # the coco export's tests
                "ray>=2.9"],  # the batch runner's Ray engine tests (under CI=true they must run)
        "coco": ["pycocotools>=2.0.6"],  # --format coco, dinotools.io.coco
        "hf": ["safetensors>=0.4", "huggingface_hub>=0.20"],
        "ray": ["ray>=2.9"],  # python -m dinotools.batch --engine ray
    },
    entry_points={
        # one console script per `python -m dinotools.X` command (same arguments, same exit codes)
        "console_scripts": [f"{script} = dinotools.commands.{module}:entry" for script, module in (
            ("dinotools", "run"), ("dinotools-run", "run"), ("dinotools-points", "points"),
            ("dinotools-batch", "batch"), ("dinotools-eval", "eval"), ("dinotools-convert", "convert"))],
        **COMPONENTS["entry_points"](),
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
