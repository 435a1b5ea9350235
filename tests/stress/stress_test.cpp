// The long versions of the fault and load tests (make stress; tests/e2e/faults_test.cpp
// and agent_faults_test.cpp run short slices of the same scenarios in make test).
#include <gtest/gtest.h>

#include "support/memleak_run.h"
#include "support/scenarios.h"

namespace leakwatch::testing {
namespace {

class Stress : public BpfTest {};

TEST_F(Stress, ThousandAttachDetachCycles) { memleak_attach_detach_cycles(1000); }

TEST_F(Stress, ThousandAgentInvestigations) { agent_investigation_cycles(1000); }

TEST_F(Stress, ForkExecThousandTimes) { fork_exec_loop(1000); }

TEST_F(Stress, DlopenDlcloseTwoThousandTimes) { dlopen_dlclose_loop(2000); }

TEST_F(Stress, SixteenThreadsMillionsOfCrossThreadFrees) { cross_thread_frees(16, 100000); }

TEST_F(Stress, HundredTargetsForFiveMinutes) { agent_many_targets(100, 300); }

}  // namespace
}  // namespace leakwatch::testing
