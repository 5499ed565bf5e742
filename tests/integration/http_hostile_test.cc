// Hostile input on the proxy's HTTP side (SQL over HTTP and the WebSocket upgrade), spoken by hand
// over plaintext HTTP on loopback (the same parser and handlers as over TLS): malformed JSON, an
// oversized body, a result over the response limit, hundreds of concurrent queries, requests that
// never finish (slow-loris) and a WebSocket that sends garbage. Each gets a clear error or a closed
// connection; argond keeps serving, and its descriptors (and, outside sanitizers, its memory) come
// back to where they were.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <thread>
#include <vector>

#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class HttpHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    project_ = create_project(a_, {{"name", "hostile"}});
    // The connection string as the driver sends it: the endpoint in its host name.
    uri_ = fmt::format("postgresql://neondb_owner:{}@{}.localhost/neondb", project_.password,
                       project_.endpoint);
    ASSERT_EQ(http_exchange(a_.proxy_port(), post_sql(uri_, R"({"query":"select 1"})")).status, 200)
        << a_.log_tail();
  }
  void expect_serving() {
    auto r = http_exchange(a_.proxy_port(), post_sql(uri_, R"({"query":"select 'still here'"})"));
    EXPECT_EQ(r.status, 200) << json::serialize(r.body);
  }

  Argond a_;
  TestProject project_;
  std::string uri_;
};

