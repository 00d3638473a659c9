// The shared-memory arena of the running launch: NaN-poisoned at every block start, each
// allocation (the dynamic region and every DT_SHARED) fenced by guard bytes checked at block end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "../runtime.h"

namespace dt_emu {

class Arena {
 public:
  static constexpr unsigned char kPoison = 0xff;  // NaN in fp32/fp16/bf16/fp64, -1 in integers
  static constexpr size_t kGuard = 256;           // guard bytes after every allocation
  static constexpr size_t kAlign = 128;

  Arena();
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // A new launch with `dynamic` bytes of dynamic shared memory; static allocations are placed as
  // the kernel first reaches them.
  void begin_launch(size_t dynamic);
  void begin_block();  // poison every byte placed so far (allocations and guards)
  // Address of the site's static allocation in this launch, placing (and poisoning) it on first use;
  // *placed_total: the static bytes after this placement, 0 when the site was placed before.
  // nullptr when the arena is full.
  void* place(SharedSite* site, size_t* placed_total);
  void* dynamic(SharedSite* site);
  size_t static_bytes() const { return static_bytes_; }
  size_t dynamic_bytes() const { return dynamic_; }
  // "" when every guard byte is intact, else which allocation was overrun and by how much.
  std::string check_guards() const;

 private:
  struct Alloc {
    const SharedSite* site;
    size_t offset, size;
  };
  unsigned char* base_ = nullptr;
  size_t capacity_ = 0;
  size_t dynamic_ = 0;
  size_t top_ = 0;  // end of the last allocation's guard
  size_t static_bytes_ = 0;
  uint64_t epoch_ = 0;
  const SharedSite* dynamic_site_ = nullptr;
  SharedSite unnamed_dynamic_{"", 0, "dynamic shared memory", 0, 16, 0, 0};
  std::vector<Alloc> allocs_;  // allocs_[0]: the dynamic region
  std::mutex mu_;              // placement from concurrent OS threads (thread mode)
};

}  // namespace dt_emu
