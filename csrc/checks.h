// Argument checks of topk_propagate shared by the CPU kernel and the CUDA binding.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace dinotools {

// Returns true for "circle", false for "square"; user errors are TORCH_CHECKs naming the argument.
inline bool check_topk_propagate_args(const at::Tensor& current, const at::Tensor& context,
                                      const at::Tensor& context_probs, double size, const std::string& shape,
                                      int64_t topk, double temperature) {
  TORCH_CHECK(current.dim() == 3, "topk_propagate: current must be [h,w,D], got ", current.sizes());
  TORCH_CHECK(context.dim() == 4, "topk_propagate: context must be [t,h,w,D], got ", context.sizes());
  TORCH_CHECK(context_probs.dim() == 4, "topk_propagate: context_probs must be [t,h,w,M], got ",
              context_probs.sizes());
  TORCH_CHECK(context.size(0) >= 1, "topk_propagate: context needs at least one frame");
  TORCH_CHECK(context.size(1) == current.size(0) && context.size(2) == current.size(1) &&
                  context.size(3) == current.size(2),
              "topk_propagate: context ", context.sizes(), " does not match current ", current.sizes());
  TORCH_CHECK(context_probs.size(0) == context.size(0) && context_probs.size(1) == context.size(1) &&
                  context_probs.size(2) == context.size(2),
              "topk_propagate: context_probs ", context_probs.sizes(), " does not match context ",
              context.sizes());
  TORCH_CHECK(context_probs.size(3) >= 1, "topk_propagate: context_probs needs at least one object");
  TORCH_CHECK(current.scalar_type() == context.scalar_type(), "topk_propagate: current (",
              current.scalar_type(), ") and context (", context.scalar_type(), ") must share a dtype");
  TORCH_CHECK(context_probs.scalar_type() == at::kFloat, "topk_propagate: context_probs must be float32, got ",
              context_probs.scalar_type());
  TORCH_CHECK(shape == "circle" || shape == "square", "topk_propagate: shape must be 'circle' or 'square', got '",
              shape, "'");
  TORCH_CHECK(size >= 0.0, "topk_propagate: size must be >= 0, got ", size);
  TORCH_CHECK(topk >= 1, "topk_propagate: topk must be >= 1, got ", topk);
  TORCH_CHECK(temperature > 0.0, "topk_propagate: temperature must be > 0, got ", temperature);
  TORCH_CHECK(current.device() == context.device() && context.device() == context_probs.device(),
              "topk_propagate: current, context and context_probs must be on one device");
  return shape == "circle";
}

}  // namespace dinotools
