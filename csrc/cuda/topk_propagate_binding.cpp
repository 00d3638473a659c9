// Torch binding of the fused CUDA topk_propagate kernel: compiled into CUDA builds, and into the
// emulated extension dinotools._C_emu (tests; see dt_host.h), where it registers dinotools_emu::topk_propagate.
// No device memory is allocated besides the output and nothing is copied host-to-device: the window
// is passed as (ry, rx, r, circle) and each block derives its rows with window.h's float32 test.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>

#include <cstdint>
#include <limits>
#include <string>

#include "checks.h"
#include "cuda/dt_host.h"
#include "cuda/topk_propagate_kernel.h"
#include "window.h"

namespace dinotools {
namespace {

constexpr int kStaticSmem = 2048;  // room for the kernel's static shared memory (1024 bytes today)

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
  const int64_t t = ctx.size(0), h = ctx.size(1), w = ctx.size(2), d = ctx.size(3), m = probs.size(3);
  at::Tensor out = at::empty({h, w, m}, probs.options());
  if (h * w == 0) return out;
  // Candidate indices (tau*h + u)*w + v and the sizes are int32 in the kernel.
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  TORCH_CHECK(t * h * w <= kMax && d <= kMax && m <= kMax, "topk_propagate (CUDA): t*h*w (", t * h * w,
              "), D and M must each be < 2^31");
  const Window win = make_window(h, w, size, circle);

  const int optin = host::max_shared_memory_optin(cur);
  const size_t limit = static_cast<size_t>(std::max<int>(optin, kStaticSmem)) - kStaticSmem;
  cuda::LaunchPlan plan = cuda::plan_topk_propagate(type, static_cast<int>(d), limit);
  // Emulated tests force each plan (0..3: resident 3 stages, resident 2, streamed 3, streamed 2) at
  // any D; the launch still has to fit the emulated device's limits.
  const int forced = host::test_knob("topk_plan");
  if (forced >= 0 && forced < 4) {
    plan.resident = forced < 2, plan.stages = forced % 2 == 0 ? 3 : 2;
    plan.smem_bytes = cuda::smem_topk_propagate(type, static_cast<int>(d), plan.resident, plan.stages);
  }
  TORCH_CHECK(plan.smem_bytes > 0, "topk_propagate (CUDA): this GPU allows ", optin,
              " bytes of shared memory per block, the kernel needs at least ",
              cuda::min_smem_topk_propagate(type) + kStaticSmem);
  const cuda::PropagateArgs args{cur.data_ptr(), ctx.data_ptr(), probs.data_ptr<float>(), out.data_ptr<float>(),
                                 static_cast<int>(t), static_cast<int>(h), static_cast<int>(w), static_cast<int>(d),
                                 static_cast<int>(m), static_cast<int>(std::min<int64_t>(topk, kMax)),
                                 win.ry, win.rx, static_cast<float>(size), circle,
                                 static_cast<float>(temperature), type};
  host::test_note(std::string(plan.resident ? "resident" : "streamed") + std::to_string(plan.stages) +
                  (cuda::vector_loads_topk_propagate(args) ? " cp.async" : " scalar") + " smem=" +
                  std::to_string(plan.smem_bytes));
  const int err = cuda::launch_topk_propagate(args, plan, host::current_stream());
  TORCH_CHECK(err == 0, "topk_propagate (CUDA): kernel launch failed: ", host::error_string(err));
  return out;
}

}  // namespace
}  // namespace dinotools

TORCH_LIBRARY_IMPL(DT_HOST_LIBRARY, DT_HOST_DISPATCH_KEY, m) {
  m.impl("topk_propagate", &dinotools::topk_propagate_cuda);
}
