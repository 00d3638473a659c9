// CPU kernel of dinotools::topk_propagate: windowed dot products, running top-k, fused weighted sum.
//
// Layout: features stay channels-last ([h,w,D], [t,h,w,D]) so every candidate is one contiguous
// D-vector, read in place; probabilities ([t,h,w,M]) are contiguous M-rows. The blocking of one
// work item is described in row_worker.h, the micro-kernel in dot_tile.h, the dispatch in isa.cpp.
// Threads take items in row order from a shared counter, so the two rows being worked on share
// their context rows in L3, and a thread slowed by a shared machine does not hold the others up.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "checks.h"
#include "cpu/row_worker.h"
#include "window.h"

namespace dinotools {
namespace cpu {
namespace {

std::atomic<int64_t> g_threads_used{0};

at::Tensor topk_propagate_cpu(const at::Tensor& current, const at::Tensor& context, const at::Tensor& context_probs,
                              double size, std::string shape, int64_t topk, double temperature) {
  const bool circle = check_topk_propagate_args(current, context, context_probs, size, shape, topk, temperature);
  TORCH_INTERNAL_ASSERT(current.device().is_cpu());
  TORCH_CHECK(current.scalar_type() == at::kFloat, "topk_propagate (CPU): current and context must be float32, got ",
              current.scalar_type());
  const at::Tensor cur = current.contiguous(), ctx = context.contiguous(), probs = context_probs.contiguous();
  const int64_t t = ctx.size(0), h = ctx.size(1), w = ctx.size(2), d = ctx.size(3), m = probs.size(3);
  at::Tensor out = at::empty({h, w, m}, probs.options());
  if (h * w == 0) return out;
  const Window win = make_window(h, w, size, circle);
  const Problem p{cur.data_ptr<float>(), ctx.data_ptr<float>(), probs.data_ptr<float>(), out.data_ptr<float>(),
                  t, h, w, d, m, topk, static_cast<float>(temperature), &win, &active_tiles()};
  const int64_t items = (h + ITEM_ROWS - 1) / ITEM_ROWS;
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), items));
  std::atomic<int64_t> next{0}, entered{0};
  // One index per thread; the items themselves are handed out by `next` (dynamic, in row order).
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    entered.fetch_add(1);
    Worker worker(p);
    for (int64_t item = next.fetch_add(1); item < items; item = next.fetch_add(1)) worker.run_item(item);
  });
  g_threads_used.store(entered.load());
  return out;
}

std::string cpu_isa_op() { return active_isa(); }

std::vector<std::string> cpu_isas_op(bool layout_checks) {
  int n = 0;
  const char* const* names = available_isas(&n, layout_checks);
  return std::vector<std::string>(names, names + n);
}

void cpu_set_isa_op(const std::string& name) {
  if (select_isa(name.c_str())) return;
  std::string avail;
  for (const std::string& s : cpu_isas_op(true)) avail += (avail.empty() ? "" : ", ") + s;
  TORCH_CHECK(false, "cpu_set_isa: '", name, "' is not an instruction set this CPU and build can run (", avail,
              ", or auto)");
}

// Threads that ran the most recent CPU call (a probe for tests: is torch.set_num_threads honoured).
int64_t cpu_threads_used() { return g_threads_used.load(); }

}  // namespace
}  // namespace cpu
}  // namespace dinotools

TORCH_LIBRARY_IMPL(dinotools, CPU, m) { m.impl("topk_propagate", &dinotools::cpu::topk_propagate_cpu); }

// Info ops of the CPU kernel (no tensors, so catch-all kernels): the instruction set in use and the
// choices, for `--info` and for tests that run every path; the override is applied from Python
// (dinotools/_ext.py reads DINOTOOLS_CPU_ISA through dinotools/_env.py).
TORCH_LIBRARY_FRAGMENT(dinotools, m) {
  m.def("cpu_isa() -> str", &dinotools::cpu::cpu_isa_op);
  m.def("cpu_isas(bool layout_checks=False) -> str[]", &dinotools::cpu::cpu_isas_op);
  m.def("cpu_set_isa(str name) -> ()", &dinotools::cpu::cpu_set_isa_op);
  m.def("cpu_threads_used() -> int", &dinotools::cpu::cpu_threads_used);
}
