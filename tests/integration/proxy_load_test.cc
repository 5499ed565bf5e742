// 500 client connections at once through the proxy to one endpoint: every one authenticates and
// runs a query, and once they are closed argond's descriptors and memory are back at their
// baseline (nothing leaks per connection). And 100,000 connections that each name an endpoint
// that does not exist: each is refused, and argond keeps nothing of them.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

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

// A protocol 3.0 StartupMessage naming `endpoint` in the options parameter.
std::string startup_for(const std::string& endpoint) {
  std::string body;
  auto put32 = [](std::string& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  };
  put32(body, 196608);
  for (const std::string& kv :
       {std::string("user"), std::string("neondb_owner"), std::string("database"),
        std::string("neondb"), std::string("options"), "endpoint=" + endpoint}) {
    body += kv;
    body.push_back('\0');
  }
  body.push_back('\0');
  std::string packet;
  put32(packet, static_cast<uint32_t>(body.size() + 4));
  return packet + body;
}

TEST(ProxyLoadTest, UnknownEndpointNamesLeaveNothingBehind) {
  Argond a;
  // Plaintext startup packets (the proxy allows them on loopback): the point is the proxy's state,
  // not TLS handshakes. Each answer must be the endpoint's refusal, then the close.
  std::atomic<int> refused{0}, unexpected{0};
  std::atomic<long> next{0};
  auto send_unknown = [&](long count, long first) {
    next = first;
    std::vector<std::thread> clients;
    for (int t = 0; t < 8; ++t) {
      clients.emplace_back([&, t] {
        // Eight source addresses: the proxy closes first, so its TIME_WAIT sockets pile up per
        // client address and port.
        const std::string source = fmt::format("127.0.0.{}", 2 + t);
        for (long i = next++; i < first + count; i = next++) {
          int fd = tcp_connect(a.proxy_port(), source.c_str());
          if (fd < 0) {
            ++unexpected;
            continue;
          }
          const bool sent = send_all(fd, startup_for(fmt::format("ep-unknown-{}", i)));
          const std::string answer = sent ? read_all(fd, 30s) : "";
          ::close(fd);
          if (!answer.empty() && answer[0] == 'E' &&
              answer.find("does not exist") != std::string::npos) {
            ++refused;
          } else {
            ++unexpected;
          }
        }
      });
    }
    for (auto& c : clients) c.join();
  };

  // Warm up (allocator pools, catalog page cache), then take the baseline.
  send_unknown(2'000, 0);
  ASSERT_EQ(unexpected.load(), 0) << a.log_tail();
  std::this_thread::sleep_for(500ms);
  const long rss_before = rss_kb(a.pid());
  const int fds_before = open_fds(a.pid());

  // Under a sanitizer each connection costs ten times more and the memory bound does not apply;
  // a tenth of the names still runs every path.
  const long count = rss_bounds_apply() ? 100'000 : 10'000;
  const auto started = std::chrono::steady_clock::now();
  send_unknown(count, 1'000'000);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(unexpected.load(), 0) << a.log_tail();
  EXPECT_EQ(refused.load(), 2'000 + count);

  long rss_after = rss_kb(a.pid());
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (rss_bounds_apply() && rss_after - rss_before > 8 * 1024 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    rss_after = rss_kb(a.pid());
  }
  int fds_after = open_fds(a.pid());
  for (int i = 0; i < 600 && fds_after > fds_before; ++i) {
    std::this_thread::sleep_for(50ms);
    fds_after = open_fds(a.pid());
  }
  std::printf("argond: %ld unknown endpoint names in %.1f s; RSS %ld kB -> %ld kB, fds %d -> %d\n",
              count, seconds, rss_before, rss_after, fds_before, fds_after);
  EXPECT_LE(fds_after, fds_before);
  if (rss_bounds_apply()) {
    EXPECT_LT(rss_after - rss_before, 8 * 1024)
        << "argond kept more than 8 MB after refusing " << count << " unknown endpoint names";
  }
}

}  // namespace
}  // namespace argon::testing
