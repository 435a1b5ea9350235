#include "common/log.h"

#include <atomic>

namespace leakwatch::log {
namespace {
std::atomic<Level> g_level{Level::kWarn};
}

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void write(Level l, const std::string& msg) {
  static constexpr const char* kNames[] = {"error", "warning", "info", "debug"};
  std::fprintf(stderr, "leakwatch: %s%s%s\n", l == Level::kInfo ? "" : kNames[static_cast<int>(l)],
               l == Level::kInfo ? "" : ": ", msg.c_str());
}

}  // namespace leakwatch::log
