// 500 client connections at once through the proxy to one endpoint: every one authenticates and
// runs a query, and once they are closed argond's descriptors and memory are back at their
// baseline (nothing leaks per connection).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "harness.h"

namespace argon::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(ProxyLoadTest, FiveHundredConcurrentConnectionsLeaveNothingBehind) {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  ASSERT_GE(lim.rlim_cur, 2000u) << "needs 2000 file descriptors for 500 client connections";

  Argond a;
  const auto created = create_project(
      a, {{"name", "load"},
          {"default_endpoint_settings", {{"pg_settings", {{"max_connections", "600"}}}}}});
  const std::string& endpoint = created.endpoint;
  const std::string& password = created.password;
  const std::string info = fmt::format(
      "host=127.0.0.1 port={} dbname=neondb user=neondb_owner password={} sslmode=require "
      "options=endpoint={} connect_timeout=60",
      a.proxy_port(), password, endpoint);
  {
    auto c = PgConn::connect(info);
    ASSERT_TRUE(c) << c.error().message;
    auto max = c->exec("show max_connections");
    ASSERT_TRUE(max);
    ASSERT_EQ(max->value(), "600") << "the endpoint's pg_settings must reach the compute";
  }

  // Warm up (allocator pools, TLS session state), then take the baseline.
  auto round = [&](int clients, std::atomic<int>& ok, std::atomic<int>& peak_open) {
    std::mutex mu;
    std::condition_variable cv;
    int arrived = 0;
    std::atomic<int> open{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([&, i] {
        auto c = PgConn::connect(info);
        bool good = false;
        if (c) {
          auto v = c->exec(fmt::format("select {} + 1", i));
          good = v && v->value() == std::to_string(i + 1);
          peak_open = std::max(peak_open.load(), ++open);
        }
        // Hold every connection until all clients have tried, so they are open at the same time.
        std::unique_lock l(mu);
        ++arrived;
        cv.notify_all();
        cv.wait_for(l, 120s, [&] { return arrived == clients; });
        l.unlock();
        if (good) ++ok;
        if (c) --open;
      });
    }
    for (auto& t : threads) t.join();
  };
  std::atomic<int> warm_ok{0}, warm_peak{0};
  round(20, warm_ok, warm_peak);
  ASSERT_EQ(warm_ok.load(), 20);
  std::this_thread::sleep_for(500ms);
  const int fds_before = open_fds(a.pid());
  const long rss_before = rss_kb(a.pid());

  std::atomic<int> ok{0}, peak{0};
  round(500, ok, peak);
  EXPECT_EQ(ok.load(), 500);
  EXPECT_EQ(peak.load(), 500) << "all 500 connections were open at once";

  // Connections close asynchronously; give the proxy a moment, with a deadline.
  int fds_after = 0;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  do {
    std::this_thread::sleep_for(200ms);
    fds_after = open_fds(a.pid());
  } while (fds_after > fds_before && std::chrono::steady_clock::now() < deadline);
  long rss_after = rss_kb(a.pid());
  while (rss_bounds_apply() && rss_after - rss_before > 16 * 1024 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    rss_after = rss_kb(a.pid());
  }
  std::printf("argond: fds %d -> %d, RSS %ld kB -> %ld kB after 500 connections\n", fds_before,
              fds_after, rss_before, rss_after);
  EXPECT_LE(fds_after, fds_before);
  if (rss_bounds_apply()) {
    EXPECT_LT(rss_after - rss_before, 16 * 1024)
        << "more than 16 MB retained after the connections closed";
  }

  // A second round of 500 must not grow memory again (no per-connection leak).
  std::atomic<int> ok2{0}, peak2{0};
  round(500, ok2, peak2);
  EXPECT_EQ(ok2.load(), 500);
  long rss_second = rss_kb(a.pid());
  deadline = std::chrono::steady_clock::now() + 30s;
  while (rss_bounds_apply() && rss_second - rss_after > 8 * 1024 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    rss_second = rss_kb(a.pid());
  }
  std::printf("argond: RSS after a second round of 500: %ld kB\n", rss_second);
  if (rss_bounds_apply()) {
    EXPECT_LT(rss_second - rss_after, 8 * 1024)
        << "memory grew by more than 8 MB over another 500 connections";
  }
  for (int i = 0; i < 600 && open_fds(a.pid()) > fds_before; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_LE(open_fds(a.pid()), fds_before);
}

}  // namespace
}  // namespace argon::testing
