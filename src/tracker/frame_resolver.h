// FrameResolver backed by one ProcessSymbolizer per traced process.  Symbolizers are kept
// after their process exits, so late reports of short-lived processes stay symbolized.
//
// Thread-safety: not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "symbolize/symbolizer.h"
#include "tracker/tracker.h"

namespace leakwatch::tracker {

class SymbolizingResolver : public FrameResolver {
 public:
  std::vector<report::Frame> resolve(uint32_t tgid, const std::vector<uint64_t>& ips) override;

  // Reads the process's maps now (e.g. just before it exits); creates its symbolizer.
  void snapshot(uint32_t tgid);
  // Reads them again only when they changed since the last call: called every second or so,
  // a library loaded between two reports and unloaded before the next keeps its name.
  void follow(uint32_t tgid);

 private:
  symbolize::ProcessSymbolizer* symbolizer_for(uint32_t tgid);
  std::map<uint32_t, std::unique_ptr<symbolize::ProcessSymbolizer>> symbolizers_;
  std::map<uint32_t, size_t> maps_hash_;  // of the maps text at the last follow()
  std::string maps_buf_;
};

}  // namespace leakwatch::tracker
