// The connection proxy against real computes: connection strings the API returns, used verbatim;
// SCRAM over TLS with channel binding; endpoint resolution; refusals; wake on connect; autosuspend;
// cancel; the gate/terminate/switch sequence around a change of compute; and a compute that stops
// answering the proxy's admin session.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

using Project = TestProject;

Project create_project(Argond& a, json::object extra = {}) {
  json::object project{{"name", "proxy"}};
  for (auto& [k, v] : extra) project[k] = v;
  return argon::testing::create_project(a, project);
}

// libpq keyword conninfo reaching the proxy on loopback.
std::string conninfo(const Argond& a, const std::string& extra) {
  return fmt::format("host=127.0.0.1 port={} dbname=neondb connect_timeout=30 {}", a.proxy_port(),
                     extra);
}

// Runs psql with a connection string exactly as given; returns its output (stdout and stderr).
std::pair<int, std::string> psql(const std::string& uri, const std::string& sql) {
  std::string cmd = fmt::format("psql '{}' -XAtc \"{}\" 2>&1", uri, sql);
  FILE* f = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int rc = ::pclose(f);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return {rc, out};
}

std::string one_value(PgConn& c, const std::string& sql) {
  auto r = c.exec(sql);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? r->value() : "";
}

std::string endpoint_state(Argond& a, const Project& p) {
  auto r = a.get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint));
  return str(r.body.at("endpoint"), "current_state");
}

TEST(ProxyTest, ConnectionStringsFromTheApiWorkVerbatimWithPsql) {
  Argond a;
  auto p = create_project(a);
  ASSERT_NE(p.uri.find(p.endpoint), std::string::npos);
  // sslmode=require: libpq fails unless the proxy speaks TLS.
  auto [rc, out] = psql(p.uri, "select current_user || '@' || current_database()");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "neondb_owner@neondb");

  auto cu = a.get(
      fmt::format("/projects/{}/connection_uri?database_name=neondb&role_name=neondb_owner", p.id));
  ASSERT_EQ(cu.status, 200) << cu.raw;
  auto [rc2, out2] = psql(str(cu.body, "uri"), "select 1");
  EXPECT_EQ(rc2, 0) << out2;
  EXPECT_EQ(out2, "1");

  // The form neonctl builds: channel_binding=require forces SCRAM-SHA-256-PLUS over TLS.
  auto [rc3, out3] = psql(p.uri + "&channel_binding=require", "select 2");
  EXPECT_EQ(rc3, 0) << out3;
  EXPECT_EQ(out3, "2");

  // A branch's own connection string reaches the branch, not its parent.
  auto b =
      a.post(fmt::format("/projects/{}/branches", p.id),
             {{"branch", {{"name", "dev"}}}, {"endpoints", json::array{{{"type", "read_write"}}}}});
  ASSERT_EQ(b.status, 201) << b.raw;
  a.wait_idle(p.id);
  auto [rc4, out4] = psql(p.uri, "create table marker(v text); insert into marker values ('main')");
  EXPECT_EQ(rc4, 0) << out4;
  auto bu = a.get(fmt::format(
      "/projects/{}/connection_uri?database_name=neondb&role_name=neondb_owner&branch_id={}", p.id,
      str(b.body.at("branch"), "id")));
  auto [rc5, out5] =
      psql(str(bu.body, "uri"), "select count(*) from pg_tables where tablename = 'marker'");
  EXPECT_EQ(rc5, 0) << out5;
  EXPECT_EQ(out5, "0");
}