TEST_F(HttpHostileTest, MalformedRequestsGetJsonErrorsThatSayWhatIsWrong) {
  const int port = a_.proxy_port();
  struct Case {
    std::string request;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {post_sql(uri_, "{not json"), 400, "could not parse the HTTP request body"},
      {post_sql(uri_, R"({"query": 42})"), 400, "\"query\" string"},
      {post_sql(uri_, R"({"query":"select $1","params":{"a":1}})"), 400, "\"params\" must be"},
      {post_sql(uri_, R"({"queries":"select 1"})"), 400, "\"queries\" must be an array"},
      {post_sql("", R"({"query":"select 1"})"), 400, "neon-connection-string"},
      {post_sql("mysql://u:p@ep-x.localhost/db", R"({"query":"select 1"})"), 400,
       "incorrect scheme"},
      {post_sql("postgresql://neondb_owner@" + project_.endpoint + ".localhost/neondb",
                R"({"query":"select 1"})"),
       400, "required password"},
      {post_sql("postgresql://neondb_owner:x@127.0.0.1/neondb", R"({"query":"select 1"})"), 400,
       "missing hostname"},
      // An empty query before a fragment: Boost.URL 1.81 runs off its end if asked for params
      // (found by tests/fuzz/http_request_fuzz.cc; it took argond down).
      {post_sql("postgresql://neondb_owner:x@127.0.0.1/neondb?#options=x",
                R"({"query":"select 1"})"),
       400, "missing hostname"},
      {"GET /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, "not supported"},
      {"BREW /sql HTCPCP/1.0\r\n\r\n", 400, "malformed HTTP request"},
  };
  for (const auto& c : cases) {
    auto r = http_exchange(port, c.request);
    EXPECT_EQ(r.status, c.status) << c.request.substr(0, 80);
    EXPECT_NE(message(r).find(c.says), std::string::npos)
        << "answer to " << c.request.substr(0, 80) << ": " << json::serialize(r.body);
  }
  // A batch header that names no isolation level.
  std::string bad_level = post_sql(uri_, R"({"queries":[]})");
  bad_level.insert(bad_level.find("\r\n") + 2, "Neon-Batch-Isolation-Level: Sometimes\r\n");
  EXPECT_EQ(message(http_exchange(port, bad_level)).find("invalid isolation level"), 0u);

  // Wrong passwords while a pooled connection waits (its reset runs during the check): each is
  // the password error, the pooled connection stays usable, and no backend piles up.
  const std::string wrong =
      fmt::format("postgresql://neondb_owner:wrong@{}.localhost/neondb", project_.endpoint);
  const int fds_before = open_fds(a_.pid());
  for (int i = 0; i < 20; ++i) {
    auto r = http_exchange(port, post_sql(wrong, R"({"query":"select 1"})"));
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(message(r).find("password authentication failed"), std::string::npos)
        << json::serialize(r.body);
    expect_serving();
  }
  EXPECT_LE(open_fds(a_.pid()), fds_before + 2);
  expect_serving();
}

TEST_F(HttpHostileTest, AnOversizedBodyIs413AndAnOversizedResultIs507) {
  const int port = a_.proxy_port();
  // The length alone is over the limit: refused before the body is read.
  auto big =
      http_exchange(port, "POST /sql HTTP/1.1\r\nHost: x\r\nContent-Length: 11534336\r\n\r\n{");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(message(big).find("request is too large (max is 10485760 bytes)"), std::string::npos)
      << json::serialize(big.body);
  // 20 MB of rows.
  auto huge = http_exchange(
      port,
      post_sql(uri_, R"q({"query":"select repeat('x', 1000) from generate_series(1, 20000)"})q"));
  EXPECT_EQ(huge.status, 507);
  EXPECT_NE(message(huge).find("response is too large"), std::string::npos)
      << json::serialize(huge.body);
  expect_serving();
}

TEST_F(HttpHostileTest, HundredsOfConcurrentQueriesEachGetAnAnswerAndLeaveNothingBehind) {
  const int port = a_.proxy_port();
  const int fds_before = open_fds(a_.pid());
  const long rss_before = rss_kb(a_.pid());
  constexpr int kClients = 400;
  // Every fourth client names a role of its own that does not exist: each needs a password check
  // of its own on the compute, and each gets the password error, however many arrive at once.
  const auto ghost = [](int i) { return i % 4 == 3; };
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    const int fd = tcp_connect(port, i % 2 ? "127.0.0.2" : "127.0.0.3");
    ASSERT_GE(fd, 0) << "client " << i << " cannot connect\n" << a_.log_tail();
    const std::string uri =
        ghost(i) ? fmt::format("postgresql://ghost{}:x@{}.localhost/neondb", i, project_.endpoint)
                 : uri_;
    send_all(fd, post_sql(uri, R"({"query":"select pg_sleep(0.2), 1"})"));
    fds.push_back(fd);
  }
  int ok = 0, refused = 0, denied = 0;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    const int fd = fds[i];
    const std::string raw = read_all(fd, 60s);
    ::close(fd);
    ASSERT_EQ(raw.rfind("HTTP/1.1 ", 0), 0u)
        << "no HTTP answer for client " << i << ": " << raw.substr(0, 200) << a_.log_tail();
    const int status = std::atoi(raw.c_str() + 9);
    if (ghost(static_cast<int>(i))) {
      EXPECT_EQ(status, 400) << raw.substr(0, 400);
      EXPECT_NE(raw.find("\"code\":\"28P01\""), std::string::npos) << raw.substr(0, 400);
      ++denied;
    } else if (status == 200) {
      ++ok;
    } else {
      // More than the compute's max_connections at once: PostgreSQL's refusal (400, 53300), or a
      // login the compute cut short (503), each a JSON error the driver raises.
      ++refused;
      const bool too_many = status == 400 && raw.find("\"code\":\"53300\"") != std::string::npos;
      const bool retry = status == 503 && raw.find("try again") != std::string::npos;
      EXPECT_TRUE(too_many || retry) << raw.substr(0, 400);
    }
  }
  std::printf("%d concurrent HTTP queries: %d answered, %d refused, %d wrong roles denied\n",
              kClients, ok, refused, denied);
  EXPECT_GT(ok, 0);
  expect_serving();
  // Idle pooled backends stay (at most 20 per endpoint and loop); client sockets are all gone.
  int fds_after = open_fds(a_.pid());
  for (int i = 0; i < 200 && fds_after > fds_before + 80; ++i) {
    std::this_thread::sleep_for(50ms);
    fds_after = open_fds(a_.pid());
  }
  std::printf("argond: fds %d -> %d, RSS %ld kB -> %ld kB\n", fds_before, fds_after, rss_before,
              rss_kb(a_.pid()));
  EXPECT_LE(fds_after, fds_before + 80);
  if (rss_bounds_apply()) EXPECT_LT(rss_kb(a_.pid()), rss_before + 64 * 1024);
}

