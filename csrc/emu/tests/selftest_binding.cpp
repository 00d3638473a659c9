// torch op running the emulator's self-test kernels: dinotools_emu::selftest (tests/test_cuda_emu.py).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <string>

#include "selftest_kernels.h"

namespace {

// input: float64 values for the test; returns float64 [1 + capacity]: [0] the cudaError_t of the
// launches, then the results (NaN where the test wrote nothing).
at::Tensor selftest(std::string name, const at::Tensor& input, int64_t arg) {
  const at::Tensor in = input.to(at::kDouble).contiguous();
  const int64_t capacity = std::max<int64_t>(8192, 4 * in.numel());
  at::Tensor out = at::full({1 + capacity}, std::numeric_limits<double>::quiet_NaN(), in.options());
  double* o = out.data_ptr<double>();
  int err = dt_emu_selftest::run_sync(name, in.data_ptr<double>(), in.numel(), o + 1, capacity, arg);
  if (err == -1) err = dt_emu_selftest::run_memory(name, in.data_ptr<double>(), in.numel(), o + 1, capacity, arg);
  TORCH_CHECK(err != -1, "selftest: unknown test '", name, "'");
  o[0] = err;
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dinotools_emu, m) {
  m.def("selftest(str name, Tensor input, int arg=0) -> Tensor", &selftest);
}
