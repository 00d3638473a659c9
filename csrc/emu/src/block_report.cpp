// How Block words its errors: thread/lane ranges grouped by what they are doing, file:line of each site.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "block.h"

namespace dt_emu {
namespace {

std::string hex(unsigned m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", m);
  return buf;
}

}  // namespace

std::string site_str(const Site& s) {
  const char* f = s.file;
  const char* last = std::strrchr(f, '/');
  if (last != nullptr) {
    const char* p = last;
    while (p > f && p[-1] != '/') --p;
    f = p;
  }
  return std::string(f) + ":" + std::to_string(s.line);
}

std::string Block::state_of(int t) const {
  const Slot& s = slots_[t];
  if (s.state == State::kExited) return "exited";
  if (s.state == State::kRunnable) return "still running";
  std::string d = "wait at " + std::string(s.req.site.what) + " " + site_str(s.req.site);
  if (!is_block_op(s.req.op)) d += " (mask " + hex(s.req.mask) + ")";
  return d;
}

// "threads 0-127 wait at __syncthreads cuda/k.cu:72; threads 128-255 have exited"
std::string Block::describe(const std::vector<int>& threads, bool lanes) const {
  std::map<std::string, std::vector<int>> groups;
  std::vector<std::string> order;
  for (int t : threads) {
    const std::string key = state_of(t);
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(lanes ? t % 32 : t);
  }
  std::string out;
  for (const std::string& key : order) {
    const std::vector<int>& ids = groups[key];
    std::string list;
    for (size_t i = 0; i < ids.size();) {
      size_t j = i;
      while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
      if (!list.empty()) list += ",";
      list += std::to_string(ids[i]) + (j > i ? "-" + std::to_string(ids[j]) : "");
      i = j + 1;
    }
    if (!out.empty()) out += "; ";
    out += (lanes ? "lanes " : "threads ") + list + " " + (key == "exited" ? "have exited" : key);
  }
  return out;
}

std::vector<int> Block::threads_of(int warp, unsigned lanes) const {
  std::vector<int> out;
  for (int l = 0; l < 32; ++l)
    if ((lanes >> l) & 1) out.push_back(warp * 32 + l);
  return out;
}

std::vector<int> Block::all_threads() const {
  std::vector<int> out(n_);
  for (int i = 0; i < n_; ++i) out[i] = i;
  return out;
}

}  // namespace dt_emu
