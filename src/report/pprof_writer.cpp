#include "report/pprof_writer.h"

#include <zlib.h>

#include <algorithm>
#include <limits>
#include <unordered_map>

#include <fmt/format.h>

#include "profile.pb.h"
#include "report/frame_format.h"

namespace leakwatch::report {

namespace pb = perftools::profiles;

namespace {

// What one module contributes to its Mapping, gathered over every frame first because a
// Mapping's has_* flags and address range describe all of its locations.
struct ModuleInfo {
  uint64_t id = 0;
  std::string filename;
  std::string build_id;
  uint64_t min_address = std::numeric_limits<uint64_t>::max();
  uint64_t max_address = 0;
  bool have_bias = false;
  uint64_t bias = 0;  // address - module_offset: where file offset 0 would be mapped
  bool all_functions = true;
  bool all_files = true;
  bool all_lines = true;
  bool any_inlined = false;
};

std::string module_key(const Frame& f) {
  if (!f.module_path.empty()) return f.module_path;
  return f.module;
}

constexpr uint64_t kPage = 4096;

// Fills one Profile, interning strings, functions, locations and mappings as it goes.
// One builder per write_pprof call; not thread-safe.
class ProfileBuilder {
 public:
  explicit ProfileBuilder(pb::Profile& profile) : p_(profile) { intern(""); }

  int64_t intern(const std::string& s) {
    auto [it, inserted] = strings_.emplace(s, static_cast<int64_t>(strings_.size()));
    if (inserted) p_.add_string_table(s);
    return it->second;
  }

  void add_value_type(pb::ValueType* vt, const char* type, const char* unit) {
    vt->set_type(intern(type));
    vt->set_unit(intern(unit));
  }

  void collect_module(const Frame& f) {
    std::string key = module_key(f);
    if (key.empty()) return;
    ModuleInfo& m = modules_[key];
    if (m.id == 0) {
      m.id = ++module_count_;
      // pprof treats names starting with '[' as not symbolizable, which suits the kernel.
      m.filename = is_kernel_frame(f) && f.module_path.empty() ? "[kernel.kallsyms]" : key;
      module_order_.push_back(key);
    }
    if (m.build_id.empty()) m.build_id = f.build_id;
    m.min_address = std::min(m.min_address, f.address);
    m.max_address = std::max(m.max_address, f.address);
    if (!m.have_bias && f.module_offset != 0 && f.module_offset <= f.address) {
      m.have_bias = true;
      m.bias = f.address - f.module_offset;
    }
    m.all_functions &= !f.function.empty();
    m.all_files &= !f.file.empty();
    m.all_lines &= f.line > 0;
    m.any_inlined |= f.inlined;
  }

  // The real mapping ranges are not in the report; these are derived from the frames:
  // page-aligned around the addresses seen, with file_offset chosen so that
  // address - memory_start + file_offset == module_offset, which is how pprof maps an
  // address back into the file when it symbolizes.
  void emit_mappings() {
    for (const std::string& key : module_order_) {
      const ModuleInfo& m = modules_[key];
      pb::Mapping* out = p_.add_mapping();
      out->set_id(m.id);
      uint64_t start = m.min_address / kPage * kPage;
      uint64_t limit = m.max_address / kPage * kPage + kPage;
      if (limit < start) limit = std::numeric_limits<uint64_t>::max();  // top page wrapped
      out->set_memory_start(start);
      out->set_memory_limit(limit);
      if (m.have_bias && start >= m.bias) out->set_file_offset(start - m.bias);
      out->set_filename(intern(m.filename));
      if (!m.build_id.empty()) out->set_build_id(intern(m.build_id));
      out->set_has_functions(m.all_functions);
      out->set_has_filenames(m.all_functions && m.all_files);
      out->set_has_line_numbers(m.all_functions && m.all_lines);
      out->set_has_inline_frames(m.any_inlined);
    }
  }

  uint64_t function_id(const Frame& f) {
    std::string key = f.function + '\0' + f.file;
    auto [it, inserted] = functions_.emplace(key, functions_.size() + 1);
    if (inserted) {
      pb::Function* fn = p_.add_function();
      fn->set_id(it->second);
      fn->set_name(intern(f.function));
      // The model keeps only the demangled name; it is also the best system name we have.
      fn->set_system_name(intern(f.function));
      if (!f.file.empty()) fn->set_filename(intern(f.file));
    }
    return it->second;
  }

