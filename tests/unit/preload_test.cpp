// libleakwatch-preload.so (src/preload/): its code layout for the probes, and its behaviour
// in real programs.  The pl_* fixtures run under LD_PRELOAD, with the hook recorder
// libpl_hooks.so in front of the library so that every hook call is seen and checked
// (tests/fixtures/pl_hooks.h).  No privileges needed: nothing here probes the hooks.
#include <capstone/capstone.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "analysis/sampling.h"
#include "bpf/preload_abi.h"
#include "preload/exp_table.h"
#include "elf/elf_symbols.h"
#include "support/process.h"

namespace leakwatch {
namespace {

using testing::fixture;
using testing::run_argv;
using testing::RunResult;

std::string preload_library() {
  return (std::filesystem::path(LEAKWATCH_BINARY).parent_path() / LEAKWATCH_PRELOAD_LIBRARY)
      .string();
}
std::string recorder() { return fixture("libpl_hooks.so"); }

// Runs a fixture with the recorder and the library preloaded and the given environment.
RunResult run_preloaded(const std::vector<std::string>& env, const std::vector<std::string>& cmd,
                        const std::string& preload = "") {
  std::vector<std::string> argv{"env",
                                "LD_PRELOAD=" + (preload.empty()
                                                     ? recorder() + ":" + preload_library()
                                                     : preload)};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return run_argv(argv, std::chrono::seconds(300));
}

std::string why(const RunResult& r) { return "stdout:\n" + r.out + "\nstderr:\n" + r.err; }

// The value of `key=NUMBER` in `text` (the last occurrence); -1 when absent.
double field(const std::string& text, const std::string& key) {
  std::regex re("(^|[ \\n])" + key + "=([0-9.]+)");
  double v = -1;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it)
    v = std::stod((*it)[2]);
  return v;
}

// ---- code layout ----

TEST(PreloadLayout, ExponentialTableIsTheBpfTable) {
  // Same table => in-process and attach mode make the same decision from the same draw.
  std::vector<uint32_t> ours(LW_EXP_TABLE_SIZE);
  lw_preload_build_exp_table(ours.data(), ours.size());
  EXPECT_EQ(ours, analysis::exponential_table(LW_EXP_TABLE_SIZE));
}

TEST(PreloadLayout, HooksAreOneFiveByteNopThenRet) {
  auto elf = elf::ElfObject::Open(preload_library());
  ASSERT_TRUE(elf) << elf.error().message;
  for (const char* name : {LEAKWATCH_HOOK_ALLOC_SYMBOL, LEAKWATCH_HOOK_FREE_SYMBOL}) {
    auto sym = elf->find(name);
    ASSERT_TRUE(sym) << name;
    EXPECT_TRUE(sym->dynamic) << name << " must be exported";
    auto code = elf->read_code(sym->value, 6);
    ASSERT_TRUE(code) << code.error().message;
    EXPECT_EQ(*code, (std::vector<uint8_t>{0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3})) << name;
  }
}

// The branches out of a function: (target, is_call) for every direct call and jmp.
std::vector<std::pair<uint64_t, bool>> direct_branches(const elf::ElfObject& elf,
                                                       const elf::ElfSymbol& sym) {
  std::vector<std::pair<uint64_t, bool>> out;
  auto code = elf.read_code(sym.value, sym.size);
  if (!code) return out;
  csh h;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) return out;
  cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insn = nullptr;
  size_t n = cs_disasm(h, code->data(), code->size(), sym.value, 0, &insn);
  for (size_t i = 0; i < n; i++) {
    bool call = insn[i].id == X86_INS_CALL, jmp = insn[i].id == X86_INS_JMP;
    const cs_x86& x = insn[i].detail->x86;
    if ((call || jmp) && x.op_count == 1 && x.operands[0].type == X86_OP_IMM)
      out.emplace_back(static_cast<uint64_t>(x.operands[0].imm), call);
  }
  cs_free(insn, n);
  cs_close(&h);
  return out;
}

