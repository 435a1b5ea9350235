#include "probe/bpf_handles.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace leakwatch::probe {

BpfLink::BpfLink(BpfLink&& o) noexcept : link_(std::exchange(o.link_, nullptr)) {}

BpfLink& BpfLink::operator=(BpfLink&& o) noexcept {
  if (this != &o) {
    if (link_) bpf_link__destroy(link_);
    link_ = std::exchange(o.link_, nullptr);
  }
  return *this;
}

BpfLink::~BpfLink() {
  if (link_) bpf_link__destroy(link_);
}

Result<std::unique_ptr<RingBuffer>> RingBuffer::Open(int map_fd, const std::string& what) {
  std::unique_ptr<RingBuffer> r(new RingBuffer());
  r->rb_ = ring_buffer__new(map_fd, &RingBuffer::dispatch, r.get(), nullptr);
  if (!r->rb_) return fail_errno("cannot open " + what);
  return r;
}

RingBuffer::~RingBuffer() {
  if (rb_) ring_buffer__free(rb_);
}

int RingBuffer::dispatch(void* ctx, void* data, size_t len) {
  auto* self = static_cast<RingBuffer*>(ctx);
  if (self->handler_ && *self->handler_) (*self->handler_)(data, len);
  return 0;
}

int RingBuffer::consume(const Handler& h) {
  handler_ = &h;
  int n = ring_buffer__consume(rb_);
  handler_ = nullptr;
  return n;
}

int RingBuffer::poll(int timeout_ms, const Handler& h) {
  handler_ = &h;
  int n = ring_buffer__poll(rb_, timeout_ms);
  handler_ = nullptr;
  return n;
}

int RingBuffer::epoll_fd() const { return ring_buffer__epoll_fd(rb_); }

void set_btf_path(bpf_object_open_opts& opts, const std::string& btf_path) {
  if (!btf_path.empty()) opts.btf_custom_path = btf_path.c_str();
}

Error load_error(const std::string& what, int err, const std::string& btf_path) {
  int e = err < 0 ? -err : err;
  std::string hint;
  if (e == EPERM || e == EACCES)
    hint = " (needs root: CAP_BPF and CAP_PERFMON)";
  else if (e == E2BIG || e == ENOMEM)
    hint = " (the maps do not fit: lower --max-allocs/--max-stacks, or raise the locked-memory "
           "limit)";
  else if (e == ESRCH || e == ENOENT || e == EINVAL)
    hint = btf_path.empty() ? " (is BTF at /sys/kernel/btf/vmlinux?)"
                            : fmt::format(" (is {} this kernel's BTF?)", btf_path);
  return Error{fmt::format("cannot load {}: {}{}", what, std::strerror(e), hint), e};
}

std::vector<uint64_t> sum_percpu_counters(int map_fd, uint32_t count) {
  std::vector<uint64_t> out(count, 0);
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> vals(static_cast<size_t>(ncpu > 0 ? ncpu : 1));
  for (uint32_t i = 0; i < count; i++) {
    if (bpf_map_lookup_elem(map_fd, &i, vals.data()) != 0) continue;
    for (uint64_t v : vals) out[i] += v;
  }
  return out;
}

std::vector<ProgramRunStats> program_run_stats(const bpf_object* obj) {
  std::vector<ProgramRunStats> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    int fd = bpf_program__fd(prog);
    if (fd < 0) continue;  // not loaded (autoload off)
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
      out.push_back({bpf_program__name(prog), info.run_time_ns, info.run_cnt});
  }
  return out;
}

Result<RawEntries> read_hash_map(int map_fd, size_t key_size, size_t value_size,
                                 const std::string& what) {
  RawEntries out;
  constexpr uint32_t kChunk = 8192;
  std::vector<uint8_t> keys(kChunk * key_size), values(kChunk * value_size), batch(key_size);
  void* in = nullptr;
  auto append = [&](const uint8_t* k, const uint8_t* v, size_t n) {
    out.keys.insert(out.keys.end(), k, k + n * key_size);
    out.values.insert(out.values.end(), v, v + n * value_size);
    out.count += n;
  };
  for (;;) {
    uint32_t n = kChunk;
    int err = bpf_map_lookup_batch(map_fd, in, batch.data(), keys.data(), values.data(), &n, nullptr);
    int e = err ? errno : 0;
    append(keys.data(), values.data(), n);
    if (!err) {
      in = batch.data();
      continue;
    }
    if (e == ENOENT) return out;
    if (e != EINVAL && e != ENOTSUP && e != EOPNOTSUPP) return fail_errno("cannot read " + what, e);
    break;
  }
  // No batch operations for this map: walk the keys.
  out = RawEntries{};
  std::vector<uint8_t> key(key_size), next(key_size), value(value_size);
  void* prev = nullptr;
  while (bpf_map_get_next_key(map_fd, prev, next.data()) == 0) {
    if (bpf_map_lookup_elem(map_fd, next.data(), value.data()) == 0) append(next.data(), value.data(), 1);
    key = next;
    prev = key.data();
  }
  return out;
}

uint32_t page_shift() {
  long page = ::sysconf(_SC_PAGESIZE);
  uint32_t shift = 0;
  while (page > 1) {
    page >>= 1;
    shift++;
  }
  return shift ? shift : 12;
}

std::vector<uint64_t> read_stack_ips(int map_fd, const void* key, uint32_t depth) {
  std::vector<uint64_t> ips(depth, 0);
  if (bpf_map_lookup_elem(map_fd, key, ips.data()) != 0) return {};
  auto end = std::find(ips.begin(), ips.end(), 0);
  ips.erase(end, ips.end());
  return ips;
}

}  // namespace leakwatch::probe