// The proxy remembers verifiers between logins (argon_roles tells it when a role changed): every
// kind of role change must still count for the very next login, over TCP and over HTTP alike.
TEST(ProxyTest, EveryRoleChangeCountsAtTheNextLoginOverTcpAndHttp) {
  Argond a;
  auto p = create_project(a);
  auto owner = PgConn::connect(a.owner_conninfo(p.password, p.endpoint));
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_NE(one_value(*owner, "SHOW argon.role_generation_file").find("argon_roles.gen"),
            std::string::npos)
      << "the compute runs without argon_roles";
  auto exec = [&](const std::string& sql) {
    auto r = owner->exec(sql);
    ASSERT_TRUE(r) << sql << ": " << r.error().message;
  };
  auto tcp = [&](const std::string& role, const std::string& password) {
    return PgConn::connect(conninfo(a, fmt::format("user={} password={} sslmode=require "
                                                   "options=endpoint={}",
                                                   role, password, p.endpoint)))
        .has_value();
  };
  auto http = [&](const std::string& role, const std::string& password) {
    const auto uri =
        fmt::format("postgresql://{}:{}@{}.localhost/neondb", role, password, p.endpoint);
    auto r = http_exchange(a.proxy_port(), post_sql(uri, R"({"query":"select 1"})"));
    // 28P01 for a password, 28000 for a role that may not log in (NOLOGIN, expired).
    if (r.status == 400) EXPECT_EQ(str(r.body, "code").substr(0, 2), "28") << message(r);
    return r.status;
  };
  auto accepted = [&](const std::string& role, const std::string& password, const char* after) {
    // Twice each: the second login is the one a remembered verifier answers.
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(http(role, password), 200) << role << " refused over HTTP after " << after;
      EXPECT_TRUE(tcp(role, password)) << role << " refused over TCP after " << after;
    }
  };
  auto refused = [&](const std::string& role, const std::string& password, const char* after) {
    EXPECT_EQ(http(role, password), 400) << role << " still accepted over HTTP after " << after;
    EXPECT_FALSE(tcp(role, password)) << role << " still accepted over TCP after " << after;
  };

  refused("agent", "First-pw-1", "nothing (no such role)");
  exec("CREATE ROLE agent LOGIN PASSWORD 'First-pw-1'");
  accepted("agent", "First-pw-1", "CREATE ROLE");
  std::string was = "First-pw-1";
  for (int i = 0; i < 10; ++i) {
    const std::string now = fmt::format("Changed-pw-{}", i);
    exec(fmt::format("ALTER ROLE agent PASSWORD '{}'", now));
    refused("agent", was, "ALTER ROLE ... PASSWORD");
    accepted("agent", now, "ALTER ROLE ... PASSWORD");
    was = now;
  }
  // Each change, then who must get in (true) or not at the next login.
  struct Step {
    std::string sql;
    std::vector<std::tuple<std::string, std::string, bool>> logins;
  };
  const std::vector<Step> steps = {
      {"ALTER ROLE agent NOLOGIN", {{"agent", was, false}}},
      {"ALTER ROLE agent LOGIN", {{"agent", was, true}}},
      {"ALTER ROLE agent VALID UNTIL '2001-01-01'", {{"agent", was, false}}},
      {"ALTER ROLE agent VALID UNTIL 'infinity'", {{"agent", was, true}}},
      {"BEGIN; ALTER ROLE agent PASSWORD 'Rolled-back-1'; ROLLBACK",
       {{"agent", was, true}, {"agent", "Rolled-back-1", false}}},
      {"ALTER ROLE agent RENAME TO agent2", {{"agent", was, false}, {"agent2", was, true}}},
      {"DROP ROLE agent2", {{"agent2", was, false}}},
      {"CREATE ROLE agent2 LOGIN PASSWORD 'Reborn-pw-1'",
       {{"agent2", was, false}, {"agent2", "Reborn-pw-1", true}}},
  };
  for (const auto& step : steps) {
    exec(step.sql);
    for (const auto& [role, password, in] : step.logins) {
      if (in) {
        accepted(role, password, step.sql.c_str());
      } else {
        refused(role, password, step.sql.c_str());
      }
    }
  }
}

TEST(ProxyTest, EndpointFromOptionsOrPasswordAndPlaintextOnLoopback) {
  Argond a;
  auto p = create_project(a);
  auto opt =
      PgConn::connect(conninfo(a, fmt::format("user=neondb_owner password={} sslmode=require "
                                              "options='endpoint={} -c search_path=custom'",
                                              p.password, p.endpoint)));
  ASSERT_TRUE(opt) << opt.error().message;
  EXPECT_EQ(one_value(*opt, "show search_path"), "custom")
      << "the rest of options reaches the compute";

  auto pw = PgConn::connect(
      conninfo(a, fmt::format("user=neondb_owner password=endpoint={};{} sslmode=disable",
                              p.endpoint, p.password)));
  ASSERT_TRUE(pw) << pw.error().message;
  EXPECT_EQ(one_value(*pw, "select current_user"), "neondb_owner");
}

