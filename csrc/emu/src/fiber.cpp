// Fibers for the emulator. On x86-64 a hand-written switch saves the callee-saved registers and
// the FP control words (swapcontext also makes a sigprocmask system call: 2.5 us per switch on
// these machines, against ~10 ns here, and a launch switches millions of times); elsewhere the
// portable ucontext calls do the same job.
#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace dt_emu {
namespace {

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

}  // namespace
}  // namespace dt_emu

#if defined(__x86_64__)
extern "C" void dt_emu_switch(void** save_sp, void* load_sp);
extern "C" void dt_emu_fiber_entry();
// dt_emu_switch: push rbp, rbx, r12-r15 and mxcsr/x87 control word, save rsp, load the other rsp,
// pop the same. dt_emu_fiber_entry: first `ret` target of a new fiber; calls r13(r12).
asm(R"(
  .text
  .globl dt_emu_switch
  .hidden dt_emu_switch
  .type dt_emu_switch, @function
dt_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size dt_emu_switch, .-dt_emu_switch

  .globl dt_emu_fiber_entry
  .hidden dt_emu_fiber_entry
  .type dt_emu_fiber_entry, @function
dt_emu_fiber_entry:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size dt_emu_fiber_entry, .-dt_emu_fiber_entry
)");
#endif

namespace dt_emu {

Fiber::~Fiber() {
  if (stack_ != nullptr) munmap(stack_, mapped_);
#if !defined(__x86_64__)
  delete static_cast<ucontext_t*>(impl_);
#endif
}

void Fiber::start(void (*entry)(void*), void* arg, size_t stack_bytes) {
  const size_t page = page_size();
  stack_bytes = (stack_bytes + page - 1) / page * page;
  if (stack_ == nullptr || mapped_ != stack_bytes + page) {
    if (stack_ != nullptr) munmap(stack_, mapped_);
    mapped_ = stack_bytes + page;
    stack_ = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (stack_ == MAP_FAILED) {
      stack_ = nullptr;
      throw std::bad_alloc();
    }
    // Guard page below the stack (stacks grow down): an overflow faults instead of corrupting.
    mprotect(stack_, page, PROT_NONE);
  }
  char* top = static_cast<char*>(stack_) + mapped_;
#if defined(__x86_64__)
  // Frame popped by dt_emu_switch: control words, r15, r14, r13 (entry), r12 (arg), rbx, rbp,
  // return address. After `ret` rsp == top (16-byte aligned), as a `call` site needs.
  auto* frame = reinterpret_cast<uint64_t*>(top) - 8;
  uint32_t mxcsr = 0;
  uint16_t x87cw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(x87cw));
  frame[0] = static_cast<uint64_t>(mxcsr) | (static_cast<uint64_t>(x87cw) << 32);
  frame[1] = 0;                                        // r15
  frame[2] = 0;                                        // r14
  frame[3] = reinterpret_cast<uint64_t>(entry);        // r13
  frame[4] = reinterpret_cast<uint64_t>(arg);          // r12
  frame[5] = 0;                                        // rbx
  frame[6] = 0;                                        // rbp
  frame[7] = reinterpret_cast<uint64_t>(&dt_emu_fiber_entry);
  sp_ = frame;
#else
  auto* uc = static_cast<ucontext_t*>(impl_);
  if (uc == nullptr) impl_ = uc = new ucontext_t();
  getcontext(uc);
  uc->uc_stack.ss_sp = static_cast<char*>(stack_) + page;
  uc->uc_stack.ss_size = stack_bytes;
  uc->uc_link = nullptr;
  entry_ = entry;
  arg_ = arg;
  const auto bits = reinterpret_cast<uintptr_t>(this);  // makecontext passes int arguments only
  makecontext(uc, reinterpret_cast<void (*)()>(&Fiber::trampoline), 2, static_cast<unsigned>(bits >> 32),
              static_cast<unsigned>(bits & 0xffffffffu));
  (void)top;
#endif
}

void Fiber::guard(uintptr_t* lo, uintptr_t* hi) const {
  *lo = reinterpret_cast<uintptr_t>(stack_);
  *hi = *lo + page_size();
}

void Fiber::trampoline(unsigned hi, unsigned lo) {
  auto* f = reinterpret_cast<Fiber*>((static_cast<uintptr_t>(hi) << 32) | lo);
  f->entry_(f->arg_);
}

#if defined(__x86_64__)
void Fiber::resume() { dt_emu_switch(&sched_sp_, sp_); }
void Fiber::suspend() { dt_emu_switch(&sp_, sched_sp_); }
#else
void Fiber::resume() {
  ucontext_t here;
  sched_sp_ = &here;
  swapcontext(&here, static_cast<ucontext_t*>(impl_));
}
void Fiber::suspend() { swapcontext(static_cast<ucontext_t*>(impl_), static_cast<ucontext_t*>(sched_sp_)); }
#endif

}  // namespace dt_emu
