#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "profile.pb.h"
#include "report/pprof_writer.h"
#include "report_testing.h"
#include "support/profile_servers.h"

namespace leakwatch::report {
namespace {

using namespace testing;
namespace pb = perftools::profiles;
using leakwatch::testing::gunzip;

pb::Profile decode(const Report& r) {
  auto gz = write_pprof(r);
  EXPECT_TRUE(gz) << gz.error().message;
  EXPECT_GE(gz->size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
  pb::Profile p;
  EXPECT_TRUE(p.ParseFromString(gunzip(*gz)));
  return p;
}

struct Index {
  const pb::Profile& p;
  const std::string& str(int64_t i) const { return p.string_table(static_cast<int>(i)); }
  const pb::Location& location(uint64_t id) const {
    for (const auto& l : p.location())
      if (l.id() == id) return l;
    ADD_FAILURE() << "no location " << id;
    return p.location(0);
  }
  const pb::Function& function(uint64_t id) const {
    for (const auto& f : p.function())
      if (f.id() == id) return f;
    ADD_FAILURE() << "no function " << id;
    return p.function(0);
  }
  const pb::Mapping& mapping(uint64_t id) const {
    for (const auto& m : p.mapping())
      if (m.id() == id) return m;
    ADD_FAILURE() << "no mapping " << id;
    return p.mapping(0);
  }
  std::vector<std::string> names(const pb::Location& l) const {
    std::vector<std::string> out;
    for (const auto& line : l.line()) out.push_back(str(function(line.function_id()).name()));
    return out;
  }
};

TEST(ReportPprof, SampleTypesAndHeader) {
  pb::Profile p = decode(exact_report());
  Index ix{p};
  ASSERT_GT(p.string_table_size(), 0);
  EXPECT_EQ(p.string_table(0), "");
  std::vector<std::pair<std::string, std::string>> types;
  for (const auto& t : p.sample_type()) types.emplace_back(ix.str(t.type()), ix.str(t.unit()));
  EXPECT_EQ(types, (std::vector<std::pair<std::string, std::string>>{
                       {"alloc_objects", "count"},
                       {"alloc_space", "bytes"},
                       {"inuse_objects", "count"},
                       {"inuse_space", "bytes"}}));
  EXPECT_EQ(ix.str(p.default_sample_type()), "inuse_space");
  EXPECT_EQ(ix.str(p.period_type().type()), "space");
  EXPECT_EQ(ix.str(p.period_type().unit()), "bytes");
  EXPECT_EQ(p.time_nanos(), 1764000000123LL * 1000000);
  EXPECT_EQ(p.duration_nanos(), 12500000000LL);
  std::vector<std::string> comments;
  for (int64_t c : p.comment()) comments.push_back(ix.str(c));
  EXPECT_NE(std::find(comments.begin(), comments.end(),
                      "sampling: exact (every allocation traced)"),
            comments.end());
  EXPECT_NE(std::find(comments.begin(), comments.end(), "lost: attach_failed=1"), comments.end());

  pb::Profile s = decode(sampled_report());
  Index sx{s};
  bool found = false;
  for (int64_t c : s.comment()) found |= sx.str(c).starts_with("sampling: bytes, one sample per 524288");
  EXPECT_TRUE(found);
  EXPECT_EQ(s.period(), 524288);
}

TEST(ReportPprof, ValuesPerStack) {
  pb::Profile p = decode(exact_report());
  ASSERT_EQ(p.sample_size(), 3);
  auto values = [&](int i) {
    return std::vector<int64_t>(p.sample(i).value().begin(), p.sample(i).value().end());
  };
  EXPECT_EQ(values(0), (std::vector<int64_t>{256, 1048576, 256, 1048576}));
  EXPECT_EQ(values(1), (std::vector<int64_t>{64, 262144, 16, 65536}));
  EXPECT_EQ(values(2), (std::vector<int64_t>{2, 4000, 2, 4000}));

  pb::Profile s = decode(sampled_report());
  ASSERT_EQ(s.sample_size(), 2);
  // estimates, rounded: 51200.4 objects, 52428800.5 bytes
  EXPECT_EQ(std::vector<int64_t>(s.sample(0).value().begin(), s.sample(0).value().end()),
            (std::vector<int64_t>{65536, 67108864, 51200, 52428801}));
  // no alloc_* figures from the producer: the in-use ones stand in
  EXPECT_EQ(std::vector<int64_t>(s.sample(1).value().begin(), s.sample(1).value().end()),
            (std::vector<int64_t>{5, 1310720, 5, 1310720}));
  Index sx{s};
  std::map<std::string, std::string> labels;
  for (const auto& l : s.sample(0).label())
    if (l.str() != 0) labels[sx.str(l.key())] = sx.str(l.str());
  EXPECT_EQ(labels["verdict"], "leak");
}

TEST(ReportPprof, LocationsFunctionsMappings) {
  Report r = exact_report();
  pb::Profile p = decode(r);
  Index ix{p};

  // leaf first: the allocation site, with file and line
  const pb::Sample& leak = p.sample(0);
  ASSERT_EQ(leak.location_id_size(), 3);
  const pb::Location& site = ix.location(leak.location_id(0));
  EXPECT_EQ(site.address(), kAppBase + 0x11c9);
  ASSERT_EQ(site.line_size(), 1);
  EXPECT_EQ(site.line(0).line(), 21);
  const pb::Function& fn = ix.function(site.line(0).function_id());
  EXPECT_EQ(ix.str(fn.name()), "leak_fn(unsigned long)");
  EXPECT_EQ(ix.str(fn.filename()), "/src/leaky_demo.cpp");

  const pb::Mapping& app = ix.mapping(site.mapping_id());
  EXPECT_EQ(ix.str(app.filename()), "/usr/local/bin/leaky_demo");
  EXPECT_EQ(ix.str(app.build_id()), kAppBuildId);
  EXPECT_TRUE(app.has_functions());
  EXPECT_TRUE(app.has_filenames());
  EXPECT_TRUE(app.has_line_numbers());
  EXPECT_TRUE(app.has_inline_frames());
  // libc frames have no file/line
  const pb::Mapping& libc = ix.mapping(ix.location(leak.location_id(2)).mapping_id());
  EXPECT_EQ(ix.str(libc.build_id()), kLibcBuildId);
  EXPECT_TRUE(libc.has_functions());
  EXPECT_FALSE(libc.has_line_numbers());

  // every location maps back to its file offset the way pprof computes it
  for (size_t si = 0; si < r.stacks.size(); ++si) {
    for (const Frame& f : r.stacks[si].frames) {
      if (f.module.empty()) continue;
      bool seen = false;
      for (const auto& loc : p.location()) {
        if (loc.address() != f.address) continue;
        seen = true;
        const pb::Mapping& m = ix.mapping(loc.mapping_id());
        EXPECT_LE(m.memory_start(), f.address);
        EXPECT_LT(f.address, m.memory_limit());
        EXPECT_EQ(f.address - m.memory_start() + m.file_offset(), f.module_offset);
      }
      EXPECT_TRUE(seen) << f.function;
    }
  }

  // the inlined frame and its caller share one location: inlined first, caller last
  const pb::Sample& cache = p.sample(1);
  ASSERT_EQ(cache.location_id_size(), 4);
  EXPECT_EQ(ix.names(ix.location(cache.location_id(1))),
            (std::vector<std::string>{"Cache::put(std::string const&, std::vector<char>)",
                                      "Cache::warm(int)"}));
  // shared frames are shared locations (main differs by address, libc start does not)
  EXPECT_EQ(leak.location_id(2), cache.location_id(3));

  // unknown functions: a location without lines, in its module's mapping or none
  const pb::Sample& unknown = p.sample(2);
  const pb::Location& plugin = ix.location(unknown.location_id(0));
  EXPECT_EQ(plugin.line_size(), 0);
  EXPECT_EQ(ix.str(ix.mapping(plugin.mapping_id()).filename()), "/opt/app/libplugin.so");
  EXPECT_FALSE(ix.mapping(plugin.mapping_id()).has_functions());
  EXPECT_EQ(ix.location(unknown.location_id(1)).mapping_id(), 0u);

  // ids are unique and non-zero
  std::set<uint64_t> ids;
  for (const auto& l : p.location()) EXPECT_TRUE(l.id() != 0 && ids.insert(l.id()).second);
}

TEST(ReportPprof, KernelMapping) {
  pb::Profile p = decode(kernel_report());
  Index ix{p};
  ASSERT_EQ(p.mapping_size(), 1);
  EXPECT_EQ(ix.str(p.mapping(0).filename()), "[kernel.kallsyms]");
  EXPECT_EQ(std::vector<int64_t>(p.sample(0).value().begin(), p.sample(0).value().end()),
            (std::vector<int64_t>{2, 8192, 2, 8192}));
}

// ---- the real consumer ----

std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *status = pclose(f);
  return out;
}

bool have_go() {
  int status = -1;
  run_capture("command -v go >/dev/null 2>&1", &status);
  return status == 0;
}

// `go tool pprof` needs no network; HOME/GOCACHE/GOPATH point at a temp dir so it runs in
// CI sandboxes with a read-only or missing home.
std::string go_pprof(const std::string& args, const Report& r, int* status) {
  auto dir = std::filesystem::path(::testing::TempDir()) /
             ("leakwatch-pprof-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "home");
  auto gz = write_pprof(r);
  EXPECT_TRUE(gz);
  const auto file = dir / "heap.pb.gz";
  std::ofstream(file, std::ios::binary) << *gz;
  std::string env = "HOME=" + (dir / "home").string() + " GOCACHE=" + (dir / "gocache").string() +
                    " GOPATH=" + (dir / "gopath").string() + " PPROF_TMPDIR=" + dir.string() +
                    " PPROF_BINARY_PATH=" + dir.string() + " GOFLAGS= GO111MODULE=off";
  return run_capture("env " + env + " go tool pprof " + args + " " + file.string() + " 2>&1",
                     status);
}

TEST(ReportPprof, GoToolPprofListsTheLeak) {
  if (!have_go()) GTEST_SKIP() << "go is not on PATH (Debian: apt-get install golang-go)";
  int status = -1;
  std::string out = go_pprof("-top -sample_index=inuse_space", exact_report(), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("Type: inuse_space"), std::string::npos) << out;
  // "    1024kB 93.78% 93.78%     1024kB 93.78%  leak_fn(unsigned long)": 1 MiB of 1091.91 kB
  const std::regex leak_line(
      R"(\n\s*1024kB\s+93\.78%\s+93\.78%\s+1024kB\s+93\.78%\s+leak_fn\(unsigned long\)\n)");
  EXPECT_TRUE(std::regex_search(out, leak_line)) << out;

  // exact numbers with -unit=B; pprof shortens C++ names ("std::vector::reserve")
  out = go_pprof("-top -sample_index=inuse_space -unit=B", exact_report(), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(1048576B\s.*leak_fn\(unsigned long\))"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\n\s*65536B\s.*\s+std::vector::reserve\n)"))) << out;

  // the sampled report: estimates, not the sampled figures
  out = go_pprof("-top -sample_index=inuse_space -unit=B", sampled_report(), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(52428801B\s.*Session::append)"))) << out;
  out = go_pprof("-top -sample_index=alloc_objects", sampled_report(), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\b65536\s.*Session::append)"))) << out;
}

}  // namespace
}  // namespace leakwatch::report