// Sends raw bytes to the proxy and returns everything it answers before closing.
std::string raw_exchange(const Argond& a, const std::string& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket sock(io);
  sock.connect(
      {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(a.proxy_port())});
  boost::system::error_code ec;
  boost::asio::write(sock, boost::asio::buffer(bytes), ec);
  // Nothing more comes: no waiting for timeouts. The proxy may already have answered and closed
  // (a refusal needs only the first bytes), so the socket may be gone: what it sent is still read.
  sock.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = sock.read_some(boost::asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

TEST(ProxyTest, PasswordsAreCheckedAgainstPostgresAndChangesCountAtOnce) {
  Argond a;
  auto p = create_project(a);
  auto info = [&](const std::string& password) {
    return conninfo(a,
                    fmt::format("user=neondb_owner password={} sslmode=require options=endpoint={}",
                                password, p.endpoint));
  };
  auto wrong = PgConn::connect(info("not-the-password"));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("password authentication failed for user \"neondb_owner\""),
            std::string::npos)
      << wrong.error().message;

  auto ok = PgConn::connect(info(p.password));
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_TRUE(ok->exec("ALTER ROLE neondb_owner PASSWORD 'Changed-in-SQL-42'"));
  EXPECT_FALSE(PgConn::connect(info(p.password))) << "the old password must stop working at once";
  EXPECT_TRUE(PgConn::connect(info("Changed-in-SQL-42")));

  // Unknown roles fail exactly like wrong passwords.
  auto ghost = PgConn::connect(conninfo(
      a, fmt::format("user=ghost password=x sslmode=require options=endpoint={}", p.endpoint)));
  ASSERT_FALSE(ghost);
  EXPECT_NE(ghost.error().message.find("password authentication failed"), std::string::npos);

  // The proxy starts the client's backend while the client computes its proof. A wrong password
  // still gets only the password error (not what the compute says of the database), and the
  // backend started for it is closed.
  for (int i = 0; i < 10; ++i) {
    auto r = PgConn::connect(
        conninfo(a, fmt::format("user=neondb_owner password=wrong dbname=nope sslmode=require "
                                "options=endpoint={}",
                                p.endpoint)));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("password authentication failed"), std::string::npos)
        << r.error().message;
  }
  // Clients that leave in the middle of the exchange, while their backend is starting.
  const std::string startup =
      std::string("user\0neondb_owner\0database\0neondb\0options\0endpoint=", 51) + p.endpoint +
      std::string("\0\0", 2);
  for (int i = 0; i < 10; ++i) {
    auto reply = raw_exchange(a, be32(8 + startup.size()) + be32(196608) + startup);
    EXPECT_EQ(reply.substr(0, 1), "R") << "expected the SCRAM request, got " << reply;
  }
  auto backends = [&] {
    auto rows = ok->exec(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> "
        "pg_backend_pid() "
        "AND usename = 'neondb_owner'");
    return rows ? rows->value(0, 0) : std::string("query failed: " + rows.error().message);
  };
  // The proxy may still be starting a backend for a client that already left (under load, after
  // a first look saw none): wait until none is seen for 200 ms running.
  for (int i = 0, none = 0; i < 500 && none < 10; ++i) {
    none = backends() == "0" ? none + 1 : 0;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(backends(), "0") << "a failed login left its backend open";
}

TEST(ProxyTest, RefusalsAreErrorResponsesThatSayWhatToDo) {
  Argond a;
  auto p = create_project(a);
  struct Case {
    std::string conninfo;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {conninfo(
           a, "user=neondb_owner password=x sslmode=require options=endpoint=ep-no-such-00000000"),
       "endpoint ep-no-such-00000000 does not exist"},
      {conninfo(a, "user=neondb_owner password=x sslmode=require"),
       "could not tell which endpoint"},
      {conninfo(a, fmt::format("user=argon_admin password=x sslmode=require options=endpoint={}",
                               p.endpoint)),
       "reserved for Argon's internal use"},
      {conninfo(a, "user=neondb_owner password=x sslmode=require options=endpoint=not-an-endpoint"),
       "is not an endpoint id"},
      {conninfo(a,
                fmt::format(
                    "user=neondb_owner password={} sslmode=require options=endpoint={} dbname=nope",
                    p.password, p.endpoint)),
       "database \"nope\" does not exist"},
  };
  for (const auto& c : cases) {
    auto r = PgConn::connect(c.conninfo);
    ASSERT_FALSE(r) << c.conninfo;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  // Disabled endpoint.
  auto d = a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint),
                  R"({"endpoint":{"disabled":true}})");
  ASSERT_EQ(d.status, 200) << d.raw;
  a.wait_idle(p.id);
  auto r = PgConn::connect(
      conninfo(a, fmt::format("user=neondb_owner password={} sslmode=require options=endpoint={}",
                              p.password, p.endpoint)));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("is disabled"), std::string::npos) << r.error().message;
}