  // frames[first..last] share one address: inlined frames followed by their caller.
  uint64_t location_id(const std::vector<Frame>& frames, size_t first, size_t last) {
    const Frame& outer = frames[last];
    std::string key = fmt::format("{:x}/{}", outer.address, module_key(outer));
    for (size_t i = first; i <= last; ++i)
      key += fmt::format("/{}:{}:{}", frames[i].function, frames[i].file, frames[i].line);
    auto [it, inserted] = locations_.emplace(key, locations_.size() + 1);
    if (inserted) {
      pb::Location* loc = p_.add_location();
      loc->set_id(it->second);
      loc->set_address(outer.address);
      if (auto m = modules_.find(module_key(outer)); m != modules_.end())
        loc->set_mapping_id(m->second.id);
      for (size_t i = first; i <= last; ++i) {
        // An unknown function gets no Line: pprof then shows the address and can still
        // symbolize it later from the binary (PPROF_BINARY_PATH).
        if (frames[i].function.empty()) continue;
        pb::Line* line = loc->add_line();
        line->set_function_id(function_id(frames[i]));
        line->set_line(frames[i].line);
      }
    }
    return it->second;
  }

  // `custom`: the producer's values for this stack (PprofSampleTypes), else nullptr.
  void add_sample(const StackReport& s, const std::vector<int64_t>* custom) {
    pb::Sample* sample = p_.add_sample();
    const auto& frames = s.frames;
    for (size_t i = 0; i < frames.size();) {
      size_t j = i;
      while (j + 1 < frames.size() && frames[j].inlined &&
             frames[j + 1].address == frames[j].address)
        ++j;
      sample->add_location_id(location_id(frames, i, j));
      i = j + 1;
    }
    if (custom) {
      for (int64_t v : *custom) sample->add_value(v);
    } else {
      double alloc_count = s.alloc_count.estimate;
      double alloc_bytes = s.alloc_bytes.estimate;
      if (alloc_count == 0 && alloc_bytes == 0) {
        alloc_count = s.count.estimate;
        alloc_bytes = s.bytes.estimate;
      }
      sample->add_value(round_to_i64(alloc_count));
      sample->add_value(round_to_i64(alloc_bytes));
      sample->add_value(round_to_i64(s.count.estimate));
      sample->add_value(round_to_i64(s.bytes.estimate));
    }
    if (s.verdict != Verdict::kUnknown) {
      pb::Label* l = sample->add_label();
      l->set_key(intern("verdict"));
      l->set_str(intern(to_string(s.verdict)));
    }
    if (s.truncated) {
      pb::Label* l = sample->add_label();
      l->set_key(intern("truncated"));
      l->set_str(intern("true"));
    }
    pb::Label* id = sample->add_label();
    id->set_key(intern("stack_id"));
    id->set_num(static_cast<int64_t>(s.stack_id));
  }

