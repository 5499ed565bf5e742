// API handlers run on a pool of their own (api/http_server.h), never on the I/O threads the proxy
// accepts on: a slow API call does not stall logins. Before, handlers ran on the I/O threads, so
// two slow PATCHes blocked every new connection on every endpoint until they returned.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "common/file_util.h"
#include "harness.h"

namespace argon::testing {
namespace {

using namespace std::chrono_literals;

int held(const Argond& a) {
  auto text = read_file(a.data_dir() / "argond.stdout");
  if (!text) return 0;
  int n = 0;
  for (size_t at = 0; (at = text->find("ARGON_DELAY_AT: holding", at)) != std::string::npos; ++at)
    ++n;
  return n;
}

TEST(ApiThreadsTest, LoginsKeepFlowingWhileSlowApiCallsRun) {
  // Every pg_settings check (postgres -C, outside the catalog transaction) takes 8 s longer.
  ::setenv("ARGON_DELAY_AT", "settings.checked:8000", 1);
  Argond a;
  ::unsetenv("ARGON_DELAY_AT");
  const TestProject p = create_project(a, {{"name", "threads"}});
  ASSERT_EQ(query_value(p.uri, "SELECT 1"), "1");  // the compute runs: logins need no wake

  // As many slow PATCHes at once as argond has I/O threads (one per core, at least 2), up to the
  // handler pool's 4.
  const int kSlow = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 2, 4);
  std::atomic<int> answered{0};
  std::vector<int> statuses(kSlow, 0);
  std::vector<std::jthread> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back([&, i] {
      auto r = a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint),
                      R"({"endpoint":{"settings":{"pg_settings":{"work_mem":"8MB"}}}})");
      statuses[i] = r.status;
      answered++;
    });
  }
  for (int i = 0; i < 400 && held(a) < kSlow; ++i) std::this_thread::sleep_for(25ms);
  ASSERT_EQ(held(a), kSlow) << a.log_tail();

  // While both are held, new clients log in and get answers.
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(query_value(p.uri, fmt::format("SELECT {}", i)), std::to_string(i));
  EXPECT_EQ(answered.load(), 0) << "the logins waited for the slow API calls";

  for (auto& t : slow) t.join();
  for (int s : statuses) EXPECT_EQ(s, 200);
}

}  // namespace
}  // namespace argon::testing