// Whether the function sets up a frame pointer (push %rbp, later mov %rsp,%rbp) before its
// first call.
bool frame_before_first_call(const elf::ElfObject& elf, const elf::ElfSymbol& sym) {
  auto code = elf.read_code(sym.value, sym.size);
  if (!code) return false;
  csh h;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) return false;
  cs_insn* insn = nullptr;
  size_t n = cs_disasm(h, code->data(), code->size(), sym.value, 0, &insn);
  bool pushed = false, framed = false;
  for (size_t i = 0; i < n && insn[i].id != X86_INS_CALL; i++) {
    std::string text = std::string(insn[i].mnemonic) + " " + insn[i].op_str;
    if (text == "push rbp") pushed = true;
    if (pushed && text == "mov rbp, rsp") framed = true;
  }
  cs_free(insn, n);
  cs_close(&h);
  return framed;
}

TEST(PreloadLayout, SampledPathsAreReachedByTailJumps) {
  // The hook is called from an lw_sampled_* function's frame; each exported wrapper must
  // reach its sampled path by a jmp (never a call), so that frame's record holds the
  // program's return address: a frame-pointer walk at the hook then names the caller of
  // malloc/new (see preload_internal.h).
  auto elf = elf::ElfObject::Open(preload_library());
  ASSERT_TRUE(elf) << elf.error().message;
  std::map<uint64_t, std::string> sampled_paths;
  for (const auto& sym : elf->symbols()) {
    if (sym.name.rfind("lw_sampled_", 0) != 0 || sym.size == 0) continue;
    sampled_paths[sym.value] = sym.name;
    EXPECT_TRUE(frame_before_first_call(*elf, sym)) << sym.name << " sets up no frame pointer";
  }
  ASSERT_GE(sampled_paths.size(), 10u) << "lw_sampled_* functions missing from .symtab";
  for (const char* name :
       {"malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t",
        "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
        "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t"}) {
    auto sym = elf->find(name);
    ASSERT_TRUE(sym && sym->dynamic) << name << " not exported";
    int jumps = 0;
    for (const auto& [target, is_call] : direct_branches(*elf, *sym)) {
      auto it = sampled_paths.find(target);
      if (it == sampled_paths.end()) continue;
      EXPECT_FALSE(is_call) << name << " calls " << it->second << " instead of jumping to it";
      jumps++;
    }
    EXPECT_GE(jumps, 1) << name << " never jumps to a sampled path";
  }
  for (const char* name : {"free", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t",
                           "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
                           "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
                           "_ZdlPvSt11align_val_tRKSt9nothrow_t",
                           "_ZdaPvSt11align_val_tRKSt9nothrow_t"}) {
    auto sym = elf->find(name);
    EXPECT_TRUE(sym && sym->dynamic) << name << " not exported";
  }
}

// ---- behaviour ----

TEST(Preload, EveryHookMatchesItsCallAtEachRate) {
  // Around every call the recorder must see exactly the hooks the call's outcome implies.
  for (const char* rate : {"1", "512", "4096", "65536"}) {
    auto r = run_preloaded({std::string("LEAKWATCH_SAMPLE_BYTES=") + rate,
                            "LEAKWATCH_PRELOAD_SEED=11"},
                           {fixture("pl_exact"), "150000", "3"});
    EXPECT_EQ(r.exit_code, 0) << "R=" << rate << "\n" << why(r);
    EXPECT_EQ(field(r.out, "errors"), 0) << why(r);
    EXPECT_GT(field(r.out, "sampled"), 100) << "R=" << rate << ": too few samples to mean much";
    EXPECT_EQ(field(r.out, "sampled"), field(r.out, "freed"));
    EXPECT_EQ(field(r.out, "overflow"), 0);
  }
}

TEST(Preload, CountersBalanceWithoutTheRecorder) {
  auto r = run_preloaded({"LEAKWATCH_SAMPLE_BYTES=4096"}, {fixture("pl_exact"), "100000", "5"},
                         preload_library());
  EXPECT_EQ(r.exit_code, 0) << why(r);
  EXPECT_GT(field(r.out, "hook_allocs"), 1000);
  EXPECT_EQ(field(r.out, "live"), 0) << "every sampled block the loop freed left the set";
}

