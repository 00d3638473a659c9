// Launchers of the emulator's self-test kernels (selftest_sync.cu, selftest_memory.cu): raw
// pointers only, no torch.
#pragma once

#include <string>

namespace dt_emu_selftest {

// Each runs the named self-test: `in` holds n_in inputs, `out` room for `capacity` results (both
// in emulated device memory, i.e. host memory). Returns the first cudaError_t of its launches as an
// int (0: all launched), -1 for a name it does not know; emulation errors (divergent barrier...)
// propagate as exceptions.
int run_sync(const std::string& name, const double* in, long long n_in, double* out, long long capacity, long long arg);
int run_memory(const std::string& name, const double* in, long long n_in, double* out, long long capacity,
               long long arg);

}  // namespace dt_emu_selftest
