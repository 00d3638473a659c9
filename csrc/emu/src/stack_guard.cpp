// SIGSEGV/SIGBUS handler for fiber stack overflows (see stack_guard.h).
#include "stack_guard.h"

#include <signal.h>

#include <cstring>

namespace dt_emu {
namespace {

thread_local sigjmp_buf* t_back = nullptr;
thread_local const std::vector<GuardRange>* t_ranges = nullptr;
struct sigaction g_old_segv, g_old_bus;
thread_local stack_t t_old_stack;
thread_local char t_alt_stack[64 * 1024];

void on_fault(int sig, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (t_back != nullptr && t_ranges != nullptr) {
    for (const GuardRange& r : *t_ranges)
      if (addr >= r.lo && addr < r.hi) siglongjmp(*t_back, 1);
  }
  // Not an emulated thread's overflow: hand the fault back (it recurs on return) to whoever had it.
  sigaction(sig, sig == SIGSEGV ? &g_old_segv : &g_old_bus, nullptr);
}

}  // namespace

StackGuard::StackGuard() {
  stack_t alt{};
  alt.ss_sp = t_alt_stack;
  alt.ss_size = sizeof t_alt_stack;
  sigaltstack(&alt, &t_old_stack);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_old_segv);
  sigaction(SIGBUS, &sa, &g_old_bus);
}

StackGuard::~StackGuard() {
  sigaction(SIGSEGV, &g_old_segv, nullptr);
  sigaction(SIGBUS, &g_old_bus, nullptr);
  sigaltstack(&t_old_stack, nullptr);
  t_back = nullptr;
  t_ranges = nullptr;
}

void StackGuard::watch(sigjmp_buf* back, const std::vector<GuardRange>* ranges) {
  t_back = back;
  t_ranges = ranges;
}

void StackGuard::recovered() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGSEGV);
  sigaddset(&s, SIGBUS);
  pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
}

}  // namespace dt_emu