TEST(ProxyTest, MalformedAndOversizedPacketsGetAProtocolViolation) {
  Argond a;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {be32(100000) + "x", "invalid startup packet length 100000"},
      {be32(4), "invalid startup packet length 4"},
      {be32(8) + be32(0x00020000), "unsupported frontend protocol 2.0"},
      {be32(12) + be32(196608) + std::string("us\0\0", 4), "invalid startup packet layout"},
      {be32(17) + be32(196608) + std::string("user\0u\0x", 9), "invalid startup packet layout"},
  };
  for (const auto& [bytes, expect] : cases) {
    auto reply = raw_exchange(a, bytes);
    ASSERT_FALSE(reply.empty()) << expect;
    EXPECT_EQ(reply[0], 'E') << expect;
    EXPECT_NE(reply.find("08P01"), std::string::npos) << expect;
    EXPECT_NE(reply.find(expect), std::string::npos) << reply;
  }
  // GSSAPI encryption is declined with 'N'; the client may go on without it.
  EXPECT_EQ(raw_exchange(a, be32(8) + be32(80877104)).substr(0, 1), "N");
  // A password message too large for the authentication phase (no endpoint given: the proxy asks
  // for the endpoint=<id>;<password> form).
  std::string startup = std::string("user\0neondb_owner\0\0", 19);
  auto reply =
      raw_exchange(a, be32(8 + startup.size()) + be32(196608) + startup + "p" + be32(1 << 20));
  EXPECT_NE(reply.find("08P01"), std::string::npos) << reply;
}

TEST(ProxyTest, TlsOnlyWhenPlaintextIsNotAllowed) {
  Argond a({"--proxy-allow-plaintext", "false"});
  auto p = create_project(a);
  auto plain = PgConn::connect(
      conninfo(a, fmt::format("user=neondb_owner password={} sslmode=disable options=endpoint={}",
                              p.password, p.endpoint)));
  ASSERT_FALSE(plain);
  EXPECT_NE(plain.error().message.find("sslmode=require"), std::string::npos)
      << plain.error().message;
  auto tls = PgConn::connect(
      conninfo(a, fmt::format("user=neondb_owner password={} sslmode=require options=endpoint={}",
                              p.password, p.endpoint)));
  EXPECT_TRUE(tls) << tls.error().message;
}

TEST(ProxyTest, ConnectingWakesASuspendedEndpointOnceForManyClients) {
  Argond a;
  auto p = create_project(a);
  {
    // A first login leaves the proxy holding an admin session to this compute, which the suspend
    // kills: the logins after the wake must notice and open a new one.
    auto c = PgConn::connect(
        conninfo(a, fmt::format("user=neondb_owner password={} sslmode=require options=endpoint={}",
                                p.password, p.endpoint)));
    ASSERT_TRUE(c) << c.error().message;
  }
  auto s =
      a.post(fmt::format("/projects/{}/endpoints/{}/suspend", p.id, p.endpoint), json::object{});
  ASSERT_EQ(s.status, 200) << s.raw;
  a.wait_idle(p.id);
  ASSERT_EQ(endpoint_state(a, p), "idle");

  auto starts_before = [&] {
    int n = 0;
    auto ops = a.get(fmt::format("/projects/{}/operations?limit=1000", p.id));
    for (const auto& op : ops.body.at("operations").as_array())
      n += op.at("action").as_string() == "start_compute";
    return n;
  };
  const int before = starts_before();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      auto c = PgConn::connect(conninfo(
          a, fmt::format("user=neondb_owner password={} sslmode=require options=endpoint={}",
                         p.password, p.endpoint)));
      if (c && c->exec("select 1")) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(starts_before() - before, 1) << "one start for all clients";
  EXPECT_EQ(endpoint_state(a, p), "active");
}

