#include "tracker/frame_resolver.h"

#include <functional>

#include "common/procfs.h"

namespace leakwatch::tracker {

symbolize::ProcessSymbolizer* SymbolizingResolver::symbolizer_for(uint32_t tgid) {
  auto it = symbolizers_.find(tgid);
  if (it != symbolizers_.end()) return it->second.get();
  auto s = symbolize::ProcessSymbolizer::Create(static_cast<int>(tgid));
  if (!s) return nullptr;
  return symbolizers_.emplace(tgid, std::move(*s)).first->second.get();
}

void SymbolizingResolver::snapshot(uint32_t tgid) {
  auto it = symbolizers_.find(tgid);
  if (it == symbolizers_.end()) {
    symbolizer_for(tgid);
    return;
  }
  (void)it->second->refresh();
}

void SymbolizingResolver::follow(uint32_t tgid) {
  auto text = read_proc_file("/proc/" + std::to_string(tgid) + "/maps", maps_buf_);
  if (!text) return;  // gone: the last snapshot stays
  const size_t h = std::hash<std::string_view>{}(*text);
  auto [it, first] = maps_hash_.try_emplace(tgid, h);
  if (!first && it->second == h) return;
  it->second = h;
  snapshot(tgid);
}

std::vector<report::Frame> SymbolizingResolver::resolve(uint32_t tgid,
                                                        const std::vector<uint64_t>& ips) {
  std::vector<report::Frame> frames;
  symbolize::ProcessSymbolizer* sym = symbolizer_for(tgid);
  for (uint64_t ip : ips) {
    report::Frame f;
    f.address = ip;
    if (sym) {
      symbolize::Symbol s = sym->symbolize(ip);
      f.function = s.function;
      f.offset = s.offset;
      f.module = s.module;
      f.module_path = s.module_path;
      f.build_id = s.build_id;
      f.module_offset = s.module_offset;
      f.file = s.file;
      f.line = s.line;
    }
    frames.push_back(std::move(f));
  }
  return frames;
}

}  // namespace leakwatch::tracker
