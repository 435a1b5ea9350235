#include "symbolize/kallsyms.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <sstream>

namespace leakwatch::symbolize {

Kallsyms Kallsyms::Parse(std::string_view text) {
  Kallsyms k;
  std::map<std::string, uint32_t, std::less<>> module_index;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    // "<hex address> <type> <name>[\t[<module>]]"
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 + 3 > line.size() || line[sp1 + 2] != ' ') continue;
    char type = line[sp1 + 1];
    // Text symbols only: t/T (functions), w/W (weak functions).  Data symbols would claim
    // return addresses that fall past the end of the last function of a section.
    if (type != 't' && type != 'T' && type != 'w' && type != 'W') continue;
    uint64_t addr = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + sp1, addr, 16);
    if (ec != std::errc() || p != line.data() + sp1) continue;
    std::string_view rest = line.substr(sp1 + 3);
    std::string_view name = rest, module;
    if (size_t tab = rest.find('\t'); tab != std::string_view::npos) {
      name = rest.substr(0, tab);
      module = rest.substr(tab + 1);
      if (module.size() >= 2 && module.front() == '[' && module.back() == ']')
        module = module.substr(1, module.size() - 2);
    }
    // __pfx_ symbols mark the padding before a function (call-depth tracking / CFI); no
    // return address points there, and they would shadow the previous function's tail.
    if (name.empty() || name.starts_with("__pfx_")) continue;
    uint32_t mod = 0;
    if (!module.empty()) {
      auto it = module_index.find(module);
      if (it == module_index.end()) {
        it = module_index.emplace(std::string(module), static_cast<uint32_t>(k.modules_.size())).first;
        k.modules_.emplace_back(module);
      }
      mod = it->second;
    }
    k.entries_.push_back({addr, static_cast<uint32_t>(k.names_.size()), mod});
    k.names_.append(name);
    k.names_.push_back('\0');
  }
  std::stable_sort(k.entries_.begin(), k.entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.address < b.address; });
  return k;
}

Result<Kallsyms> Kallsyms::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail_errno("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  Kallsyms k = Parse(ss.str());
  if (k.entries_.empty()) return fail("{}: no function symbols", path);
  if (k.entries_.back().address == 0)
    return fail("{}: addresses are hidden (kernel.kptr_restrict; run as root)", path);
  return k;
}

std::optional<KernelSymbol> Kallsyms::resolve(uint64_t address) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), address,
                             [](uint64_t a, const Entry& e) { return a < e.address; });
  if (it == entries_.begin()) return std::nullopt;
  --it;
  if (it->address == 0) return std::nullopt;
  KernelSymbol s;
  s.function = std::string(names_.c_str() + it->name);
  s.offset = address - it->address;
  s.module = modules_[it->module];
  return s;
}

std::optional<std::pair<uint64_t, uint64_t>> Kallsyms::range(std::string_view function) const {
  for (size_t i = 0; i + 1 < entries_.size(); i++) {
    const Entry& e = entries_[i];
    if (e.module != 0 || e.address == 0 || function != std::string_view(names_.c_str() + e.name))
      continue;
    size_t next = i + 1;
    while (next < entries_.size() && entries_[next].address == e.address) next++;
    if (next == entries_.size()) return std::nullopt;
    return std::pair{e.address, entries_[next].address};
  }
  return std::nullopt;
}

}  // namespace leakwatch::symbolize
