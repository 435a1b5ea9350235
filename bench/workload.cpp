// A realistic allocation workload: what a small C++ service does between requests.
//
//   bench_workload ROUNDS
//
// Each round "handles a request": builds a text record with std::string and std::to_string,
// parses it back (split into a std::vector<std::string>, numbers with strtoll), updates a
// std::map and a std::unordered_map<std::string, std::vector<int>> that act as bounded
// caches (insert, look up, evict), sorts a vector of strings, and every 64th round
// compresses a generated 16 KiB text block with zlib and decompresses it again.
//
// The random stream has a fixed seed, so every run does exactly the same work and the same
// allocations; the printed checksum shows it.  Prints one line:
//   total_ns=T cpu_ns=C rounds=R checksum=X   (wall and process CPU time, see bench_start.h)
// The allocation count is deliberately not measured here (a counting operator new would
// change what is measured); bench/run.sh counts malloc-family calls once with bpftrace.
// The clock starts after the start signal (bench_start.h) and a warm-up of 200 rounds.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench_start.h"

namespace {

constexpr size_t kMapCap = 4096;
constexpr size_t kCompressBlock = 16 * 1024;

const char* const kWords[] = {
    "alpha", "bravo",  "charlie", "delta",   "echo",     "foxtrot", "golf",   "hotel",
    "india", "juliet", "kilo",    "lima",    "mike",     "november", "oscar", "papa",
    "quebec", "romeo", "sierra",  "tango",   "uniform",  "victor",  "whiskey", "xray",
    "yankee", "zulu",  "request", "session", "customer", "invoice", "payload", "header",
};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

struct State {
  std::mt19937_64 rng{20240607};
  std::map<std::string, int64_t> by_name;
  std::unordered_map<std::string, std::vector<int>> sessions;
  std::vector<std::string> recent;  // FIFO of keys, drives eviction
  uint64_t checksum = 0;
};

std::string make_record(State& st) {
  std::string line;
  int fields = 4 + static_cast<int>(st.rng() % 8);
  for (int f = 0; f < fields; f++) {
    if (f) line += ',';
    if (st.rng() % 3 == 0) {
      line += std::to_string(static_cast<int64_t>(st.rng() % 1000000) - 500000);
    } else {
      line += kWords[st.rng() % kNumWords];
      line += '_';
      line += kWords[st.rng() % kNumWords];
    }
  }
  return line;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

void handle_request(State& st) {
  std::string record = make_record(st);
  std::vector<std::string> fields = split(record, ',');

  int64_t sum = 0;
  std::string key;
  for (const auto& f : fields) {
    char* end = nullptr;
    long long v = std::strtoll(f.c_str(), &end, 10);
    if (end && *end == '\0' && !f.empty()) {
      sum += v;
    } else {
      if (!key.empty()) key += '/';
      key += f;
    }
  }
  if (key.empty()) key = "numbers/" + std::to_string(sum % 97);

  // Two bounded caches with churn: insert or update, then evict the oldest key.
  st.by_name[key] += sum;
  auto& ids = st.sessions[key];
  ids.push_back(static_cast<int>(sum & 0xffff));
  if (ids.size() > 32) ids.erase(ids.begin(), ids.begin() + 16);
  st.recent.push_back(key);
  if (st.recent.size() > kMapCap) {
    for (size_t i = 0; i < 256; i++) {
      st.by_name.erase(st.recent[i]);
      st.sessions.erase(st.recent[i]);
    }
    st.recent.erase(st.recent.begin(), st.recent.begin() + 256);
  }

  // A response: the fields sorted, joined into one string.
  std::sort(fields.begin(), fields.end());
  std::string response;
  for (const auto& f : fields) {
    response += f;
    response += ';';
  }
  st.checksum = st.checksum * 1099511628211ull + response.size() + static_cast<uint64_t>(sum);
}

void compress_round(State& st) {
  std::string text;
  text.reserve(kCompressBlock + 64);
  while (text.size() < kCompressBlock) {
    text += kWords[st.rng() % kNumWords];
    text += ' ';
    if (st.rng() % 8 == 0) text += std::to_string(st.rng() % 100000) + '\n';
  }
  uLongf packed_len = compressBound(text.size());
  std::vector<unsigned char> packed(packed_len);
  if (compress2(packed.data(), &packed_len, reinterpret_cast<const Bytef*>(text.data()),
                text.size(), 6) != Z_OK) {
    std::fprintf(stderr, "compress2 failed\n");
    std::exit(1);
  }
  std::vector<unsigned char> unpacked(text.size());
  uLongf unpacked_len = unpacked.size();
  if (uncompress(unpacked.data(), &unpacked_len, packed.data(), packed_len) != Z_OK ||
      unpacked_len != text.size() || std::memcmp(unpacked.data(), text.data(), text.size())) {
    std::fprintf(stderr, "zlib round trip failed\n");
    std::exit(1);
  }
  st.checksum = st.checksum * 1099511628211ull + packed_len;
}

void run(State& st, uint64_t rounds) {
  for (uint64_t r = 0; r < rounds; r++) {
    handle_request(st);
    if (r % 64 == 0) compress_round(st);
  }
}

// CLOCK_REALTIME, which a driver script can compare with `date +%s%N`.
uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  bench_block_start_signal();
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ROUNDS [CHUNKS]\n", argv[0]);
    return 1;
  }
  uint64_t rounds = std::strtoull(argv[1], nullptr, 10);
  if (rounds == 0) {
    std::fprintf(stderr, "ROUNDS must be positive\n");
    return 1;
  }
  State st;
  run(st, 200);  // warm-up: caches and heap grown before the clock runs
  if (argc >= 3) {
    // CHUNKS chunks of ROUNDS requests, one line each, for bench/inproc_attach.sh, which
    // attaches and detaches a tracer meanwhile and sorts the chunks by its windows.
    uint64_t chunks = std::strtoull(argv[2], nullptr, 10);
    std::fprintf(stderr, "ready\n");
    for (uint64_t i = 0; i < chunks; i++) {
      uint64_t r0 = realtime_ns(), c0 = bench_cpu_ns();
      run(st, rounds);
      uint64_t c1 = bench_cpu_ns(), r1 = realtime_ns();
      std::printf("chunk=%llu start_ns=%llu end_ns=%llu cpu_ns=%llu\n",
                  static_cast<unsigned long long>(i), static_cast<unsigned long long>(r0),
                  static_cast<unsigned long long>(r1), static_cast<unsigned long long>(c1 - c0));
      std::fflush(stdout);
    }
    std::printf("checksum=%016llx\n", static_cast<unsigned long long>(st.checksum));
    return 0;
  }
  bench_wait_start();
  uint64_t c0 = bench_cpu_ns();
  uint64_t t0 = bench_now_ns();
  run(st, rounds);
  uint64_t t1 = bench_now_ns();
  uint64_t c1 = bench_cpu_ns();
  std::printf("total_ns=%llu cpu_ns=%llu rounds=%llu checksum=%016llx\n",
              static_cast<unsigned long long>(t1 - t0), static_cast<unsigned long long>(c1 - c0),
              static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(st.checksum));
  return 0;
}
