// The libbpf lifecycle pieces every BPF object of leakwatch shares (memleak, growth, kernel
// memleak): move-only owners for links and ring buffers (each skeleton has its own
// deleter, as its __destroy is generated inline), and the map readers
// they all need (per-CPU counters, programs' run statistics), so that each probe keeps only
// what is its own (what to configure, what to attach, how to read its maps).
//
// Thread-safety: each owner is used by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

struct bpf_link;
struct bpf_object;
struct bpf_object_open_opts;
struct ring_buffer;

namespace leakwatch::probe {

// A libbpf link (classic uprobe, tracepoint), detached when destroyed.
class BpfLink {
 public:
  BpfLink() = default;
  explicit BpfLink(bpf_link* l) : link_(l) {}
  BpfLink(BpfLink&& o) noexcept;
  BpfLink& operator=(BpfLink&& o) noexcept;
  BpfLink(const BpfLink&) = delete;
  BpfLink& operator=(const BpfLink&) = delete;
  ~BpfLink();
  bool valid() const { return link_ != nullptr; }

 private:
  bpf_link* link_ = nullptr;
};

// A BPF ring buffer map's consumer.  Records are handed to the callback given to consume()
// or poll() (the record and its length); nothing is kept between calls.
class RingBuffer {
 public:
  using Handler = std::function<void(const void* data, size_t len)>;
  // `what` names the ring in the error ("the trace ring buffer").
  [[nodiscard]] static Result<std::unique_ptr<RingBuffer>> Open(int map_fd, const std::string& what);
  ~RingBuffer();
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;

  // Consumes what is waiting without blocking; returns the records consumed or -errno.
  int consume(const Handler& h);
  // Waits up to timeout_ms for records (the producer must wake the consumer), consumes them.
  int poll(int timeout_ms, const Handler& h);
  // Readable when the producer asked for a wakeup.
  int epoll_fd() const;

 private:
  RingBuffer() = default;
  static int dispatch(void* ctx, void* data, size_t len);
  ring_buffer* rb_ = nullptr;
  const Handler* handler_ = nullptr;
};

// Options for a skeleton's __open_opts: a custom kernel BTF file when `btf_path` is set.
// The returned struct points into `btf_path`, which must outlive the open call.
void set_btf_path(bpf_object_open_opts& opts, const std::string& btf_path);

// The error for a failed __load (`err` is libbpf's negative errno): what failed, why, and
// a hint where one applies (no BTF, no permission, maps too large for the memory limit).
Error load_error(const std::string& what, int err, const std::string& btf_path);

// Sums a per-CPU array of u64 counters (index i -> one value per possible CPU).
std::vector<uint64_t> sum_percpu_counters(int map_fd, uint32_t count);
template <size_t N>
std::array<uint64_t, N> sum_percpu_counters(int map_fd) {
  std::array<uint64_t, N> out{};
  std::vector<uint64_t> v = sum_percpu_counters(map_fd, static_cast<uint32_t>(N));
  for (size_t i = 0; i < N; i++) out[i] = v[i];
  return out;
}

// Run time and count of one BPF program (kept by the kernel while kernel.bpf_stats_enabled
// is set, or while a bpf_enable_stats descriptor is open).
struct ProgramRunStats {
  std::string program;
  uint64_t run_time_ns = 0;
  uint64_t run_cnt = 0;
};
std::vector<ProgramRunStats> program_run_stats(const bpf_object* obj);

// Every entry of a hash map, as raw key and value bytes: batch lookups where the kernel has
// them for the map type, else a walk of the keys (entries deleted meanwhile are skipped).
struct RawEntries {
  std::vector<uint8_t> keys, values;  // count x key_size, count x value_size
  size_t count = 0;
};
[[nodiscard]] Result<RawEntries> read_hash_map(int map_fd, size_t key_size, size_t value_size,
                                               const std::string& what);

// The same, typed.
template <typename K, typename V>
Result<std::vector<std::pair<K, V>>> read_hash_map(int map_fd, const std::string& what) {
  auto raw = read_hash_map(map_fd, sizeof(K), sizeof(V), what);
  if (!raw) return std::unexpected(raw.error());
  std::vector<std::pair<K, V>> out(raw->count);
  for (size_t i = 0; i < raw->count; i++) {
    std::memcpy(&out[i].first, raw->keys.data() + i * sizeof(K), sizeof(K));
    std::memcpy(&out[i].second, raw->values.data() + i * sizeof(V), sizeof(V));
  }
  return out;
}

// log2 of the page size (12 when it cannot be read): what the BPF side shifts by.
uint32_t page_shift();

// The frames of a stack map entry (an array of `depth` u64 instruction pointers, ended by
// a zero), innermost first; empty when the id is unknown.
std::vector<uint64_t> read_stack_ips(int map_fd, const void* key, uint32_t depth);

}  // namespace leakwatch::probe
