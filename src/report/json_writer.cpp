#include "report/json_writer.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leakwatch::report {

namespace {

using Json = nlohmann::ordered_json;

// ---------------------------------------------------------------- writing

Json number(double v) {
  if (!std::isfinite(v)) return nullptr;
  // Integral values print as integers ("4096", not "4096.0"); below 2^53 this is exact.
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) return static_cast<int64_t>(v);
  return v;
}

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

Json estimate_json(const Estimate& e) {
  return Json{{"sampled", number(e.sampled)},
              {"estimate", number(e.estimate)},
              {"ci95", Json::array({number(e.ci_lo), number(e.ci_hi)})}};
}

Json frame_json(const Frame& f) {
  return Json{{"address", hex(f.address)},   {"function", f.function},
              {"module", f.module},          {"module_path", f.module_path},
              {"build_id", f.build_id},      {"offset", f.offset},
              {"module_offset", f.module_offset}, {"file", f.file},
              {"line", f.line},              {"inlined", f.inlined}};
}

Json stack_json(const StackReport& s) {
  Json frames = Json::array();
  for (const Frame& f : s.frames) frames.push_back(frame_json(f));
  Json out{{"stack_id", s.stack_id},
           {"frames", std::move(frames)},
           {"truncated", s.truncated},
           {"bytes", estimate_json(s.bytes)},
           {"count", estimate_json(s.count)},
           {"alloc_bytes", estimate_json(s.alloc_bytes)},
           {"alloc_count", estimate_json(s.alloc_count)},
           {"verdict", to_string(s.verdict)},
           {"score", number(s.score)},
           {"reason", s.reason},
           {"growth_bytes_per_s", number(s.growth_bytes_per_s)},
           {"oldest_age_s", number(s.oldest_age_s)}};
  if (!s.allocations.empty()) {
    Json allocs = Json::array();
    for (const Allocation& a : s.allocations)
      allocs.push_back(Json{{"address", hex(a.address)}, {"size", a.size},
                            {"age_s", number(a.age_s)}});
    out["allocations"] = std::move(allocs);
  }
  return out;
}

// ---------------------------------------------------------------- reading
//
// nlohmann's typed getters throw on a type mismatch; the reader checks every type itself so
// that a bad file yields an Error naming the field ("stacks[2].bytes.ci95: ...") instead.
// One Reader per read_json call; not thread-safe (it holds the first error).

class Reader {
 public:
  bool failed() const { return failed_; }
  const std::string& message() const { return message_; }

  void fail_at(const std::string& path, std::string_view what) {
    if (failed_) return;  // keep the first error: later ones are usually its consequences
    failed_ = true;
    message_ = fmt::format("report JSON: {}: {}", path, what);
  }

  const Json* find(const Json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }

  double get_double(const Json& obj, const char* key, const std::string& path, double def) {
    const Json* v = find(obj, key);
    if (!v) return def;
    return as_double(*v, path + "." + key);
  }

