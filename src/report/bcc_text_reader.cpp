#include "report/bcc_text_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <vector>

#include <fmt/format.h>

namespace leakwatch::report {

namespace {

constexpr std::string_view kHeaderTail = " stacks with outstanding allocations:";

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

bool starts_with_space(std::string_view line) {
  return !line.empty() && (line[0] == ' ' || line[0] == '\t');
}

std::optional<uint64_t> parse_u64(std::string_view s, int base = 10) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Splits off the first whitespace-separated token.
std::string_view next_token(std::string_view& s) {
  s = trim(s);
  size_t e = s.find_first_of(" \t");
  std::string_view tok = s.substr(0, e);
  s = e == std::string_view::npos ? std::string_view{} : trim(s.substr(e));
  return tok;
}

// "[11:16:33] Top 10 stacks with outstanding allocations:" -> "11:16:33".  libbpf-tools
// forks print other time formats inside the brackets; anything bracketed is accepted.
std::optional<std::string_view> header_time(std::string_view line) {
  line = trim(line);
  if (line.empty() || line[0] != '[') return std::nullopt;
  size_t close = line.find(']');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(close + 1);
  if (!rest.starts_with(" Top ") || !rest.ends_with(kHeaderTail)) return std::nullopt;
  return line.substr(1, close - 1);
}

// "80 bytes in 5 allocations from stack" (also "... from user stack").
std::optional<std::pair<uint64_t, uint64_t>> count_line(std::string_view line) {
  std::string_view s = trim(line);
  std::string_view bytes = next_token(s);
  if (next_token(s) != "bytes" || next_token(s) != "in") return std::nullopt;
  std::string_view count = next_token(s);
  if (next_token(s) != "allocations" || next_token(s) != "from") return std::nullopt;
  if (s != "stack" && s != "user stack") return std::nullopt;
  auto b = parse_u64(bytes);
  auto c = parse_u64(count);
  if (!b || !c) return std::nullopt;
  return std::pair{*b, *c};
}

// "addr = 948cd0 size = 16" (BCC) or "addr = 0x948cd0 size = 16" (libbpf-tools).
std::optional<Allocation> addr_line(std::string_view line) {
  std::string_view s = trim(line);
  if (next_token(s) != "addr" || next_token(s) != "=") return std::nullopt;
  std::string_view addr = next_token(s);
  if (next_token(s) != "size" || next_token(s) != "=") return std::nullopt;
  if (addr.starts_with("0x") || addr.starts_with("0X")) addr.remove_prefix(2);
  auto a = parse_u64(addr, 16);
  auto z = parse_u64(trim(s));
  if (!a || !z) return std::nullopt;
  return Allocation{*a, *z, 0};
}

// "function+0xoff [module]", "function [module]", "function+0xoff", "[unknown]",
// "[unknown] [module]", "<null sym>".
void parse_symbol(std::string_view sym, Frame& f) {
  sym = trim(sym);
  std::string_view name = sym;
  if (sym.ends_with(']')) {
    size_t open = sym.rfind(" [");
    if (open != std::string_view::npos) {
      std::string_view module = sym.substr(open + 2, sym.size() - open - 3);
      f.module = module == "kernel" ? "[kernel]" : std::string(module);
      name = trim(sym.substr(0, open));
    }
  }
  if (name == "[unknown]" || name == "<null sym>" || name.empty()) return;
  size_t plus = name.rfind("+0x");
  if (plus != std::string_view::npos && plus > 0) {
    if (auto off = parse_u64(name.substr(plus + 3), 16)) {
      f.offset = *off;
      name = name.substr(0, plus);
    }
  }
  f.function = std::string(name);
}

// Whether a frame line's address column is broken ("0xZZZ", a libbpf-tools "[<...>]"
// without hex digits): such a line is a damaged file, not a frame.
bool bad_frame_address(std::string_view line) {
  std::string_view s = trim(line);
  if (s.starts_with("0x")) {
    size_t end = s.find_first_of(" \t");
    return !parse_u64(s.substr(2, end == std::string_view::npos ? end : end - 2), 16);
  }
  size_t lt = s.find(" [<");
  if (lt != std::string_view::npos && parse_u64(s.substr(0, lt))) {
    size_t gt = s.find(">]", lt);
    return gt == std::string_view::npos || !parse_u64(s.substr(lt + 3, gt - lt - 3), 16);
  }
  return false;
}

// A line that means to be a stack's count line ("N bytes in M allocations from stack") or
// an allocation line ("addr = A size = S") but whose figures do not parse.
bool looks_like_count_line(std::string_view s) {
  return s.find(" bytes in ") != std::string_view::npos &&
         s.find(" allocations from") != std::string_view::npos;
}

Frame parse_frame(std::string_view line) {
  Frame f;
  std::string_view s = trim(line);
  // libbpf-tools: "0 [<000055d0c1a2b1c9>] main+0x19 [app]"
  size_t lt = s.find(" [<");
  if (lt != std::string_view::npos && parse_u64(s.substr(0, lt))) {
    size_t gt = s.find(">]", lt);
    if (gt != std::string_view::npos) {
      if (auto a = parse_u64(s.substr(lt + 3, gt - lt - 3), 16)) {
        f.address = *a;
        parse_symbol(s.substr(gt + 2), f);
        return f;
      }
    }
  }
  // BCC with the address column: "0x00007f45c6a6f3b6\tmain+0x6d [allocs]"
  if (s.starts_with("0x")) {
    size_t end = s.find_first_of(" \t");
    if (auto a = parse_u64(s.substr(2, end == std::string_view::npos ? end : end - 2), 16)) {
      f.address = *a;
      if (end != std::string_view::npos) parse_symbol(s.substr(end), f);
      return f;
    }
  }
  parse_symbol(s, f);
  return f;
}

// 95% interval of a Horvitz-Thompson total from `k` sampled calls with inclusion
// probability 1/n, each of size total/k: Var = n(n-1) * sum(x^2) = n(n-1) * total^2 / k.
Estimate scaled(uint64_t sampled, uint64_t k, uint64_t n) {
  Estimate e;
  e.sampled = static_cast<double>(sampled);
  e.estimate = e.sampled * static_cast<double>(n);
  e.ci_lo = e.ci_hi = e.estimate;
  if (n > 1 && k > 0) {
    double nn = static_cast<double>(n);
    double half = 1.96 * std::sqrt(nn * (nn - 1) / static_cast<double>(k)) * e.sampled;
    e.ci_lo = std::max(e.sampled, e.estimate - half);  // what was seen is a lower bound
    e.ci_hi = e.estimate + half;
  }
  return e;
}

}  // namespace

Result<Report> read_bcc_text(std::string_view text, uint64_t sample_rate) {
  if (sample_rate == 0) return fail("BCC text: the sample rate must be at least 1");

  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos <= text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }

  Report r;
  r.sampling.mode = sample_rate > 1 ? SamplingMode::kCalls : SamplingMode::kExact;
  r.sampling.rate = sample_rate;

  // The last report block, and the attach line that precedes it.
  std::optional<size_t> header;
  std::string_view time;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (auto t = header_time(lines[i])) {
      header = i;
      time = *t;
    }
  }
  if (!header)
    return fail("BCC text: no \"[HH:MM:SS] Top N stacks with outstanding allocations:\" "
                "line found; is this BCC memleak output?");
  for (size_t i = 0; i < *header; ++i) {
    std::string_view s = trim(lines[i]);
    if (s.starts_with("Attaching to kernel allocators")) {
      r.target = Target{};
      r.target.kernel = true;
    } else if (s.starts_with("Attaching to pid ")) {
      std::string_view rest = s.substr(17);
      rest = rest.substr(0, rest.find_first_of(", "));
      if (auto pid = parse_u64(rest)) {
        r.target = Target{};
        r.target.pid = static_cast<int>(*pid);
      }
    }
  }

  struct Raw {
    StackReport stack;
    uint64_t bytes = 0, count = 0;
  };
  std::vector<Raw> raws;
  size_t unattributed_allocs = 0;
  bool in_stack = false;
  // Lines of the report block that are damaged (figures or addresses that do not parse, an
  // indented line outside any stack): the first is named in the error, all are counted.
  size_t malformed = 0;
  std::string first_malformed;
  auto reject = [&](size_t i, std::string_view what) {
    if (malformed++ == 0)
      first_malformed = fmt::format("line {}: {}: \"{}\"", i + 1, what,
                                    trim(lines[i]).substr(0, 120));
  };
  for (size_t i = *header + 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    std::string_view s = trim(line);
    if (s.empty()) continue;
    if (looks_like_count_line(s) && !count_line(line)) {
      reject(i, "a stack's count line whose figures do not parse");
      in_stack = false;
      continue;
    }
    if (auto c = count_line(line)) {
      Raw raw;
      raw.bytes = c->first;
      raw.count = c->second;
      raw.stack.stack_id = raws.size() + 1;
      raws.push_back(std::move(raw));
      in_stack = true;
      continue;
    }
    if (auto a = addr_line(line)) {
      // libbpf-tools prints a stack's allocations right under its count line; BCC lists all
      // of them before the first stack, where they belong to no stack we can name.
      if (in_stack && raws.back().stack.frames.empty()) raws.back().stack.allocations.push_back(*a);
      else ++unattributed_allocs;
      continue;
    }
    if (s.starts_with("addr =") || s.starts_with("addr=")) {
      reject(i, "an allocation line whose address or size does not parse");
      continue;
    }
    if (s.starts_with("lost:")) {
      std::string_view rest = s.substr(5);
      for (std::string_view tok = next_token(rest); !tok.empty(); tok = next_token(rest)) {
        size_t eq = tok.find('=');
        auto v = eq == std::string_view::npos ? std::nullopt : parse_u64(tok.substr(eq + 1));
        if (!v) {
          reject(i, "a loss counter that is not NAME=NUMBER");
          break;
        }
        r.lost[std::string(tok.substr(0, eq))] = *v;
      }
      in_stack = false;
      continue;
    }
    if (s.starts_with("note:")) {
      r.notes.emplace_back(trim(s.substr(5)));
      in_stack = false;
      continue;
    }
    if (s.starts_with("estimated:") || s.starts_with("verdict:")) continue;
    if (!starts_with_space(line)) {
      in_stack = false;  // e.g. "Detaching...", a shell prompt: the stack has ended
      continue;
    }
    if (!in_stack) {
      reject(i, "an indented line outside any stack");
      continue;
    }
    if (s == "stack information lost") {
      raws.back().stack.truncated = true;
      continue;
    }
    if (bad_frame_address(line)) {
      reject(i, "a frame whose address does not parse");
      continue;
    }
    raws.back().stack.frames.push_back(parse_frame(line));
  }
  if (malformed > 0)
    return fail("BCC text: {}{}: the input is damaged (nothing of it is reported)",
                first_malformed,
                malformed > 1 ? fmt::format(" and {} more malformed lines", malformed - 1)
                              : std::string());

  for (Raw& raw : raws) {
    raw.stack.bytes = scaled(raw.bytes, raw.count, sample_rate);
    raw.stack.count = scaled(raw.count, raw.count, sample_rate);
    r.stacks.push_back(std::move(raw.stack));
  }
  // BCC prints the largest stack last; the model lists it first.
  std::stable_sort(r.stacks.begin(), r.stacks.end(), [](const auto& a, const auto& b) {
    return a.bytes.estimate > b.bytes.estimate;
  });

  r.notes.insert(r.notes.begin(),
                 fmt::format("read from BCC memleak text output (report at [{}]{})", time,
                             sample_rate > 1
                                 ? fmt::format(", sampled 1 in {}: estimates are x{}",
                                               sample_rate, sample_rate)
                                 : std::string()));
  if (unattributed_allocs > 0)
    r.notes.push_back(fmt::format("{} \"addr = ... size = ...\" lines were not attributed to "
                                  "a stack (BCC prints them before the stacks)",
                                  unattributed_allocs));
  return r;
}

}  // namespace leakwatch::report
