// kill -9 of argond at each step of a snapshot and of a finalized restore (crash points, see
// src/common/crash_point.h), then a restart: the operation finishes, the endpoint serves exactly one
// of the two states through the same connection string, and nothing is leaked: no temp or unknown
// directory, no postmaster beyond the active endpoints, no operation left pending.
#include <signal.h>
#include <stdlib.h>

#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/pg_conn.h"
#include "harness.h"

namespace argon::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

std::string str(const json::value& v, std::string_view key) { return std::string(v.at(key).as_string()); }

// A list from the API, by value (a range-for over a temporary reply's member would dangle).
json::array list(Argond& a, const std::string& path, const char* key) {
  auto r = a.get(path);
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body.at(key).as_array();
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

class SnapshotCrashTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // writing a request to the argond that just died
    a_ = std::make_unique<Argond>();
    p_ = create_project(*a_, {{"name", "crash"}});
    info_ = a_->owner_conninfo(p_.password, p_.endpoint);
    exec("CREATE TABLE t (v text); INSERT INTO t VALUES ('v1')");
    auto s = a_->call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=v1", p_.id, p_.branch));
    ASSERT_EQ(s.status, 200) << s.raw;
    a_->wait_operations(p_.id, s.body.at("operations"));
    v1_ = str(s.body.at("snapshot"), "id");
    exec("UPDATE t SET v = 'v2'");
  }

  void exec(const std::string& sql) {
    auto c = PgConn::connect(info_);
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_TRUE(c->exec(sql));
  }
  std::string state() {
    auto c = PgConn::connect(info_);
    if (!c) return "connect failed: " + c.error().message;
    auto r = c->exec("SELECT v FROM t");
    return r ? r->value() : "query failed: " + r.error().message;
  }

  // Restarts argond so that it kills itself at `point`, makes `call`, waits for the crash, and
  // starts it again normally; returns once the project's operations are all done.
  void crash_during(const std::string& point, const std::function<void()>& call, const std::string& main_before = "v2") {
    a_->terminate();
    ::setenv("ARGON_CRASH_AT", point.c_str(), 1);
    a_->start();
    ::unsetenv("ARGON_CRASH_AT");
    info_ = a_->owner_conninfo(p_.password, p_.endpoint);
    EXPECT_EQ(state(), main_before) << "the compute runs before the call";
    try {
      call();
    } catch (const std::exception& e) {
      // The crash may come before the answer.
    }
    ASSERT_TRUE(a_->wait_exit(120s)) << "argond never reached " << point << "\n" << a_->log_tail();
    for (int i = 0; i < 200 && postmasters_under(a_->data_dir()) > 0; ++i) std::this_thread::sleep_for(25ms);
    a_->start();
    info_ = a_->owner_conninfo(p_.password, p_.endpoint);
    a_->wait_idle(p_.id);
  }

  void expect_nothing_leaked() {
    auto ops = a_->get(fmt::format("/projects/{}/operations?limit=1000", p_.id));
    for (const auto& op : ops.body.at("operations").as_array()) {
      EXPECT_EQ(str(op, "status"), "finished") << json::serialize(op);
    }
    std::set<std::string> branches, snapshots;
    for (const auto& b : list(*a_, fmt::format("/projects/{}/branches", p_.id), "branches")) {
      branches.insert(str(b, "id"));
    }
    for (const auto& s : list(*a_, fmt::format("/projects/{}/snapshots", p_.id), "snapshots")) {
      snapshots.insert(str(s, "id"));
    }
    EXPECT_EQ(entries(a_->data_dir() / "branches"), branches) << a_->log_tail();
    EXPECT_EQ(entries(a_->data_dir() / "snapshots"), snapshots) << a_->log_tail();
    int active = 0;
    for (const auto& ep : list(*a_, fmt::format("/projects/{}/endpoints", p_.id), "endpoints")) {
      active += str(ep, "current_state") == "active";
    }
    EXPECT_EQ(postmasters_under(a_->data_dir()), active);
  }

  std::unique_ptr<Argond> a_;
  TestProject p_;
  std::string info_;
  std::string v1_;
};

// The restore of v1 onto main, killed at each step: afterwards main serves v1 behind the same
// connection string, and 'main (old)' holds v2.
class RestoreCrashTest : public SnapshotCrashTest {};