  double as_double(const Json& v, const std::string& path) {
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) {
      fail_at(path, "expected a number");
      return 0;
    }
    return v.get<double>();
  }

  uint64_t get_u64(const Json& obj, const char* key, const std::string& path, uint64_t def) {
    const Json* v = find(obj, key);
    if (!v) return def;
    return as_u64(*v, path + "." + key);
  }

  // Non-negative integers; addresses may also be hex strings ("0x...").
  uint64_t as_u64(const Json& v, const std::string& path) {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer()) {
      fail_at(path, "expected a non-negative integer");
      return 0;
    }
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (d >= 0 && d == std::trunc(d) && d < 18446744073709551616.0)
        return static_cast<uint64_t>(d);
      fail_at(path, "expected a non-negative integer");
      return 0;
    }
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      const bool has_prefix = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
      size_t used = 0;
      uint64_t out = 0;
      bool ok = has_prefix && s.size() <= 18;
      for (size_t i = 2; ok && i < s.size(); ++i, ++used) {
        char c = s[i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) ok = false;
        out = out * 16 + static_cast<uint64_t>(d);
      }
      if (ok && used > 0) return out;
      fail_at(path, fmt::format("expected a hex address like \"0x1f\", got \"{}\"", s));
      return 0;
    }
    fail_at(path, "expected an integer or a hex string");
    return 0;
  }

  int64_t get_i64(const Json& obj, const char* key, const std::string& path, int64_t def) {
    const Json* v = find(obj, key);
    if (!v) return def;
    if (v->is_number_integer()) return v->get<int64_t>();  // also true for unsigned
    if (v->is_number_float() && v->get<double>() == std::trunc(v->get<double>()) &&
        std::fabs(v->get<double>()) < 9.2e18)
      return static_cast<int64_t>(v->get<double>());
    fail_at(path + "." + key, "expected an integer");
    return def;
  }

  int get_int(const Json& obj, const char* key, const std::string& path, int def) {
    int64_t v = get_i64(obj, key, path, def);
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
      fail_at(path + "." + key, "integer out of range");
      return def;
    }
    return static_cast<int>(v);
  }

  std::string get_string(const Json& obj, const char* key, const std::string& path) {
    const Json* v = find(obj, key);
    if (!v || v->is_null()) return {};
    if (!v->is_string()) {
      fail_at(path + "." + key, "expected a string");
      return {};
    }
    return v->get<std::string>();
  }

  bool get_bool(const Json& obj, const char* key, const std::string& path) {
    const Json* v = find(obj, key);
    if (!v || v->is_null()) return false;
    if (!v->is_boolean()) {
      fail_at(path + "." + key, "expected true or false");
      return false;
    }
    return v->get<bool>();
  }

  // An object member that must be an object (or absent: returns nullptr).
  const Json* get_object(const Json& obj, const char* key, const std::string& path) {
    const Json* v = find(obj, key);
    if (!v || v->is_null()) return nullptr;
    if (!v->is_object()) {
      fail_at(path + "." + key, "expected an object");
      return nullptr;
    }
    return v;
  }

  const Json* get_array(const Json& obj, const char* key, const std::string& path) {
    const Json* v = find(obj, key);
    if (!v || v->is_null()) return nullptr;
    if (!v->is_array()) {
      fail_at(path + "." + key, "expected an array");
      return nullptr;
    }
    return v;
  }

  Estimate read_estimate(const Json& obj, const char* key, const std::string& parent) {
    Estimate e;
    std::string path = parent + "." + key;
    const Json* o = get_object(obj, key, parent);
    if (!o) return e;
    e.sampled = get_double(*o, "sampled", path, 0);
    e.estimate = get_double(*o, "estimate", path, 0);
    e.ci_lo = e.ci_hi = e.estimate;  // an exact figure's interval is the figure itself
    if (const Json* ci = find(*o, "ci95"); ci && !ci->is_null()) {
      if (!ci->is_array() || ci->size() != 2) {
        fail_at(path + ".ci95", "expected [lo, hi]");
        return e;
      }
      e.ci_lo = as_double((*ci)[0], path + ".ci95[0]");
      e.ci_hi = as_double((*ci)[1], path + ".ci95[1]");
    }
    return e;
  }

  Frame read_frame(const Json& o, const std::string& path) {
    Frame f;
    if (!o.is_object()) {
      fail_at(path, "expected an object");
      return f;
    }
    if (const Json* a = find(o, "address")) f.address = as_u64(*a, path + ".address");
    f.function = get_string(o, "function", path);
    f.module = get_string(o, "module", path);
    f.module_path = get_string(o, "module_path", path);
    f.build_id = get_string(o, "build_id", path);
    f.offset = get_u64(o, "offset", path, 0);
    f.module_offset = get_u64(o, "module_offset", path, 0);
    f.file = get_string(o, "file", path);
    f.line = get_int(o, "line", path, 0);
    f.inlined = get_bool(o, "inlined", path);
    return f;
  }

  StackReport read_stack(const Json& o, const std::string& path) {
    StackReport s;
    if (!o.is_object()) {
      fail_at(path, "expected an object");
      return s;
    }
    s.stack_id = get_u64(o, "stack_id", path, 0);
    if (const Json* frames = get_array(o, "frames", path))
      for (size_t i = 0; i < frames->size(); ++i)
        s.frames.push_back(read_frame((*frames)[i], fmt::format("{}.frames[{}]", path, i)));
    s.truncated = get_bool(o, "truncated", path);
    s.bytes = read_estimate(o, "bytes", path);
    s.count = read_estimate(o, "count", path);
    s.alloc_bytes = read_estimate(o, "alloc_bytes", path);
    s.alloc_count = read_estimate(o, "alloc_count", path);
    std::string verdict = get_string(o, "verdict", path);
    if (!verdict.empty()) {
      auto v = verdict_from_string(verdict);
      if (!v) fail_at(path + ".verdict", fmt::format("unknown verdict \"{}\"", verdict));
      else s.verdict = *v;
    }
    s.score = get_double(o, "score", path, 0);
    s.reason = get_string(o, "reason", path);
    s.growth_bytes_per_s = get_double(o, "growth_bytes_per_s", path, 0);
    s.oldest_age_s = get_double(o, "oldest_age_s", path, 0);
    if (const Json* allocs = get_array(o, "allocations", path)) {
      for (size_t i = 0; i < allocs->size(); ++i) {
        const Json& a = (*allocs)[i];
        std::string apath = fmt::format("{}.allocations[{}]", path, i);
        if (!a.is_object()) {
          fail_at(apath, "expected an object");
          break;
        }
        Allocation out;
        if (const Json* addr = find(a, "address")) out.address = as_u64(*addr, apath + ".address");
        out.size = get_u64(a, "size", apath, 0);
        out.age_s = get_double(a, "age_s", apath, 0);
        s.allocations.push_back(out);
      }
    }
    return s;
  }

  Finding read_finding(const Json& o, const std::string& path) {
    Finding f;
    f.function = get_string(o, "function", path);
    f.module = get_string(o, "module", path);
    f.file = get_string(o, "file", path);
    f.line = get_int(o, "line", path, 0);
    f.bytes = get_double(o, "bytes", path, 0);
    f.bytes_per_s = get_double(o, "bytes_per_s", path, 0);
    std::string verdict = get_string(o, "verdict", path);
    if (!verdict.empty()) {
      auto v = verdict_from_string(verdict);
      if (!v) fail_at(path + ".verdict", fmt::format("unknown verdict \"{}\"", verdict));
      else f.verdict = *v;
    }
    f.confidence = get_double(o, "confidence", path, 0);
    f.reason = get_string(o, "reason", path);
    if (const Json* seen = get_array(o, "seen_by", path)) {
      for (size_t i = 0; i < seen->size(); ++i) {
        if (!(*seen)[i].is_string()) {
          fail_at(fmt::format("{}.seen_by[{}]", path, i), "expected a string");
          break;
        }
        f.seen_by.push_back((*seen)[i].get<std::string>());
      }
    }
    f.agreement = get_string(o, "agreement", path);
    f.alert_level = get_string(o, "alert_level", path);
    return f;
  }

  std::vector<double> read_numbers(const Json& obj, const char* key, const std::string& path) {
    std::vector<double> out;
    const Json* a = get_array(obj, key, path);
    if (!a) return out;
    out.reserve(a->size());
    for (size_t i = 0; i < a->size() && !failed_; ++i)
      out.push_back(as_double((*a)[i], fmt::format("{}.{}[{}]", path, key, i)));
    return out;
  }

  Timeline read_timeline(const Json& o, const std::string& path) {
    Timeline t;
    t.t_s = read_numbers(o, "t_s", path);
    t.total_bytes = read_numbers(o, "total_bytes", path);
    t.rss_bytes = read_numbers(o, "rss_bytes", path);
    if (const Json* stacks = get_array(o, "stacks", path)) {
      for (size_t i = 0; i < stacks->size() && !failed_; ++i) {
        const Json& s = (*stacks)[i];
        std::string spath = fmt::format("{}.stacks[{}]", path, i);
        if (!s.is_object()) {
          fail_at(spath, "expected an object");
          break;
        }
        StackSeries series;
        series.stack_id = get_u64(s, "stack_id", spath, 0);
        series.bytes = read_numbers(s, "bytes", spath);
        if (series.bytes.size() != t.t_s.size())
          fail_at(spath + ".bytes", fmt::format("expected {} values (one per t_s), got {}",
                                                t.t_s.size(), series.bytes.size()));
        t.stacks.push_back(std::move(series));
      }
    }
    if (t.total_bytes.size() != t.t_s.size())
      fail_at(path + ".total_bytes", "expected one value per t_s");
    if (!t.rss_bytes.empty() && t.rss_bytes.size() != t.t_s.size())
      fail_at(path + ".rss_bytes", "expected one value per t_s (or none)");
    return t;
  }

  Report read_report(const Json& root) {
    Report r;
    const std::string path = "$";
    if (!root.is_object()) {
      fail_at(path, "expected a JSON object");
      return r;
    }
    r.version = get_int(root, "version", path, 0);
    if (!find(root, "version")) fail_at(path, "missing \"version\": not a leakwatch report");
    else if (r.version < 1 || r.version > kReportVersion)
      fail_at(path + ".version", fmt::format("version {} is not supported (this leakwatch "
                                             "reads versions 1 to {})",
                                             r.version, kReportVersion));
    if (const Json* t = get_object(root, "target", path)) {
      r.target.pid = get_int(*t, "pid", path + ".target", 0);
      r.target.comm = get_string(*t, "comm", path + ".target");
      r.target.cgroup = get_string(*t, "cgroup", path + ".target");
      r.target.kernel = get_bool(*t, "kernel", path + ".target");
    }
    if (const Json* s = get_object(root, "sampling", path)) {
      std::string mode = get_string(*s, "mode", path + ".sampling");
      if (!mode.empty()) {
        auto m = sampling_mode_from_string(mode);
        if (!m) fail_at(path + ".sampling.mode", fmt::format("unknown mode \"{}\"", mode));
        else r.sampling.mode = *m;
      }
      r.sampling.rate = get_u64(*s, "rate", path + ".sampling", 1);
    }
    r.duration_s = get_double(root, "duration_s", path, 0);
    r.timestamp_unix_ms = get_i64(root, "timestamp_unix_ms", path, 0);
    r.final = get_bool(root, "final", path);
    if (const Json* stacks = get_array(root, "stacks", path))
      for (size_t i = 0; i < stacks->size() && !failed_; ++i)
        r.stacks.push_back(read_stack((*stacks)[i], fmt::format("{}.stacks[{}]", path, i)));
    if (const Json* lost = get_object(root, "lost", path))
      for (const auto& [name, value] : lost->items())
        r.lost[name] = as_u64(value, path + ".lost." + name);
    if (const Json* notes = get_array(root, "notes", path)) {
      for (size_t i = 0; i < notes->size(); ++i) {
        if (!(*notes)[i].is_string()) {
          fail_at(fmt::format("{}.notes[{}]", path, i), "expected a string");
          break;
        }
        r.notes.push_back((*notes)[i].get<std::string>());
      }
    }
    if (const Json* f = get_object(root, "finding", path)) r.finding = read_finding(*f, path + ".finding");
    if (const Json* t = get_object(root, "timeline", path))
      r.timeline = read_timeline(*t, path + ".timeline");
    return r;
  }

 private:
  bool failed_ = false;
  std::string message_;
};

}  // namespace

