// Turns an emulated thread's stack overflow into a launch error instead of a dead process: while a
// fiber launch runs, SIGSEGV/SIGBUS go to a handler on an alternate stack, and a fault inside a
// fiber's guard page jumps back to the scheduler (any other fault goes to the previous handler).
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dt_emu {

struct GuardRange {
  uintptr_t lo, hi;  // [lo, hi): one fiber's guard page
};

class StackGuard {
 public:
  StackGuard();   // installs the handler and an alternate signal stack on this OS thread
  ~StackGuard();  // restores the previous ones
  StackGuard(const StackGuard&) = delete;
  StackGuard& operator=(const StackGuard&) = delete;

  // The fault handler jumps to `back` (sigsetjmp'd by the caller, value 1) when the fault lies in
  // one of `ranges`; the caller must call recovered() after landing there.
  static void watch(sigjmp_buf* back, const std::vector<GuardRange>* ranges);
  static void recovered();  // unblocks SIGSEGV/SIGBUS, which the jump out of the handler left blocked
};

}  // namespace dt_emu
