// ops/foreground.h: background readers wait while operations run, give up when told to stop, and
// are never held for good by a steady stream of operations.
#include "ops/foreground.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

namespace argon::ops {
namespace {

using namespace std::chrono_literals;

TEST(ForegroundTest, AReaderGoesOnAtOnceWhenNothingRuns) {
  Foreground f(1h);
  EXPECT_EQ(f.running(), 0);
  EXPECT_FALSE(f.pace());
  EXPECT_FALSE(f.pace([] { return false; }));
  EXPECT_TRUE(f.pace([] { return true; })) << "a stop asked for is passed on";
}

TEST(ForegroundTest, AReaderWaitsUntilTheRunningOperationsEnd) {
  Foreground f(1h);  // no give-up within the test: only the scope's end lets the reader go
  std::atomic<bool> ended{false}, read{false};
  std::optional<Foreground::Scope> op;
  op.emplace(f);
  EXPECT_EQ(f.running(), 1);
  std::thread reader([&] {
    EXPECT_FALSE(f.pace());
    EXPECT_TRUE(ended) << "the reader went on while the operation ran";
    read = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(read);
  ended = true;
  op.reset();
  reader.join();
  EXPECT_TRUE(read);
  EXPECT_EQ(f.running(), 0);
}

TEST(ForegroundTest, AWaitingReaderStopsWhenAskedTo) {
  Foreground f(1h);
  Foreground::Scope op(f);
  std::atomic<bool> stop{false};
  std::thread asker([&] {
    std::this_thread::sleep_for(50ms);
    stop = true;
  });
  EXPECT_TRUE(f.pace([&] { return stop.load(); }));
  asker.join();
}

TEST(ForegroundTest, OperationsWithoutEndDelayAReaderButNeverHoldIt) {
  Foreground f(20ms, 1h);
  Foreground::Scope op(f);
  EXPECT_FALSE(f.pace()) << "the wait gave up";
  // Then a window of reading: the next reads do not wait (no stop check in a wait slice).
  int checks = 0;
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(f.pace([&] { return ++checks, false; }));
  EXPECT_EQ(checks, 100) << "one stop check per read, none from waiting";
}

}  // namespace
}  // namespace argon::ops