TEST_P(RestoreCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  crash_during(point, [&] {
    a_->call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p_.id, v1_),
             fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p_.branch));
  });
  EXPECT_EQ(state(), "v1") << point << "\n" << a_->log_tail();
  std::map<std::string, std::string> names;  // name → id
  for (const auto& b : list(*a_, fmt::format("/projects/{}/branches", p_.id), "branches")) {
    names[str(b, "name")] = str(b, "id");
  }
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names["main (old)"], p_.branch);
  auto eps = list(*a_, fmt::format("/projects/{}/endpoints", p_.id), "endpoints");
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(str(eps[0], "branch_id"), names["main"]);
  expect_nothing_leaked();
}

INSTANTIATE_TEST_SUITE_P(
    EachStep, RestoreCrashTest,
    ::testing::Values(std::string("api.committed"), std::string("storage.filled"),
                      std::string("create_timeline.executed"), std::string("swap.new_started"),
                      std::string("swap.gated"), std::string("swap.swapped"),
                      std::string("swap_binding_id.executed")),
    [](const auto& info) {
      std::string n = info.param;
      for (auto& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

// A snapshot of main (v2), killed at each step: afterwards it is listed and restoring it gives v2.
class SnapshotStepCrashTest : public SnapshotCrashTest {};

TEST_P(SnapshotStepCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  crash_during(point, [&] {
    a_->call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=v2", p_.id, p_.branch));
  });
  std::string v2;
  for (const auto& s : list(*a_, fmt::format("/projects/{}/snapshots", p_.id), "snapshots")) {
    if (str(s, "name") == "v2") v2 = str(s, "id");
  }
  ASSERT_FALSE(v2.empty()) << point << "\n" << a_->log_tail();
  EXPECT_EQ(state(), "v2");
  expect_nothing_leaked();
  auto r = a_->call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p_.id, v1_),
                    fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p_.branch));
  ASSERT_EQ(r.status, 200) << r.raw;
  a_->wait_operations(p_.id, r.body.at("operations"));
  EXPECT_EQ(state(), "v1");
  r = a_->call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p_.id, v2),
               fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", str(r.body.at("branch"), "id")));
  ASSERT_EQ(r.status, 200) << r.raw;
  for (const auto& s : a_->wait_operations(p_.id, r.body.at("operations"))) EXPECT_EQ(s, "finished");
  EXPECT_EQ(state(), "v2") << "the snapshot taken across the crash holds v2";
}

INSTANTIATE_TEST_SUITE_P(
    EachStep, SnapshotStepCrashTest,
    ::testing::Values(std::string("api.committed"), std::string("storage.filled"),
                      std::string("snapshot.captured"), std::string("create_timeline.executed")),
    [](const auto& info) {
      std::string n = info.param;
      for (auto& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

// A reset of a child from its parent (POST /branches/{id}/restore), killed at each step: afterwards
// the child has the parent's data, keeps its id, and nothing is leaked.
class ResetCrashTest : public SnapshotCrashTest {};

TEST_P(ResetCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  auto kid = a_->post(fmt::format("/projects/{}/branches", p_.id),
                      {{"branch", {{"name", "kid"}, {"parent_id", p_.branch}}}, {"endpoints", {{{"type", "read_write"}}}}});
  ASSERT_EQ(kid.status, 201) << kid.raw;
  a_->wait_operations(p_.id, kid.body.at("operations"));
  const std::string kid_id = str(kid.body.at("branch"), "id");
  const std::string kid_ep = str(kid.body.at("endpoints").as_array()[0], "id");
  exec("UPDATE t SET v = 'v3'");  // main moves on; kid still has v2
  crash_during(point, [&] {
    a_->call("POST", fmt::format("/projects/{}/branches/{}/restore", p_.id, kid_id),
             fmt::format(R"({{"source_branch_id":"{}"}})", p_.branch));
  }, "v3");
  const std::string kid_info = a_->owner_conninfo(p_.password, kid_ep);
  EXPECT_EQ(query_value(kid_info, "SELECT v FROM t"), "v3") << point << "\n" << a_->log_tail();
  EXPECT_EQ(a_->get(fmt::format("/projects/{}/branches/{}", p_.id, kid_id)).status, 200) << "same id";
  expect_nothing_leaked();
}

INSTANTIATE_TEST_SUITE_P(EachStep, ResetCrashTest,
                         ::testing::Values(std::string("api.committed"), std::string("storage.filled"),
                                           std::string("reset.captured"), std::string("reset.exchanged"),
                                           std::string("create_timeline.executed")),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

}  // namespace
}  // namespace argon::testing
