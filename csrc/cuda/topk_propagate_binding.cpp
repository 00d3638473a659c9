// Torch binding of the CUDA topk_propagate kernels: compiled into CUDA builds, and into the emulated
// extension dinotools._C_emu (tests; see dt_host.h) where it registers dinotools_emu::topk_propagate.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <limits>
#include <string>

#include "checks.h"
#include "cuda/dt_host.h"
#include "cuda/topk_propagate_kernel.h"
#include "window.h"

namespace dinotools {
namespace {

at::Tensor topk_propagate_cuda(const at::Tensor& current, const at::Tensor& context, const at::Tensor& context_probs,
                               double size, std::string shape, int64_t topk, double temperature) {
  const bool circle = check_topk_propagate_args(current, context, context_probs, size, shape, topk, temperature);
  TORCH_INTERNAL_ASSERT(host::on_device(current));
  cuda::FeatureType type = cuda::FeatureType::kFloat32;
  if (current.scalar_type() == at::kHalf) {
    type = cuda::FeatureType::kFloat16;
  } else if (current.scalar_type() == at::kBFloat16) {
    type = cuda::FeatureType::kBFloat16;
  } else {
    TORCH_CHECK(current.scalar_type() == at::kFloat, "topk_propagate (CUDA): features must be float32, float16 or "
                "bfloat16, got ", current.scalar_type());
  }
  const host::DeviceGuard guard(current.device());
  const at::Tensor cur = current.contiguous(), ctx = context.contiguous(), probs = context_probs.contiguous();
  const int64_t t = ctx.size(0), h = ctx.size(1), w = ctx.size(2), m = probs.size(3);
  at::Tensor out = at::empty({h, w, m}, probs.options());
  if (h * w == 0) return out;
  const Window win = make_window(h, w, size, circle);
  const auto ints = at::TensorOptions().dtype(at::kInt);
  const at::Tensor half = at::tensor(win.half, ints).to(cur.device());
  const at::Tensor start = at::tensor(win.start, ints).to(cur.device());
  // [h*w, t, K] scores: O(window) scratch; slots outside the frame keep -inf.
  at::Tensor scores = at::full({h * w, t * win.count}, -std::numeric_limits<float>::infinity(), probs.options());

  cuda::PropagateArgs args{cur.data_ptr(), ctx.data_ptr(), probs.data_ptr<float>(), out.data_ptr<float>(),
                           scores.data_ptr<float>(), half.data_ptr<int>(), start.data_ptr<int>(),
                           t, h, w, ctx.size(3), m, topk, win.ry, win.count,
                           static_cast<float>(temperature), type};
  const int err = cuda::launch_topk_propagate(args, host::current_stream());
  TORCH_CHECK(err == 0, "topk_propagate (CUDA): kernel launch failed: ", host::error_string(err));
  return out;
}

}  // namespace
}  // namespace dinotools

TORCH_LIBRARY_IMPL(DT_HOST_LIBRARY, DT_HOST_DISPATCH_KEY, m) { m.impl("topk_propagate", &dinotools::topk_propagate_cuda); }