TEST(Preload, ThreadsKeepDataIntactAndHooksMatched) {
  for (const char* rate : {"1", "8192"}) {
    auto r = run_preloaded({std::string("LEAKWATCH_SAMPLE_BYTES=") + rate},
                           {fixture("pl_stress"), "4", "25000", "9"});
    EXPECT_EQ(r.exit_code, 0) << "R=" << rate << "\n" << why(r);
    EXPECT_EQ(field(r.out, "errors"), 0) << why(r);
    EXPECT_EQ(field(r.out, "bad_frees"), 0);
    EXPECT_EQ(field(r.out, "dup_allocs"), 0);
    EXPECT_GT(field(r.out, "hook_allocs"), 1000) << why(r);
  }
}

TEST(Preload, EveryWrappedFunctionBehavesAndIsHooked) {
  auto r = run_preloaded({"LEAKWATCH_SAMPLE_BYTES=1"}, {fixture("pl_functions")});
  EXPECT_EQ(r.exit_code, 0) << why(r);
  EXPECT_EQ(field(r.out, "failures"), 0) << why(r);
  EXPECT_GE(field(r.out, "checks"), 55);
}

TEST(Preload, EarlyAllocationsDlopenForkAndExec) {
  // libpl_early.so listed after the library: its constructor allocates before ours runs.
  for (const char* rate : {"1", "4096"}) {
    auto r = run_preloaded(
        {std::string("LEAKWATCH_SAMPLE_BYTES=") + rate}, {fixture("pl_forkexec")},
        recorder() + ":" + preload_library() + ":" + fixture("libpl_early.so"));
    EXPECT_EQ(r.exit_code, 0) << "R=" << rate << "\n" << why(r);
    EXPECT_EQ(field(r.out, "failures"), 0) << why(r);
    EXPECT_EQ(field(r.out, "checks"), 11) << why(r);
    EXPECT_NE(r.out.find("early constructor ran before the preload library's: 1"),
              std::string::npos)
        << why(r);
  }
}

TEST(Preload, AllocationsInsideDlsymUseTheBootstrapArena) {
  // A failing dlsym during initialisation allocates (as dlsym did in older glibc): those
  // requests are served from the static arena, and the program runs normally.
  auto r = run_preloaded({"LEAKWATCH_SAMPLE_BYTES=1", "LEAKWATCH_PRELOAD_TEST_DLSYM=lw_no_such"},
                         {fixture("pl_exact"), "20000", "2"});
  EXPECT_EQ(r.exit_code, 0) << why(r);
  EXPECT_GE(field(r.out, "bootstrap"), 1) << why(r);
  EXPECT_EQ(field(r.out, "errors"), 0) << why(r);
}

struct RateCase {
  const char* rate;
  const char* calls;
  const char* max_size;
  const char* threads;
};