  void build(const Report& r, const PprofSampleTypes* custom) {
    if (custom) {
      for (const auto& t : custom->types)
        add_value_type(p_.add_sample_type(), t.type.c_str(), t.unit.c_str());
      if (!custom->default_type.empty())
        p_.set_default_sample_type(intern(custom->default_type));
    } else {
      add_value_type(p_.add_sample_type(), "alloc_objects", "count");
      add_value_type(p_.add_sample_type(), "alloc_space", "bytes");
      add_value_type(p_.add_sample_type(), "inuse_objects", "count");
      add_value_type(p_.add_sample_type(), "inuse_space", "bytes");
      p_.set_default_sample_type(intern("inuse_space"));
    }
    add_value_type(p_.mutable_period_type(), "space", "bytes");
    p_.set_period(r.sampling.mode == SamplingMode::kBytes
                      ? static_cast<int64_t>(std::min<uint64_t>(r.sampling.rate, INT64_MAX))
                      : 1);
    p_.set_time_nanos(r.timestamp_unix_ms * 1000000);
    p_.set_duration_nanos(round_to_i64(r.duration_s * 1e9));

    for (const StackReport& s : r.stacks)
      for (const Frame& f : s.frames) collect_module(f);
    emit_mappings();
    for (size_t i = 0; i < r.stacks.size(); ++i)
      add_sample(r.stacks[i], custom ? &custom->values[i] : nullptr);

    p_.add_comment(intern(fmt::format("leakwatch report version {}", r.version)));
    p_.add_comment(intern(custom && !custom->sampling_comment.empty()
                              ? custom->sampling_comment
                              : sampling_comment(r.sampling)));
    if (r.target.kernel) p_.add_comment(intern("target: kernel"));
    else if (!r.target.cgroup.empty())
      p_.add_comment(intern(fmt::format("target: cgroup {}", r.target.cgroup)));
    else p_.add_comment(intern(fmt::format("target: pid {} ({})", r.target.pid, r.target.comm)));
    std::string lost;
    for (const auto& [name, value] : r.lost)
      if (value != 0) lost += fmt::format(" {}={}", name, value);
    if (!lost.empty()) p_.add_comment(intern("lost:" + lost));
    for (const std::string& note : r.notes) p_.add_comment(intern("note: " + note));
  }

  static std::string sampling_comment(const Sampling& s) {
    switch (s.mode) {
      case SamplingMode::kCalls:
        return fmt::format("sampling: calls, 1 in {} allocation calls; values are estimates "
                           "(sampled x {})", s.rate, s.rate);
      case SamplingMode::kBytes:
        return fmt::format("sampling: bytes, one sample per {} bytes on average; values are "
                           "weighted estimates", s.rate);
      case SamplingMode::kExact: break;
    }
    return "sampling: exact (every allocation traced)";
  }

 private:
  pb::Profile& p_;
  std::unordered_map<std::string, int64_t> strings_;
  std::unordered_map<std::string, uint64_t> functions_;
  std::unordered_map<std::string, uint64_t> locations_;
  std::unordered_map<std::string, ModuleInfo> modules_;
  std::vector<std::string> module_order_;  // mapping ids in first-seen order
  uint64_t module_count_ = 0;
};

}  // namespace

namespace {

Result<std::string> serialize(const Report& report, const PprofSampleTypes* custom) {
  pb::Profile profile;
  ProfileBuilder(profile).build(report, custom);
  std::string out;
  if (!profile.SerializeToString(&out)) return fail("pprof: serializing the profile failed");
  return out;
}

}  // namespace

Result<std::string> write_pprof_uncompressed(const Report& report) {
  return serialize(report, nullptr);
}

Result<std::string> write_pprof_uncompressed(const Report& report,
                                             const PprofSampleTypes& sample_types) {
  if (sample_types.types.empty()) return fail("pprof: no sample types given");
  if (sample_types.values.size() != report.stacks.size())
    return fail("pprof: {} value rows for {} stacks", sample_types.values.size(),
                report.stacks.size());
  for (const auto& row : sample_types.values)
    if (row.size() != sample_types.types.size())
      return fail("pprof: a row of {} values for {} sample types", row.size(),
                  sample_types.types.size());
  return serialize(report, &sample_types);
}

Result<std::string> gzip_compress(const std::string& data) {
  if (data.size() > std::numeric_limits<uInt>::max())
    return fail("gzip: {} bytes is more than one deflate call takes", data.size());
  z_stream zs{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's, as pprof expects.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return fail("gzip: deflateInit2 failed: {}", zs.msg ? zs.msg : "unknown error");
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return fail("gzip: deflate failed (zlib error {})", rc);
  out.resize(produced);
  return out;
}

Result<std::string> write_pprof(const Report& report) {
  auto raw = write_pprof_uncompressed(report);
  if (!raw) return std::unexpected(raw.error());
  return gzip_compress(*raw);
}

Result<std::string> write_pprof(const Report& report, const PprofSampleTypes& sample_types) {
  auto raw = write_pprof_uncompressed(report, sample_types);
  if (!raw) return std::unexpected(raw.error());
  return gzip_compress(*raw);
}

}  // namespace leakwatch::report
