// Kernel symbolization from kallsyms text: nearest function below, offsets, modules,
// data symbols and __pfx_ padding ignored, hidden addresses refused; and the real
// /proc/kallsyms when readable.
#include <gtest/gtest.h>
#include <unistd.h>

#include "symbolize/kallsyms.h"

namespace leakwatch::symbolize {
namespace {

constexpr const char* kText =
    "ffffffff81000000 T _stext\n"
    "ffffffff81200000 t __pfx_alloc_pipe_info\n"
    "ffffffff81200010 T alloc_pipe_info\n"
    "ffffffff81200100 D some_data\n"
    "ffffffff81200200 W weak_fn\n"
    "ffffffff81200400 T create_pipe_files\n"
    "ffffffffc0a00000 t ext4_fill_super\t[ext4]\n"
    "ffffffffc0a00800 T ext4_iget\t[ext4]\n"
    "ffffffffc0b00000 t xfs_init\t[xfs]\n"
    "garbage line\n";

TEST(Kallsyms, RangeOfAKernelFunctionEndsAtTheNextSymbol) {
  Kallsyms k = Kallsyms::Parse(kText);
  auto r = k.range("alloc_pipe_info");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, 0xffffffff81200010u);
  EXPECT_EQ(r->second, 0xffffffff81200200u);  // weak_fn (the data symbol is not indexed)
  EXPECT_FALSE(k.range("ext4_iget").has_value());  // a module's: not the kernel image
  EXPECT_FALSE(k.range("no_such_function").has_value());
}

TEST(Kallsyms, ResolvesFunctionOffsetAndModule) {
  Kallsyms k = Kallsyms::Parse(kText);
  EXPECT_EQ(k.size(), 7u);  // no data symbol, no __pfx_, no garbage
  auto s = k.resolve(0xffffffff8120005d);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->function, "alloc_pipe_info");
  EXPECT_EQ(s->offset, 0x4du);
  EXPECT_EQ(s->module, "[kernel]");
  // Past the data symbol: still the function before it (data symbols are not indexed).
  auto d = k.resolve(0xffffffff81200150);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->function, "alloc_pipe_info");
  EXPECT_EQ(k.resolve(0xffffffff81200200)->function, "weak_fn");
  EXPECT_EQ(k.resolve(0xffffffff81200200)->offset, 0u);
  // The padding before a function belongs to the one before it.
  EXPECT_EQ(k.resolve(0xffffffff81200008)->function, "_stext");
  auto m = k.resolve(0xffffffffc0a00810);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->function, "ext4_iget");
  EXPECT_EQ(m->offset, 0x10u);
  EXPECT_EQ(m->module, "ext4");
  EXPECT_EQ(k.resolve(0xffffffffc0b00004)->module, "xfs");
  EXPECT_FALSE(k.resolve(0xffffffff80000000).has_value());
}

TEST(Kallsyms, HiddenAddressesAreAnError) {
  char path[] = "/tmp/lw_kallsyms_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string hidden = "0000000000000000 T _stext\n0000000000000000 T alloc_pipe_info\n";
  ASSERT_EQ(::write(fd, hidden.data(), hidden.size()), static_cast<ssize_t>(hidden.size()));
  ::close(fd);
  auto k = Kallsyms::Load(path);
  ::unlink(path);
  ASSERT_FALSE(k.has_value());
  EXPECT_NE(k.error().message.find("hidden"), std::string::npos) << k.error().message;
}

TEST(Kallsyms, RealKallsymsWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "kallsyms addresses need root";
  auto k = Kallsyms::Load();
  ASSERT_TRUE(k.has_value()) << k.error().message;
  EXPECT_GT(k->size(), 10000u);
}

}  // namespace
}  // namespace leakwatch::symbolize
