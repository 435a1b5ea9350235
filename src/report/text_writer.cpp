#include "report/text_writer.h"

#include <algorithm>

#include <fmt/format.h>

#include "report/frame_format.h"

namespace leakwatch::report {

namespace {

// BCC prints integers; sampled figures are integral in practice, estimates are rounded.
std::string integer(double v) { return fmt::format("{}", round_to_i64(v)); }

// Reasons and notes are free text: a newline in one would start a line BCC parsers misread.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

void append_stack(std::string& out, const Report& report, const StackReport& s,
                  const TextOptions& options) {
  const bool kernel_mode = options.kernel || report.target.kernel;
  out += fmt::format("\t{} bytes in {} allocations from stack\n", integer(s.bytes.sampled),
                     integer(s.count.sampled));
  for (const Frame& f : s.frames)
    out += fmt::format("\t\t0x{:016x}\t{}\n", f.address, bcc_symbol(f, kernel_mode));
  if (report.sampling.mode != SamplingMode::kExact) {
    out += fmt::format("\t  estimated: {} bytes in {} allocations (95% CI {}-{} bytes)\n",
                       integer(s.bytes.estimate), integer(s.count.estimate),
                       integer(s.bytes.ci_lo), integer(s.bytes.ci_hi));
  }
  if (options.show_verdicts && s.verdict != Verdict::kUnknown) {
    out += fmt::format("\t  verdict: {} (score {:.2f})", to_string(s.verdict), s.score);
    if (!s.reason.empty()) out += ": " + one_line(s.reason);
    out += '\n';
  }
}

}  // namespace

std::string write_bcc_text(const Report& report, const TextOptions& options) {
  std::string out = fmt::format("[{}] Top {} stacks with outstanding allocations:\n",
                                options.time_hhmmss, options.top);
  if (options.show_allocs) {
    // BCC lists every outstanding allocation before the stacks, not only the top ones.
    for (const StackReport& s : report.stacks)
      for (const Allocation& a : s.allocations)
        out += fmt::format("\taddr = {:x} size = {}\n", a.address, a.size);
  }
  const size_t top = static_cast<size_t>(std::max(options.top, 0));
  for (size_t i = 0; i < report.stacks.size() && i < top; ++i)
    append_stack(out, report, report.stacks[i], options);

  std::string lost;
  for (const auto& [name, value] : report.lost)
    if (value != 0) lost += fmt::format(" {}={}", name, value);
  if (!lost.empty()) out += "\tlost:" + lost + "\n";
  for (const std::string& note : report.notes) out += "\tnote: " + one_line(note) + "\n";
  return out;
}

}  // namespace leakwatch::report
