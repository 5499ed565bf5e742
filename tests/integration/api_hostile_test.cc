// The API under hostile clients: oversized bodies and headers, deeply nested JSON, slow-loris
// connections and 1,000 concurrent requests. Each gets a clean Neon-shaped 4xx or its answer,
// other clients keep being served, and argond's memory and descriptors stay bounded.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <thread>

#include "harness.h"

namespace argon::testing {
namespace {

using namespace std::chrono_literals;

int api_port(const Argond& a) { return std::stoi(a.api_url().substr(a.api_url().rfind(':') + 1)); }

// One request on its own connection ("Connection: close"); the raw answer.
std::string round_trip(int port, const std::string& request) {
  int fd = tcp_connect(port);
  if (fd < 0) return "";
  send_all(fd, request);
  std::string out = read_all(fd, 30s);
  ::close(fd);
  return out;
}

std::string request(const Argond& a, const std::string& method, const std::string& path,
                    const std::string& body, const std::string& extra_headers = "") {
  return fmt::format(
      "{} /api/v2{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{}",
      method, path, a.key(), body.size(), extra_headers, body);
}

// The JSON body of an HTTP answer, and its status.
std::pair<int, boost::json::value> parse(const std::string& raw) {
  if (raw.size() < 12) return {0, nullptr};
  const int status = std::stoi(raw.substr(9, 3));
  auto body = raw.find("\r\n\r\n");
  boost::system::error_code ec;
  auto v = boost::json::parse(raw.substr(body == std::string::npos ? raw.size() : body + 4), ec);
  return {status, ec ? boost::json::value() : v};
}

TEST(ApiHostileTest, OversizedDeepSlowAndManyClientsGetCleanAnswersWithinBounds) {
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);

  Argond a;
  const int port = api_port(a);
  auto p = create_project(a, {{"name", "hostile"}});
  const long rss_before = rss_kb(a.pid());
  const int fds_before = open_fds(a.pid());

  // Oversized body and headers: 413 with a Neon-shaped body, nothing created.
  auto [big_status, big_body] =
      parse(round_trip(port, request(a, "POST", "/projects", std::string(2 << 20, 'x'))));
  EXPECT_EQ(big_status, 413);
  EXPECT_TRUE(big_body.is_object() && big_body.as_object().contains("message"));
  auto [hdr_status, hdr_body] =
      parse(round_trip(port, request(a, "GET", "/projects", "",
                                     "X-Filler: " + std::string(64 << 10, 'h') + "\r\n")));
  EXPECT_EQ(hdr_status, 413);
  // Deeply nested JSON: 400, not a stack overflow.
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto [deep_status, deep_body] =
      parse(round_trip(port, request(a, "POST", "/projects", "{\"project\":" + deep + "}")));
  EXPECT_EQ(deep_status, 400);
  EXPECT_TRUE(deep_body.is_object() && deep_body.as_object().contains("message"));
  EXPECT_EQ(a.get("/projects").body.at("projects").as_array().size(), 1u) << "nothing was created";

  // Slow loris: 100 connections that never finish their headers. Others are still served, and
  // the server closes the slow ones at its read deadline (30 s).
  std::vector<int> slow;
  for (int i = 0; i < 100; ++i) {
    int fd = tcp_connect(port);
    ASSERT_GE(fd, 0);
    send_all(fd, "GET /api/v2/projects HTTP/1.1\r\nHost: x\r\n");
    slow.push_back(fd);
  }
  for (int i = 0; i < 5; ++i) {
    for (int fd : slow) send_all(fd, "X-a: b\r\n");
    EXPECT_EQ(a.get("/projects").status, 200) << "served while the slow clients dribble";
    std::this_thread::sleep_for(200ms);
  }
  int closed = 0;
  for (int fd : slow) {
    read_all(fd, 45s);  // returns when the server closes it
    pollfd pf{fd, POLLIN, 0};
    char c;
    closed += ::poll(&pf, 1, 0) == 1 && ::recv(fd, &c, 1, MSG_DONTWAIT) == 0;
    ::close(fd);
  }
  EXPECT_EQ(closed, 100) << "every slow connection was closed by the server";

  // 1,000 concurrent requests: every one answered.
  std::vector<int> many;
  for (int i = 0; i < 1000; ++i) {
    int fd = tcp_connect(port);
    ASSERT_GE(fd, 0) << "connection " << i;
    many.push_back(fd);
  }
  const std::string get = request(a, "GET", fmt::format("/projects/{}/branches", p.id), "");
  for (int fd : many) ASSERT_TRUE(send_all(fd, get));
  const long rss_peak = rss_kb(a.pid());
  int ok = 0;
  for (int fd : many) {
    ok += parse(read_all(fd, 60s)).first == 200;
    ::close(fd);
  }
  EXPECT_EQ(ok, 1000);

  // Bounded: descriptors back to where they were, memory not grown by more than a few dozen MB.
  int fds_after = 0;
  for (int i = 0; i < 100 && (fds_after = open_fds(a.pid())) > fds_before + 2; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_LE(fds_after, fds_before + 2) << "argond holds no descriptor of the closed clients";
  const long rss_after = rss_kb(a.pid());
  std::printf(
      "argond RSS: %ld kB before, %ld kB with 1,000 requests in flight, %ld kB after; fds %d -> "
      "%d\n",
      rss_before, rss_peak, rss_after, fds_before, fds_after);
  if (rss_bounds_apply()) {
    EXPECT_LT(rss_after - rss_before, 64 * 1024) << "kB";
  }
}

}  // namespace
}  // namespace argon::testing
