// Call frame information of an object (.eh_frame, .eh_frame_hdr, .debug_frame) as the
// unwinder reads it: rows looked up across the object's executable segments, each row
// then applied (step) to registers and stack memory taken from the input; and the
// frame-pointer judgement that --unwind auto makes from the same CFI.
#include <gelf.h>
#include <libelf.h>

#include <cstring>
#include <vector>

#include "fuzz_support.h"
#include "unwind/cfi_rules.h"
#include "unwind/frame_pointers.h"
#include "unwind/object_cfi.h"

namespace {

using namespace leakwatch;

// Memory of the unwound "process": the input's bytes repeated from address 0x7ff000000000.
class InputMemory : public unwind::MemoryReader {
 public:
  InputMemory(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool read(uint64_t address, void* out, size_t n) override {
    constexpr uint64_t kBase = 0x7ff000000000;
    if (size_ == 0 || address < kBase || address - kBase > (1u << 20) || n > 8) return false;
    auto* o = static_cast<uint8_t*>(out);
    for (size_t i = 0; i < n; ++i) o[i] = data_[(address - kBase + i) % size_];
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

// Addresses to look rows up at: spread over each executable PT_LOAD segment.
std::vector<uint64_t> lookup_addresses(int fd) {
  std::vector<uint64_t> out;
  ::elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr) return out;
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) == 0) {
    for (size_t i = 0; i < phnum && i < 16; ++i) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD ||
          (ph.p_flags & PF_X) == 0)
        continue;
      constexpr uint64_t kPoints = 64;
      uint64_t stride = ph.p_memsz / kPoints + 1;
      for (uint64_t k = 0; k < kPoints; ++k) out.push_back(ph.p_vaddr + k * stride);
    }
  }
  elf_end(elf);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::MemFile file(data, size);
  if (!file.valid()) return 0;
  // The path names a directory that does not exist, so a .gnu_debuglink from the input
  // is looked for only under /usr/lib/debug.
  auto obj = unwind::ObjectCfi::Open(file.dup(), "/nonexistent-fuzz/object", "", true);
  if (obj) {
    InputMemory mem(data, size);
    unwind::RegisterSet regs;
    for (int r = 0; r < unwind::kNumRegs; ++r) regs.set(r, 0x7ff000000100 + 8 * r);
    for (uint64_t a : lookup_addresses(file.fd())) {
      std::string error;
      const unwind::UnwindRow* row = (*obj)->row_for(a, &error);
      if (row == nullptr) continue;
      auto st = unwind::step(*row, regs, mem);
      if (!st) (void)unwind::describe(st.error());
    }
    (void)(*obj)->has_eh_frame();
  }
  (void)unwind::check_frame_pointers(file.path(), 64);
  return 0;
}
