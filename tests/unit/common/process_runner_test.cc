#include "common/process_runner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

namespace argon {
namespace {

using namespace std::chrono_literals;

ProcessSpec shell(const std::string& script) { return {{"/bin/sh", "-c", script}, {}, {}, {}}; }

TEST(ProcessRunnerTest, RunGivesTheExitStatusOrTheSignal) {
  PosixProcessRunner runner;
  EXPECT_EQ(runner.run(shell("exit 0"), 10s).value(), 0);
  EXPECT_EQ(runner.run(shell("exit 3"), 10s).value(), 3);
  EXPECT_EQ(runner.run(shell("kill -TERM $$"), 10s).value(), 128 + SIGTERM);
}

TEST(ProcessRunnerTest, RunKillsAProcessThatOutlivesItsTimeout) {
  PosixProcessRunner runner;
  auto rc = runner.run(shell("exec sleep 30"), 200ms);
  ASSERT_FALSE(rc.has_value());
  EXPECT_NE(rc.error().message.find("did not finish"), std::string::npos) << rc.error().message;
}

TEST(ProcessRunnerTest, WaitForExitReapsAChildThatHasAlreadyExited) {
  PosixProcessRunner runner;
  auto pid = runner.spawn(shell("exit 5"));
  ASSERT_TRUE(pid.has_value());
  // Until it is reaped it stays a zombie: the wait finds it however long ago it exited.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, *pid, &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(wait_for_exit(*pid, 10s), 5);
}

TEST(ProcessRunnerTest, WaitForExitOfAChildReapedElsewhereEnds) {
  PosixProcessRunner runner;
  auto pid = runner.spawn(shell("exit 0"));
  ASSERT_TRUE(pid.has_value());
  int status = 0;
  ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
  EXPECT_EQ(wait_for_exit(*pid, 10s), -1);  // not a child any more: gone
}

TEST(ProcessRunnerTest, WaitForExitGivesUpAtItsDeadlineAndLeavesTheChildRunning) {
  PosixProcessRunner runner;
  auto pid = runner.spawn(shell("exec sleep 30"));
  ASSERT_TRUE(pid.has_value());
  EXPECT_EQ(wait_for_exit(*pid, 50ms), std::nullopt);
  ::kill(*pid, SIGKILL);
  EXPECT_EQ(wait_for_exit(*pid, 10s), 128 + SIGKILL);
}

}  // namespace
}  // namespace argon
