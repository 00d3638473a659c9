// Module entry point of dinotools._C and the schemas of its operators.
// Importing dinotools._C only runs the static registrars (no pybind11, abi3-friendly).
#include <Python.h>
#include <torch/library.h>

#include "schema.h"

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(dinotools, m) {
  // current [h,w,D], context [t,h,w,D], context_probs [t,h,w,M] -> [h,w,M] float32: the notebook's
  // propagate restricted to the size/shape neighbourhood, joint top-k over all t frames with ties
  // to the k-th value kept, softmax(sim / temperature) over the survivors, rows renormalised.
  // Kernels: CPU (csrc/cpu), CUDA (csrc/cuda, CUDA builds only); fake kernel in dinotools/ops/fused.py.
  m.def(DINOTOOLS_TOPK_PROPAGATE_SCHEMA);
  // Whether this build compiled the CUDA kernels (answers without needing a GPU).
  m.def("cuda_built() -> bool", +[]() -> bool {
#ifdef DINOTOOLS_WITH_CUDA
    return true;
#else
    return false;
#endif
  });
}