static Json finding_json(const Finding& f) {
  Json o{{"function", f.function},
         {"module", f.module},
         {"bytes", number(f.bytes)},
         {"bytes_per_s", number(f.bytes_per_s)},
         {"verdict", to_string(f.verdict)},
         {"confidence", number(f.confidence)},
         {"reason", f.reason},
         {"seen_by", f.seen_by},
         {"agreement", f.agreement},
         {"alert_level", f.alert_level}};
  if (!f.file.empty()) {
    o["file"] = f.file;
    o["line"] = f.line;
  }
  return o;
}

static Json numbers(const std::vector<double>& values) {
  Json a = Json::array();
  for (double v : values) a.push_back(number(v));
  return a;
}

static Json timeline_json(const Timeline& t) {
  Json stacks = Json::array();
  for (const StackSeries& s : t.stacks)
    stacks.push_back(Json{{"stack_id", s.stack_id}, {"bytes", numbers(s.bytes)}});
  return Json{{"t_s", numbers(t.t_s)},
              {"total_bytes", numbers(t.total_bytes)},
              {"rss_bytes", numbers(t.rss_bytes)},
              {"stacks", std::move(stacks)}};
}

std::string write_json(const Report& r) {
  Json target{{"pid", r.target.pid}, {"comm", r.target.comm}};
  if (!r.target.cgroup.empty()) target["cgroup"] = r.target.cgroup;
  if (r.target.kernel) target["kernel"] = true;

  Json stacks = Json::array();
  for (const StackReport& s : r.stacks) stacks.push_back(stack_json(s));
  Json lost = Json::object();
  for (const auto& [name, value] : r.lost) lost[name] = value;

  Json root{{"version", r.version},
            {"target", std::move(target)},
            {"sampling", Json{{"mode", to_string(r.sampling.mode)}, {"rate", r.sampling.rate}}},
            {"duration_s", number(r.duration_s)},
            {"timestamp_unix_ms", r.timestamp_unix_ms},
            {"final", r.final},
            {"stacks", std::move(stacks)},
            {"lost", std::move(lost)},
            {"notes", r.notes}};
  if (r.finding) root["finding"] = finding_json(*r.finding);
  if (r.timeline) root["timeline"] = timeline_json(*r.timeline);
  // Invalid UTF-8 in a symbol (it happens with corrupt binaries) is replaced, not fatal.
  return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<Report> read_json(std::string_view text) {
  // The one place an exception is caught: nlohmann reports syntax errors (with their line
  // and column) only by throwing, and the error must not leave this function.
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::parse_error& e) {
    return fail("report JSON: {}", e.what());
  }
  Reader reader;
  Report r = reader.read_report(root);
  if (reader.failed()) return std::unexpected(Error{reader.message(), 0});
  return r;
}

}  // namespace leakwatch::report
