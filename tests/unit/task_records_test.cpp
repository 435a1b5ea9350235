// The task iterator's record stream (bpf/task_iter.h) parsed without BPF: threads folded
// into their process, both RSS figures, truncated and unknown records refused.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "bpf/task_iter.h"
#include "metrics/task_iter.h"

namespace leakwatch::metrics {
namespace {

void put(std::string& out, const void* rec, size_t size) {
  out.append(static_cast<const char*>(rec), size);
}

lw_ti_process process(uint32_t tgid, const char* comm) {
  lw_ti_process p{};
  p.kind = LW_TI_KIND_PROCESS;
  p.tgid = tgid;
  p.ppid = 1;
  p.nr_threads = 3;
  p.start_boottime_ns = 12'345'678'900;  // 1234 ticks of 10 ms
  p.cgroup_id = 4242;
  p.pages_sum[LW_TI_FILEPAGES] = 100;
  p.pages_sum[LW_TI_ANONPAGES] = 250;
  p.pages_sum[LW_TI_SWAPENTS] = 7;
  p.pages_sum[LW_TI_SHMEMPAGES] = 3;
  p.pages_count[LW_TI_FILEPAGES] = 96;
  p.pages_count[LW_TI_ANONPAGES] = 224;
  p.pages_count[LW_TI_SWAPENTS] = 7;
  p.pages_count[LW_TI_SHMEMPAGES] = -2;  // a count can run below zero before its CPUs fold
  p.total_vm = 5000;
  p.min_flt = 10;
  p.maj_flt = 1;
  p.cpu_ns = 2'000'000'000;
  std::strncpy(p.comm, comm, sizeof p.comm - 1);
  return p;
}

lw_ti_thread thread(uint32_t tgid, uint64_t flt, uint64_t cpu_ns) {
  lw_ti_thread t{};
  t.kind = LW_TI_KIND_THREAD;
  t.tgid = tgid;
  t.min_flt = flt;
  t.maj_flt = 2;
  t.cpu_ns = cpu_ns;
  return t;
}

TEST(TaskRecords, ThreadsFoldIntoTheirProcessInEitherOrder) {
  std::string data;
  auto t1 = thread(300, 5, 500'000'000);
  put(data, &t1, sizeof t1);  // before its leader: a thread can have the lower pid
  auto p = process(300, "server");
  put(data, &p, sizeof p);
  auto t2 = thread(300, 7, 250'000'000);
  put(data, &t2, sizeof t2);
  auto q = process(200, "sidecar");
  put(data, &q, sizeof q);
  auto orphan = thread(999, 1, 1);
  put(data, &orphan, sizeof orphan);

  std::vector<TaskEntry> out;
  TaskScanStats st;
  ASSERT_TRUE(parse_task_records(data.data(), data.size(), 4096, RssFigure::kSum, out, st));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(st.processes, 2u);
  EXPECT_EQ(st.threads, 3u);
  EXPECT_EQ(st.orphan_threads, 1u);
  EXPECT_EQ(out[0].sample.pid, 200);  // pid order
  const ProcessSample& s = out[1].sample;
  EXPECT_EQ(s.pid, 300);
  EXPECT_EQ(s.comm, "server");
  EXPECT_EQ(s.minflt, 10u + 5 + 7);
  EXPECT_EQ(s.majflt, 1u + 2 + 2);
  EXPECT_EQ(s.cpu_ticks, 275u);  // 2.75 s at 100 ticks a second
  EXPECT_EQ(s.start_time_ticks, 1234u);
  EXPECT_EQ(s.anon, 250u * 4096);
  EXPECT_EQ(s.file, 100u * 4096);
  EXPECT_EQ(s.shmem, 3u * 4096);
  EXPECT_EQ(s.swap, 7u * 4096);
  EXPECT_EQ(s.rss, (250u + 100 + 3) * 4096);
  EXPECT_EQ(s.vsz, 5000u * 4096);
  EXPECT_EQ(s.threads, 3);
  EXPECT_EQ(out[1].cgroup_id, 4242u);
  EXPECT_EQ(out[1].ppid, 1);
}

TEST(TaskRecords, CountFigureClampsNegativeCounters) {
  std::string data;
  auto p = process(1, "init");
  put(data, &p, sizeof p);
  std::vector<TaskEntry> out;
  TaskScanStats st;
  ASSERT_TRUE(parse_task_records(data.data(), data.size(), 4096, RssFigure::kCount, out, st));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].sample.anon, 224u * 4096);
  EXPECT_EQ(out[0].sample.shmem, 0u);  // /proc shows a negative counter as 0
  EXPECT_EQ(out[0].sample.rss, (224u + 96) * 4096);
}

TEST(TaskRecords, TruncatedAndUnknownRecordsAreErrors) {
  std::string data;
  auto p = process(1, "init");
  put(data, &p, sizeof p);
  std::vector<TaskEntry> out;
  TaskScanStats st;
  EXPECT_FALSE(parse_task_records(data.data(), data.size() - 1, 4096, RssFigure::kSum, out, st));
  uint32_t bogus = 77;
  std::string bad(reinterpret_cast<const char*>(&bogus), sizeof bogus);
  bad.append(60, '\0');
  auto r = parse_task_records(bad.data(), bad.size(), 4096, RssFigure::kSum, out, st);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("unknown record kind 77"), std::string::npos);
  ASSERT_TRUE(parse_task_records(nullptr, 0, 4096, RssFigure::kSum, out, st));
  EXPECT_TRUE(out.empty());
}

TEST(TaskRecords, ProcStatusFigureByRelease) {
  EXPECT_EQ(proc_status_figure("6.18.44-fc-v1272"), RssFigure::kSum);
  EXPECT_EQ(proc_status_figure("6.16.0"), RssFigure::kSum);
  EXPECT_EQ(proc_status_figure("6.15.9-arch1"), RssFigure::kCount);
  EXPECT_EQ(proc_status_figure("5.15.0-91-generic"), RssFigure::kCount);
  EXPECT_EQ(proc_status_figure("7.0.0"), RssFigure::kSum);
}

}  // namespace
}  // namespace leakwatch::metrics