TEST(Preload, SampledCountFollowsTheInclusionProbability) {
  // Sampled count per size class vs sum p(s), and the Horvitz-Thompson byte estimate vs the
  // truth, each within 4 standard deviations (+1 for the count's integer granularity).
  // Fixed seeds (sizes and LEAKWATCH_PRELOAD_SEED); measured |z| <= 2.4 over 6 seeds.
  const RateCase cases[] = {{"4096", "300000", "65536", "1"},
                            {"65536", "200000", "1048576", "1"},
                            {"524288", "100000", "4194304", "1"},
                            {"16384", "60000", "262144", "3"}};
  std::regex cls("class=(\\w+) calls=(\\d+) sampled=(\\d+) expected=([0-9.]+) sd=([0-9.]+)");
  for (const RateCase& c : cases) {
    auto r = run_preloaded({std::string("LEAKWATCH_SAMPLE_BYTES=") + c.rate,
                            "LEAKWATCH_PRELOAD_SEED=3"},
                           {fixture("pl_rate"), c.rate, c.calls, c.max_size, c.threads, "7"});
    ASSERT_EQ(r.exit_code, 0) << why(r);
    int classes = 0;
    for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), cls);
         it != std::sregex_iterator(); ++it) {
      ++classes;
      double sampled = std::stod((*it)[3]), expected = std::stod((*it)[4]),
             sd = std::stod((*it)[5]);
      EXPECT_GT(expected, 50) << "R=" << c.rate << " class " << (*it)[1];
      EXPECT_LE(std::abs(sampled - expected), 4 * sd + 1)
          << "R=" << c.rate << " class " << (*it)[1] << ": sampled " << sampled
          << ", expected " << expected << " +- " << sd;
    }
    EXPECT_EQ(classes, 3) << why(r);
    double est = field(r.out, "estimate"), truth = field(r.out, "truth"), sd = field(r.out, "sd");
    EXPECT_LE(std::abs(est - truth), 4 * sd) << "R=" << c.rate << "\n" << r.out;
    EXPECT_EQ(field(r.out, "bad_frees"), 0);
    EXPECT_EQ(field(r.out, "dup_allocs"), 0);
  }
}

TEST(Preload, DisabledMeansPassThrough) {
  auto r = run_preloaded({"LEAKWATCH_SAMPLE_BYTES=1", "LEAKWATCH_PRELOAD_DISABLE=1"},
                         {fixture("pl_exact"), "50000", "4"});
  EXPECT_EQ(r.exit_code, 0) << why(r);
  EXPECT_EQ(field(r.out, "sampled"), 0) << why(r);
  EXPECT_NE(r.out.find("flags=0x2 "), std::string::npos) << why(r);
  EXPECT_EQ(field(r.out, "capacity"), 0);
}

TEST(Preload, Configuration) {
  auto r = run_preloaded({"LEAKWATCH_SAMPLE_BYTES=64K"}, {fixture("pl_exact"), "1000"});
  EXPECT_EQ(r.exit_code, 0) << why(r);
  EXPECT_EQ(field(r.out, "R"), 65536) << why(r);
  EXPECT_NE(r.out.find("flags=0x1 "), std::string::npos) << why(r);

  r = run_preloaded({"LEAKWATCH_SAMPLE_BYTES=lots", "LEAKWATCH_PRELOAD_SET_SLOTS=3"},
                    {fixture("pl_exact"), "1000"});
  EXPECT_EQ(r.exit_code, 0) << why(r);
  EXPECT_EQ(field(r.out, "R"), LEAKWATCH_PRELOAD_DEFAULT_SAMPLE_BYTES) << why(r);
  EXPECT_NE(r.out.find("flags=0x5 "), std::string::npos) << "ACTIVE | CONFIG_ERROR\n" << why(r);
  EXPECT_EQ(field(r.out, "capacity"), 1 << 18);

  r = run_preloaded({"LEAKWATCH_PRELOAD_SET_SLOTS=4096"}, {fixture("pl_exact"), "1000"});
  EXPECT_EQ(field(r.out, "capacity"), 4096) << why(r);
  EXPECT_EQ(field(r.out, "R"), LEAKWATCH_PRELOAD_DEFAULT_SAMPLE_BYTES);
}

TEST(Preload, OrdinaryProgramsRunUnchanged) {
  // A shell pipeline (fork, exec, pipes, sort's allocations) gives the same output.
  std::vector<std::string> cmd{"sh", "-c", "seq 1 20000 | sort -r | head -3 | tr '\\n' ' '"};
  auto plain = run_argv(cmd);
  auto traced = run_preloaded({"LEAKWATCH_SAMPLE_BYTES=4096"}, cmd, preload_library());
  EXPECT_EQ(traced.exit_code, 0) << why(traced);
  EXPECT_EQ(traced.out, plain.out);
  EXPECT_EQ(traced.out, "9999 9998 9997 ");
}

}  // namespace
}  // namespace leakwatch
