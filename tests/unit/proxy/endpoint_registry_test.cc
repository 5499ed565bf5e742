#include "proxy/endpoint_registry.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

#include "proxy/session.h"

namespace argon::proxy {
namespace {

using namespace std::chrono_literals;

class ManualClock final : public Clock {
 public:
  int64_t now_ms() const override { return now; }
  int64_t now = 1'000'000;
};

// The registry only compares and stores session pointers; it never calls into them. A distinct
// pointer per `n`, sharing an owner that is not a Session (the aliasing constructor), so no
// Session, socket or loop is needed.
std::shared_ptr<Session> token(int n) {
  static const auto owner = std::make_shared<std::vector<char>>(4096);
  return std::shared_ptr<Session>(owner, reinterpret_cast<Session*>(owner->data() + n));
}

TEST(EndpointRegistryTest, AConnectionThatNeverReachedAComputeLeavesNothingBehind) {
  ManualClock clock;
  EndpointRegistry r(clock);
  for (int i = 1; i <= 1000; ++i) {
    const std::string id = "ep-unknown-" + std::to_string(i);
    auto s = token(i);
    ASSERT_TRUE(r.try_join(id, s));
    EXPECT_EQ(r.size(), 1u);
    r.leave(id, s, /*reached_compute=*/false);
  }
  EXPECT_EQ(r.size(), 0u);
}

TEST(EndpointRegistryTest, AServedEndpointKeepsItsActivityUntilPruned) {
  ManualClock clock;
  EndpointRegistry r(clock);
  auto s = token(1);
  ASSERT_TRUE(r.try_join("ep-a", s));
  clock.now += 500;
  r.leave("ep-a", s, /*reached_compute=*/true);
  // Autosuspend reads the last activity after the last connection went.
  auto act = r.activity();
  ASSERT_TRUE(act.contains("ep-a"));
  EXPECT_EQ(act["ep-a"].connections, 0);
  EXPECT_EQ(act["ep-a"].last_active_ms, clock.now);
  EXPECT_EQ(r.prune(1min), 0u);  // not yet past the retention
  clock.now += 60'001;
  EXPECT_EQ(r.prune(1min), 1u);
  EXPECT_EQ(r.size(), 0u);
}

TEST(EndpointRegistryTest, PruneNeverTakesAnEntryInUse) {
  ManualClock clock;
  EndpointRegistry r(clock);
  auto s = token(1);
  ASSERT_TRUE(r.try_join("ep-open", s));
  r.gate("ep-gated");
  r.set_held({"ep-held"});
  clock.now += 3'600'000;
  EXPECT_EQ(r.prune(1min), 0u);
  EXPECT_EQ(r.size(), 3u);
  // The gate still stands after the janitor ran: new connections wait.
  EXPECT_FALSE(r.try_join("ep-gated", token(2)));
  r.ungate("ep-gated");
  r.set_held({});
  r.leave("ep-open", s, false);
  EXPECT_EQ(r.prune(1min), 2u);  // ep-gated and ep-held, idle and old; ep-open went at once
  EXPECT_EQ(r.size(), 0u);
}

TEST(EndpointRegistryTest, GatesNestAndTheHoldIsSeparate) {
  ManualClock clock;
  EndpointRegistry r(clock);
  r.gate("ep-a");
  r.gate("ep-a");
  r.ungate("ep-a");
  EXPECT_FALSE(r.try_join("ep-a", token(1)));
  r.ungate("ep-a");
  r.ungate("ep-a");  // an extra ungate is harmless
  r.set_held({"ep-a"});
  EXPECT_FALSE(r.try_join("ep-a", token(1)));
  r.set_held({});
  auto s = token(1);
  EXPECT_TRUE(r.try_join("ep-a", s));
  EXPECT_TRUE(r.any_joined("ep-a", {s}));
  EXPECT_FALSE(r.any_joined("ep-a", {token(2)}));
  EXPECT_EQ(r.sessions_of("ep-a").size(), 1u);
  // Another connection still joined keeps the entry when one that never reached a compute leaves.
  auto t = token(2);
  EXPECT_TRUE(r.try_join("ep-a", t));
  r.leave("ep-a", t, false);
  EXPECT_EQ(r.size(), 1u);
}

}  // namespace
}  // namespace argon::proxy
