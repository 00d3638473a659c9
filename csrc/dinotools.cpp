// Module entry point and operator schemas of dinotools._C.
// Importing dinotools._C only runs the static registrars below (no pybind11, abi3-friendly).
#include <Python.h>
#include <torch/library.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(dinotools, m) {
  // Whether this build compiled the CUDA kernels (answers without needing a GPU).
  m.def("cuda_built() -> bool", +[]() -> bool {
#ifdef DINOTOOLS_WITH_CUDA
    return true;
#else
    return false;
#endif
  });
}