TEST_F(HttpHostileTest, RequestsThatNeverFinishAreClosedAndGarbageWebSocketsToo) {
  const int port = a_.proxy_port();
  const int fds_before = open_fds(a_.pid());
  std::vector<int> slow;
  for (int i = 0; i < 100; ++i) {
    const int fd = tcp_connect(port, "127.0.0.4");
    ASSERT_GE(fd, 0);
    // Half a request: headers that never end, or a body that never comes.
    send_all(fd, i % 2 ? "POST /sql HTTP/1.1\r\nHost: x\r\nNeon-Conn"
                       : "POST /sql HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
    slow.push_back(fd);
  }
  // WebSockets that send garbage after the upgrade: not a WebSocket frame, and a frame that is not
  // masked (a client's must be).
  for (const std::string garbage : {std::string(64, '\xff'), std::string("\x82\x05hello", 7)}) {
    const int fd = tcp_connect(port);
    ASSERT_GE(fd, 0);
    send_all(fd,
             fmt::format("GET /v2 HTTP/1.1\r\nHost: {}.localhost\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         project_.endpoint));
    std::this_thread::sleep_for(100ms);
    send_all(fd, garbage);
    const std::string raw = read_all(fd, 20s);
    ::close(fd);
    EXPECT_EQ(raw.rfind("HTTP/1.1 101", 0), 0u) << raw.substr(0, 200);
  }
  // Each slow request is closed once the handshake timeout (15 s) has passed since its first byte.
  for (int fd : slow) {
    const std::string raw = read_all(fd, 30s);
    EXPECT_EQ(raw.find("200 OK"), std::string::npos);
    ::close(fd);
  }
  expect_serving();
  int fds_after = open_fds(a_.pid());
  for (int i = 0; i < 200 && fds_after > fds_before + 4; ++i) {
    std::this_thread::sleep_for(50ms);
    fds_after = open_fds(a_.pid());
  }
  EXPECT_LE(fds_after, fds_before + 4);
}

// The time limit on a request's statements (--http-query-timeout-seconds): past it the statement
// is cancelled on the compute and the driver gets PostgreSQL's 57014 saying which limit it hit;
// the endpoint (and its pooled connection) serves the next request at once.
TEST(HttpLimitsTest, StatementsOverTheTimeLimitAreCancelledAndSaySo) {
  Argond a({"--http-query-timeout-seconds", "1"});
  auto p = create_project(a, {{"name", "limits"}});
  const std::string uri =
      fmt::format("postgresql://neondb_owner:{}@{}.localhost/neondb", p.password, p.endpoint);
  auto slow = http_exchange(a.proxy_port(), post_sql(uri, R"q({"query":"select pg_sleep(60)"})q"));
  EXPECT_EQ(slow.status, 400) << json::serialize(slow.body);
  const auto* o = slow.body.if_object();
  ASSERT_TRUE(o && o->contains("code")) << json::serialize(slow.body);
  EXPECT_EQ(o->at("code"), "57014");
  EXPECT_NE(message(slow).find("longer than the SQL-over-HTTP limit of 1 s"), std::string::npos)
      << json::serialize(slow.body);
  // A batch too: cancelled, rolled back, nothing of it kept.
  const std::string batch_body = R"q({"queries":[{"query":"create table kept_not(x int)"},)q"
                                 R"q({"query":"select pg_sleep(60)"}]})q";
  auto batch = http_exchange(a.proxy_port(), post_sql(uri, batch_body));
  EXPECT_EQ(batch.status, 400) << json::serialize(batch.body);
  auto after = http_exchange(
      a.proxy_port(), post_sql(uri, R"q({"query":"select to_regclass('kept_not') is null"})q"));
  EXPECT_EQ(after.status, 200) << json::serialize(after.body);
  EXPECT_NE(json::serialize(after.body).find("\"t\""), std::string::npos)
      << json::serialize(after.body);
}

}  // namespace
}  // namespace argon::testing