TEST(ProxyTest, AutosuspendAfterTheTimeoutWithoutConnections) {
  Argond a({"--expiry-check-seconds", "1"});
  auto p = create_project(a);
  auto patch = a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint),
                      R"({"endpoint":{"suspend_timeout_seconds":2}})");
  ASSERT_EQ(patch.status, 200) << patch.raw;
  {
    auto c = PgConn::connect(
        conninfo(a, fmt::format("user=neondb_owner password={} sslmode=require options=endpoint={}",
                                p.password, p.endpoint)));
    ASSERT_TRUE(c) << c.error().message;
    // Held open for longer than the timeout: an open connection keeps the endpoint active. The
    // sweep records it as activity; wait until it has, more than the timeout after the open.
    const int64_t opened_ms = SystemClock().now_ms();
    auto last_active_ms = [&]() -> int64_t {
      auto ep =
          a.get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint)).body.at("endpoint");
      if (!ep.as_object().contains("last_active")) return 0;
      return parse_time_us(str(ep, "last_active")).value_or(0) / 1000;
    };
    for (int i = 0; i < 300 && last_active_ms() < opened_ms + 3000; ++i)
      std::this_thread::sleep_for(100ms);
    ASSERT_GE(last_active_ms(), opened_ms + 3000);
    EXPECT_EQ(endpoint_state(a, p), "active");
    EXPECT_TRUE(c->exec("select 1"));
  }
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (endpoint_state(a, p) != "idle" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  EXPECT_EQ(endpoint_state(a, p), "idle");
  auto ep = a.get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint)).body.at("endpoint");
  EXPECT_TRUE(ep.as_object().contains("suspended_at"));
  EXPECT_TRUE(ep.as_object().contains("last_active"));
}

TEST(ProxyTest, CancelRequestReachesTheComputeRunningTheQuery) {
  Argond a;
  auto p = create_project(a);
  PGconn* c = PQconnectdb(
      conninfo(a, fmt::format("user=neondb_owner password={} sslmode=require options=endpoint={}",
                              p.password, p.endpoint))
          .c_str());
  ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  std::thread canceller([&] {
    std::this_thread::sleep_for(500ms);
    PGcancel* cancel = PQgetCancel(c);
    char err[256];
    EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
    PQfreeCancel(cancel);
  });
  auto start = std::chrono::steady_clock::now();
  PGresult* r = PQexec(c, "select pg_sleep(60)");
  auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR);
  EXPECT_STREQ(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014");
  EXPECT_LT(took, 30s);
  PQclear(r);
  PQfinish(c);
}

TEST(ProxyTest, MovingAnEndpointTerminatesOldConnectionsAndNewOnesReachTheNewCompute) {
  Argond a;
  auto p = create_project(a);
  const std::string info =
      conninfo(a, fmt::format("user=neondb_owner password={} sslmode=require options=endpoint={}",
                              p.password, p.endpoint));
  {
    auto c = PgConn::connect(info);
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_TRUE(c->exec("create table marker(v text); insert into marker values ('main')"));
  }
  auto b = a.post(fmt::format("/projects/{}/branches", p.id), {{"branch", {{"name", "next"}}}});
  ASSERT_EQ(b.status, 201) << b.raw;
  const std::string next = str(b.body.at("branch"), "id");
  a.wait_idle(p.id);
  {
    // The new branch holds a different marker (written through the admin socket).
    auto s = a.post(fmt::format("/projects/{}/endpoints", p.id),
                    {{"endpoint", {{"branch_id", next}, {"type", "read_write"}}}});
    ASSERT_EQ(s.status, 201) << s.raw;
    a.wait_idle(p.id);
    auto admin = a.connect(next, "neondb");
    ASSERT_TRUE(admin.exec("update marker set v = 'next'"));
    auto del = a.call(
        "DELETE", fmt::format("/projects/{}/endpoints/{}", p.id, str(s.body.at("endpoint"), "id")));
    ASSERT_EQ(del.status, 200) << del.raw;
    a.wait_idle(p.id);
  }

  PGconn* old_conn = PQconnectdb(info.c_str());
  ASSERT_EQ(PQstatus(old_conn), CONNECTION_OK) << PQerrorMessage(old_conn);
  // Clients connecting in a loop all through the move: each must see exactly one of the two states,
  // and once the move's operations are finished, only the new one.
  std::atomic<bool> stop{false};
  std::atomic<int> saw_main{0}, saw_next{0};
  std::atomic<int64_t> last_main_at{0};
  std::thread loop([&] {
    while (!stop) {
      auto c = PgConn::connect(info);
      if (!c) continue;
      auto v = c->exec("select v from marker");
      if (!v) continue;
      if (v->value() == "main") {
        ++saw_main;
        last_main_at = std::chrono::steady_clock::now().time_since_epoch().count();
      } else if (v->value() == "next") {
        ++saw_next;
      }
    }
  });
  StopAndJoin joiner{stop, loop};
  // Some reads of the old compute first, then the move; then until the new one answers.
  for (int i = 0; i < 1000 && saw_main.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  auto move = a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint),
                     fmt::format(R"({{"endpoint":{{"branch_id":"{}"}}}})", next));
  ASSERT_EQ(move.status, 200) << move.raw;
  a.wait_operations(p.id, move.body.at("operations"));
  const int64_t switched_at = std::chrono::steady_clock::now().time_since_epoch().count();
  for (int i = 0; i < 1000 && saw_next.load() < 3; ++i) std::this_thread::sleep_for(10ms);
  stop = true;
  loop.join();
  EXPECT_GT(saw_main.load(), 0);
  EXPECT_GT(saw_next.load(), 0);
  EXPECT_LT(last_main_at.load(), switched_at)
      << "a connection reached the old compute after the switch";

  // The connection that was open on the old compute was told why it ended.
  PGresult* r = PQexec(old_conn, "select 1");
  EXPECT_NE(PQresultStatus(r), PGRES_TUPLES_OK);
  std::string msg = PQerrorMessage(old_conn);
  EXPECT_NE(msg.find("moved to branch " + next), std::string::npos) << msg;
  PQclear(r);
  PQfinish(old_conn);
}

// The postmaster and every process under it (its backends and auxiliary processes), from /proc.
std::vector<pid_t> process_tree(pid_t root) {
  std::vector<pid_t> tree{root};
  for (std::size_t i = 0; i < tree.size(); ++i) {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      std::getline(stat, line);
      // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
      const auto close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(line.substr(close + 1));
      std::string state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (ppid == tree[i]) tree.push_back(std::stoi(name));
    }
  }
  return tree;
}

TEST(ProxyTest, AComputeThatStopsAnsweringCostsALoginItsErrorNotAHang) {
  Argond a;
  Project p = create_project(a);
  const std::string info = conninfo(a, fmt::format("user=neondb_owner password={} sslmode=require "
                                                   "options=endpoint={}",
                                                   p.password, p.endpoint));
  {
    auto c = PgConn::connect(info);  // leaves an idle admin session in the proxy's pool
    ASSERT_TRUE(c) << c.error().message;
  }
  std::ifstream pidfile(a.data_dir() / "branches" / p.branch / "pgdata" / "postmaster.pid");
  pid_t pm = 0;
  pidfile >> pm;
  ASSERT_GT(pm, 0);
  // Every process of the compute stops: the pooled admin session's backend, and the postmaster
  // that a new session would need. They go on again however the test ends.
  const auto frozen = process_tree(pm);
  struct Thaw {
    const std::vector<pid_t>& pids;
    ~Thaw() {
      for (pid_t pid : pids) ::kill(pid, SIGCONT);
    }
  } thaw{frozen};
  for (pid_t pid : frozen) ::kill(pid, SIGSTOP);

  // Whichever waits on the compute (the verifier query, or with the verifier remembered the login
  // on the client's behalf) is bounded, and the client hears why.
  auto stalled = PgConn::connect(info);
  ASSERT_FALSE(stalled);
  EXPECT_NE(stalled.error().message.find("the endpoint's compute did not answer within"),
            std::string::npos)
      << stalled.error().message;

  for (pid_t pid : frozen) ::kill(pid, SIGCONT);
  auto again = PgConn::connect(info);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(one_value(*again, "select 1"), "1");
}

}  // namespace
}  // namespace argon::testing
