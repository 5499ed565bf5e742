// The crash matrix: kill -9 of argond at each named step of every operation (crash points, see
// src/common/crash_point.h) and at random moments, then a restart. Each time the operation
// finishes, the endpoint serves exactly one of the two states through the same connection string,
// and nothing is leaked: no temp or unknown directory, no postmaster beyond the active endpoints,
// no operation left pending.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "common/pg_conn.h"
#include "harness.h"

namespace argon::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

// A list from the API, by value (a range-for over a temporary reply's member would dangle).
json::array list(Argond& a, const std::string& path, const char* key) {
  auto r = a.get(path);
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body.at(key).as_array();
}

std::string point_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (auto& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return n;
}

// The crash points a suite is instantiated with.
auto points(std::initializer_list<const char*> names) {
  return ::testing::ValuesIn(std::vector<std::string>(names.begin(), names.end()));
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
    a_ = std::make_unique<Argond>(settles_after()
                                      ? std::vector<std::string>{"--snapshot-settle", "after"}
                                      : std::vector<std::string>{});
    p_ = create_project(*a_, {{"name", "crash"}});
    info_ = a_->owner_conninfo(p_.password, p_.endpoint);
    exec("CREATE TABLE t (v text); INSERT INTO t VALUES ('v1')");
    auto s = a_->call("POST",
                      fmt::format("/projects/{}/branches/{}/snapshot?name=v1", p_.id, p_.branch));
    ASSERT_EQ(s.status, 200) << s.raw;
    a_->wait_operations(p_.id, s.body.at("operations"));
    v1_ = str(s.body.at("snapshot"), "id");
    // Settled before the crash point is armed, which that settling would otherwise reach first.
    if (settles_after()) ASSERT_TRUE(wait_settled(*a_, v1_)) << a_->log_tail();
    exec("UPDATE t SET v = 'v2'");
  }
  // Snapshots settled after their operation (--snapshot-settle after) rather than in it.
  virtual bool settles_after() const { return false; }
  // A snapshot of main (v2) killed at `point`: afterwards it is listed, nothing is leaked, and
  // restoring it gives v2.
  void snapshot_survives(const std::string& point);

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
  void crash_during(const std::string& point, const std::function<void()>& call,
                    const std::string& main_before = "v2") {
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
    for (int i = 0; i < 200 && postmasters_under(a_->data_dir()) > 0; ++i)
      std::this_thread::sleep_for(25ms);
    a_->start();
    info_ = a_->owner_conninfo(p_.password, p_.endpoint);
    a_->wait_idle(p_.id);
  }

  // A child 'kid' of main with an endpoint; returns the branch's and the endpoint's ids.
  std::pair<std::string, std::string> make_kid() {
    auto kid = a_->post(fmt::format("/projects/{}/branches", p_.id),
                        {{"branch", {{"name", "kid"}, {"parent_id", p_.branch}}},
                         {"endpoints", {{{"type", "read_write"}}}}});
    EXPECT_EQ(kid.status, 201) << kid.raw;
    a_->wait_operations(p_.id, kid.body.at("operations"));
    return {str(kid.body.at("branch"), "id"), str(kid.body.at("endpoints").as_array()[0], "id")};
  }

  // The id of the project's branch called `name`, or "" if there is none.
  std::string branch_named(const std::string& name) {
    for (const auto& b : list(*a_, fmt::format("/projects/{}/branches", p_.id), "branches")) {
      if (str(b, "name") == name) return str(b, "id");
    }
    return "";
  }
  // A new endpoint on `branch` (waits for it); returns the owner's conninfo through it.
  std::string add_endpoint(const std::string& branch) {
    auto r = a_->post(fmt::format("/projects/{}/endpoints", p_.id),
                      {{"endpoint", {{"branch_id", branch}, {"type", "read_write"}}}});
    EXPECT_EQ(r.status, 201) << r.raw;
    a_->wait_operations(p_.id, r.body.at("operations"));
    return a_->owner_conninfo(p_.password, str(r.body.at("endpoint"), "id"));
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

INSTANTIATE_TEST_SUITE_P(EachStep, RestoreCrashTest,
                         points({"api.committed", "storage.filled", "create_timeline.executed",
                                 "swap.new_started", "swap.gated", "swap.terminated",
                                 "swap.swapped", "swap.ungated", "swap_binding_id.executed"}),
                         point_name);

// A snapshot of main (v2), killed at each step: afterwards it is listed and restoring it gives v2.
class SnapshotStepCrashTest : public SnapshotCrashTest {};

TEST_P(SnapshotStepCrashTest, FinishesAfterRestart) { snapshot_survives(GetParam()); }

INSTANTIATE_TEST_SUITE_P(EachStep, SnapshotStepCrashTest,
                         points({"api.committed", "storage.filled", "snapshot.captured",
                                 "snapshot.settling", "snapshot.settled", "snapshot.trimmed",
                                 "snapshot.read_only", "create_timeline.executed"}),
                         point_name);

// The same with the settling after the operation, killed at each of its steps too (the later
// ones come after the operation finished): afterwards the settled copy is in place and nothing
// of the settling is left.
class SettleAfterCrashTest : public SnapshotStepCrashTest {
  bool settles_after() const override { return true; }
};

TEST_P(SettleAfterCrashTest, FinishesAfterRestart) { snapshot_survives(GetParam()); }

INSTANTIATE_TEST_SUITE_P(EachStep, SettleAfterCrashTest,
                         points({"snapshot.captured", "snapshot.read_only",
                                 "snapshot.settle_cloned", "snapshot.settled_beside",
                                 "snapshot.settle_exchanged"}),
                         point_name);

void SnapshotCrashTest::snapshot_survives(const std::string& point) {
  crash_during(point, [&] {
    a_->call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=v2", p_.id, p_.branch));
  });
  std::string v2;
  for (const auto& s : list(*a_, fmt::format("/projects/{}/snapshots", p_.id), "snapshots")) {
    if (str(s, "name") == "v2") v2 = str(s, "id");
  }
  ASSERT_FALSE(v2.empty()) << point << "\n" << a_->log_tail();
  EXPECT_EQ(state(), "v2");
  if (settles_after()) ASSERT_TRUE(wait_settled(*a_, v2)) << point << "\n" << a_->log_tail();
  expect_nothing_leaked();
  auto r =
      a_->call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p_.id, v1_),
               fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p_.branch));
  ASSERT_EQ(r.status, 200) << r.raw;
  a_->wait_operations(p_.id, r.body.at("operations"));
  EXPECT_EQ(state(), "v1");
  r = a_->call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p_.id, v2),
               fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})",
                           str(r.body.at("branch"), "id")));
  ASSERT_EQ(r.status, 200) << r.raw;
  for (const auto& s : a_->wait_operations(p_.id, r.body.at("operations")))
    EXPECT_EQ(s, "finished");
  EXPECT_EQ(state(), "v2") << "the snapshot taken across the crash holds v2";
}

// A reset of a child from its parent (POST /branches/{id}/restore), killed at each step while the
// child's compute serves (so the copy gets a compute of its own beside it): afterwards the child
// has the parent's data, keeps its id, and nothing is leaked.
class ResetCrashTest : public SnapshotCrashTest {};

TEST_P(ResetCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  const auto [kid_id, kid_ep] = make_kid();
  exec("UPDATE t SET v = 'v3'");  // main moves on; kid still has v2
  crash_during(
      point,
      [&] {
        EXPECT_EQ(query_value(a_->owner_conninfo(p_.password, kid_ep), "SELECT v FROM t"), "v2")
            << "kid's compute serves";
        a_->call("POST", fmt::format("/projects/{}/branches/{}/restore", p_.id, kid_id),
                 fmt::format(R"({{"source_branch_id":"{}"}})", p_.branch));
      },
      "v3");
  const std::string kid_info = a_->owner_conninfo(p_.password, kid_ep);
  EXPECT_EQ(query_value(kid_info, "SELECT v FROM t"), "v3") << point << "\n" << a_->log_tail();
  EXPECT_EQ(a_->get(fmt::format("/projects/{}/branches/{}", p_.id, kid_id)).status, 200)
      << "same id";
  expect_nothing_leaked();
}

INSTANTIATE_TEST_SUITE_P(EachStep, ResetCrashTest,
                         points({"api.committed", "storage.filled", "reset.captured",
                                 "reset.prepared", "reset.exchanged", "reset.restarted",
                                 "create_timeline.executed"}),
                         point_name);

// A branch at a past point of main (its LSN while main held v2; main has moved on to v3), killed
// at each step of the recovery that builds it: afterwards it holds exactly v2, and main serves v3.
class HistoryCrashTest : public SnapshotCrashTest {};

TEST_P(HistoryCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  const std::string lsn = query_value(info_, "SELECT pg_current_wal_lsn()::text");
  exec("UPDATE t SET v = 'v3'");
  crash_during(
      point,
      [&] {
        a_->post(fmt::format("/projects/{}/branches", p_.id),
                 {{"branch", {{"name", "past"}, {"parent_id", p_.branch}, {"parent_lsn", lsn}}},
                  {"endpoints", {{{"type", "read_write"}}}}});
      },
      "v3");
  const std::string past = branch_named("past");
  ASSERT_FALSE(past.empty()) << point << "\n" << a_->log_tail();
  std::string past_ep;
  for (const auto& ep : list(*a_, fmt::format("/projects/{}/endpoints", p_.id), "endpoints")) {
    if (str(ep, "branch_id") == past) past_ep = str(ep, "id");
  }
  ASSERT_FALSE(past_ep.empty());
  EXPECT_EQ(query_value(a_->owner_conninfo(p_.password, past_ep), "SELECT v FROM t"), "v2")
      << point << "\n"
      << a_->log_tail();
  EXPECT_EQ(state(), "v3");
  expect_nothing_leaked();
}

INSTANTIATE_TEST_SUITE_P(EachStep, HistoryCrashTest,
                         points({"api.committed", "history.cloned", "history.recovered",
                                 "storage.filled", "create_timeline.executed"}),
                         point_name);

// A branch created with an endpoint, killed at each step: afterwards it exists, its endpoint serves
// what main held at the call (v2), and main still serves v2.
class BranchCreateCrashTest : public SnapshotCrashTest {};

TEST_P(BranchCreateCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  crash_during(point, [&] {
    a_->post(fmt::format("/projects/{}/branches", p_.id),
             {{"branch", {{"name", "kid"}, {"parent_id", p_.branch}}},
              {"endpoints", {{{"type", "read_write"}}}}});
  });
  const std::string kid = branch_named("kid");
  ASSERT_FALSE(kid.empty()) << point << "\n" << a_->log_tail();
  std::string kid_ep;
  for (const auto& ep : list(*a_, fmt::format("/projects/{}/endpoints", p_.id), "endpoints")) {
    if (str(ep, "branch_id") == kid) kid_ep = str(ep, "id");
  }
  ASSERT_FALSE(kid_ep.empty()) << "the branch's endpoint survived the crash";
  EXPECT_EQ(query_value(a_->owner_conninfo(p_.password, kid_ep), "SELECT v FROM t"), "v2");
  EXPECT_EQ(state(), "v2");
  expect_nothing_leaked();
}

// The first start_compute is main's, woken before the call; the second is the new branch's.
INSTANTIATE_TEST_SUITE_P(EachStep, BranchCreateCrashTest,
                         points({"api.committed", "storage.filled", "create_timeline.executed",
                                 "start_compute.executed#2"}),
                         point_name);

// A preview restore of v1 (finalize_restore false), killed at each step: afterwards the preview
// branch holds v1 and main, untouched, still serves v2.
class PreviewRestoreCrashTest : public SnapshotCrashTest {};

TEST_P(PreviewRestoreCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  crash_during(point, [&] {
    a_->call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p_.id, v1_),
             R"({"name":"preview","finalize_restore":false})");
  });
  const std::string preview = branch_named("preview");
  ASSERT_FALSE(preview.empty()) << point << "\n" << a_->log_tail();
  EXPECT_EQ(state(), "v2") << "a preview leaves the target alone";
  EXPECT_EQ(branch_named("main"), p_.branch);
  expect_nothing_leaked();
  EXPECT_EQ(query_value(add_endpoint(preview), "SELECT v FROM t"), "v1");
}

INSTANTIATE_TEST_SUITE_P(EachStep, PreviewRestoreCrashTest,
                         points({"api.committed", "storage.filled", "create_timeline.executed"}),
                         point_name);

// A child branch with a running compute, deleted, killed at each step: afterwards the branch, its
// endpoint, its directory and its postmaster are all gone, and main serves v2.
class BranchDeleteCrashTest : public SnapshotCrashTest {};

TEST_P(BranchDeleteCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  const auto [kid_id, kid_ep] = make_kid();
  crash_during(point, [&] {
    // Woken, so the deletion has a compute to stop.
    EXPECT_EQ(query_value(a_->owner_conninfo(p_.password, kid_ep), "SELECT v FROM t"), "v2");
    a_->call("DELETE", fmt::format("/projects/{}/branches/{}", p_.id, kid_id));
  });
  EXPECT_EQ(a_->get(fmt::format("/projects/{}/branches/{}", p_.id, kid_id)).status, 404) << point;
  EXPECT_EQ(a_->get(fmt::format("/projects/{}/endpoints/{}", p_.id, kid_ep)).status, 404) << point;
  EXPECT_FALSE(fs::exists(a_->data_dir() / "branches" / kid_id));
  EXPECT_EQ(state(), "v2");
  expect_nothing_leaked();
}

INSTANTIATE_TEST_SUITE_P(EachStep, BranchDeleteCrashTest,
                         points({"api.committed", "suspend_compute.executed", "delete.stopped",
                                 "storage.renamed", "delete_timeline.executed"}),
                         point_name);

// The whole project (main with a running compute, a child, the snapshot v1), deleted, killed at
// each step: afterwards the project answers 404 and its directories, rows and postmasters are all
// gone.
class ProjectDeleteCrashTest : public SnapshotCrashTest {};

TEST_P(ProjectDeleteCrashTest, FinishesAfterRestart) {
  const std::string point = GetParam();
  auto kid = a_->post(fmt::format("/projects/{}/branches", p_.id), {{"branch", {{"name", "kid"}}}});
  ASSERT_EQ(kid.status, 201) << kid.raw;
  a_->wait_operations(p_.id, kid.body.at("operations"));
  crash_during(point, [&] { a_->call("DELETE", fmt::format("/projects/{}", p_.id)); });
  // The API forgets a deleted project at once; its operations then run in the background.
  for (int i = 0; i < 1200 && !(entries(a_->data_dir() / "branches").empty() &&
                                entries(a_->data_dir() / "snapshots").empty());
       ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(a_->get(fmt::format("/projects/{}", p_.id)).status, 404) << point << "\n"
                                                                     << a_->log_tail();
  EXPECT_EQ(a_->get("/projects").body.at("projects").as_array().size(), 0u);
  EXPECT_EQ(entries(a_->data_dir() / "branches"), std::set<std::string>{}) << a_->log_tail();
  EXPECT_EQ(entries(a_->data_dir() / "snapshots"), std::set<std::string>{}) << a_->log_tail();
  EXPECT_EQ(postmasters_under(a_->data_dir()), 0);
  EXPECT_EQ(a_->get(fmt::format("/projects/{}/operations", p_.id)).status, 404);
}

INSTANTIATE_TEST_SUITE_P(EachStep, ProjectDeleteCrashTest,
                         points({"api.committed", "suspend_compute.executed", "delete.stopped",
                                 "storage.renamed", "delete_timeline.executed",
                                 "project.removing"}),
                         point_name);

// What a branch or snapshot holds of the table `acked`: the number of rows and their sum.
struct Content {
  int64_t count = 0, sum = 0;
  void add(int64_t n) {
    ++count;
    sum += n;
  }
  std::string text() const { return fmt::format("{},{}", count, sum); }
};
constexpr const char* kContentSql = "SELECT count(*) || ',' || coalesce(sum(n), 0) FROM acked";

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// Kills at random moments. Each round acknowledges one write on main, makes one call (branch
// create, snapshot, finalized restore, preview restore, branch delete or project delete), kills
// argond after a random delay, and restarts it. A model says what every branch and snapshot must
// hold: a snapshot or branch holds every write acknowledged before its call, and exactly those;
// main after a finalized restore holds exactly the snapshot. After each round: every operation
// finished, the catalog matches the disk, one postmaster per active endpoint, main and the branch
// the round touched serve their modelled content (every branch every tenth round).
// ARGON_CRASH_ROUNDS sets the number of rounds; ARGON_CRASH_SEED replays a run.
TEST(RandomKillTest, EveryOperationSurvivesKillsAtRandomMoments) {
  ::signal(SIGPIPE, SIG_IGN);
  const int rounds = env_int("ARGON_CRASH_ROUNDS", 170);
  const uint64_t seed = std::getenv("ARGON_CRASH_SEED")
                            ? std::strtoull(std::getenv("ARGON_CRASH_SEED"), nullptr, 10)
                            : std::random_device{}();
  std::mt19937_64 rng(seed);
  std::cout << "random kills: seed " << seed << " (ARGON_CRASH_SEED), " << rounds << " rounds"
            << std::endl;

  Argond a;
  const TestProject p = create_project(a, {{"name", "random-kills"}});
  auto main_info = [&] { return a.owner_conninfo(p.password, p.endpoint); };
  query_value(main_info(), "CREATE TABLE acked (n bigint PRIMARY KEY)");

  struct Kid {
    Content content;
    std::string endpoint;  // "" for a branch without one ('main (old)')
  };
  std::string main_branch = p.branch;
  Content main;
  std::map<std::string, Content> snapshots;
  std::map<std::string, Kid> kids;
  std::string scratch;  // a second project, made to be deleted
  int64_t next = 0;
  int interrupted = 0;
  std::map<std::string, int> done;

  auto branches = [&](const std::string& project) {
    return list(a, fmt::format("/projects/{}/branches", project), "branches");
  };
  auto serves = [&](const std::string& info) {
    try {
      return query_value(info, kContentSql);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  auto check = [&](bool every_branch) {
    std::vector<std::string> projects{p.id};
    if (!scratch.empty()) projects.push_back(scratch);
    std::set<std::string> branch_ids, snapshot_ids;
    int active = 0;
    for (const auto& project : projects) {
      for (const auto& op :
           list(a, fmt::format("/projects/{}/operations?limit=1000", project), "operations")) {
        const std::string status = str(op, "status");
        EXPECT_TRUE(status == "finished" || status == "skipped") << json::serialize(op) << "\n"
                                                                 << a.log_tail();
      }
      for (const auto& b : branches(project)) branch_ids.insert(str(b, "id"));
      for (const auto& s : list(a, fmt::format("/projects/{}/snapshots", project), "snapshots")) {
        snapshot_ids.insert(str(s, "id"));
      }
      for (const auto& ep : list(a, fmt::format("/projects/{}/endpoints", project), "endpoints")) {
        active += str(ep, "current_state") == "active";
      }
    }
    // A deleted project's operations run on after the API forgot it.
    for (int i = 0; i < 600 && (entries(a.data_dir() / "branches") != branch_ids ||
                                entries(a.data_dir() / "snapshots") != snapshot_ids);
         ++i) {
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(entries(a.data_dir() / "branches"), branch_ids) << a.log_tail();
    EXPECT_EQ(entries(a.data_dir() / "snapshots"), snapshot_ids) << a.log_tail();
    EXPECT_EQ(postmasters_under(a.data_dir()), active);
    EXPECT_EQ(serves(main_info()), main.text()) << "main, through its unchanged connection string";
    if (every_branch) {
      for (const auto& [id, kid] : kids) {
        if (!kid.endpoint.empty()) {
          EXPECT_EQ(serves(a.owner_conninfo(p.password, kid.endpoint)), kid.content.text()) << id;
        }
      }
    }
  };
  auto pick = [&](const auto& m) {
    auto it = m.begin();
    std::advance(it, std::uniform_int_distribution<size_t>(0, m.size() - 1)(rng));
    return it->first;
  };

  enum Kind { kCreate, kSnapshot, kRestore, kPreview, kDelete, kDeleteProject };
  const char* names[] = {"branch create",   "snapshot",      "finalized restore",
                         "preview restore", "branch delete", "project delete"};
  const int max_delay_ms[] = {500, 400, 600, 400, 150, 300};  // about each operation's duration
  for (int round = 0; round < rounds && !::testing::Test::HasFatalFailure(); ++round) {
    Kind kind = static_cast<Kind>(std::discrete_distribution<int>({3, 3, 2, 2, 2, 1})(rng));
    std::set<std::string> parents;
    for (const auto& b : branches(p.id)) {
      if (b.as_object().contains("parent_id")) parents.insert(str(b, "parent_id"));
    }
    std::vector<std::string> leaves;  // kids without children: the ones a delete may take
    for (const auto& [id, kid] : kids) {
      if (!parents.contains(id)) leaves.push_back(id);
    }
    if (kids.size() >= 4 && !leaves.empty()) kind = kDelete;
    if ((kind == kRestore || kind == kPreview) && snapshots.empty()) kind = kSnapshot;
    if (kind == kDelete && leaves.empty()) kind = kCreate;
    SCOPED_TRACE(fmt::format("round {}: {} (seed {})", round, names[kind], seed));
    ++done[names[kind]];

    query_value(main_info(), fmt::format("INSERT INTO acked VALUES ({})", ++next));
    main.add(next);
    const std::string tag = fmt::format("r{}", round);
    const std::string snapshot = kind == kRestore || kind == kPreview ? pick(snapshots) : "";
    const std::string victim =
        kind == kDelete ? leaves[std::uniform_int_distribution<size_t>(0, leaves.size() - 1)(rng)]
                        : "";
    if (kind == kDeleteProject && scratch.empty())
      scratch = create_project(a, {{"name", "scratch"}}).id;

    const auto delay =
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, max_delay_ms[kind])(rng));
    const pid_t pid = a.pid();
    std::thread killer([&] {
      std::this_thread::sleep_for(delay);
      ::kill(pid, SIGKILL);
    });
    try {
      switch (kind) {
        case kCreate:
          a.post(fmt::format("/projects/{}/branches", p.id),
                 {{"branch", {{"name", tag}, {"parent_id", main_branch}}},
                  {"endpoints", {{{"type", "read_write"}}}}});
          break;
        case kSnapshot:
          a.call("POST",
                 fmt::format("/projects/{}/branches/{}/snapshot?name={}", p.id, main_branch, tag));
          break;
        case kRestore:
          a.call(
              "POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, snapshot),
              fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", main_branch));
          break;
        case kPreview:
          a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, snapshot),
                 fmt::format(R"({{"name":"{}","finalize_restore":false}})", tag));
          break;
        case kDelete:
          a.call("DELETE", fmt::format("/projects/{}/branches/{}", p.id, victim));
          break;
        case kDeleteProject:
          a.call("DELETE", fmt::format("/projects/{}", scratch));
          break;
      }
    } catch (const std::exception&) {
      // Killed before it answered.
    }
    killer.join();
    a.kill9();
    for (int i = 0; i < 200 && postmasters_under(a.data_dir()) > 0; ++i)
      std::this_thread::sleep_for(25ms);
    a.start();
    a.wait_idle(p.id);
    {
      std::ifstream in(a.data_dir() / "argond.stdout");  // this start's log: was anything running?
      const std::string log((std::istreambuf_iterator<char>(in)), {});
      interrupted += log.find("was interrupted") != std::string::npos;
    }

    // What the call did, if it got as far as its commit.
    std::string touched;
    switch (kind) {
      case kCreate:
        for (const auto& b : branches(p.id)) {
          if (str(b, "name") != tag) continue;
          touched = str(b, "id");
          kids[touched].content = main;
          for (const auto& ep : list(a, fmt::format("/projects/{}/endpoints", p.id), "endpoints")) {
            if (str(ep, "branch_id") == touched) kids[touched].endpoint = str(ep, "id");
          }
          EXPECT_FALSE(kids[touched].endpoint.empty()) << "the new branch's endpoint";
        }
        break;
      case kSnapshot:
        for (const auto& s : list(a, fmt::format("/projects/{}/snapshots", p.id), "snapshots")) {
          if (str(s, "name") == tag) snapshots[str(s, "id")] = main;
        }
        break;
      case kRestore:
        for (const auto& b : branches(p.id)) {
          if (!b.at("default").as_bool() || str(b, "id") == main_branch) continue;
          kids[main_branch] = Kid{main, ""};  // now 'main (old)', without an endpoint
          main_branch = str(b, "id");
          main = snapshots.at(snapshot);
        }
        break;
      case kPreview:
        for (const auto& b : branches(p.id)) {
          if (str(b, "name") != tag) continue;
          touched = str(b, "id");
          auto ep = a.post(fmt::format("/projects/{}/endpoints", p.id),
                           {{"endpoint", {{"branch_id", touched}, {"type", "read_write"}}}});
          ASSERT_EQ(ep.status, 201) << ep.raw;
          a.wait_operations(p.id, ep.body.at("operations"));
          kids[touched] = Kid{snapshots.at(snapshot), str(ep.body.at("endpoint"), "id")};
        }
        break;
      case kDelete:
        if (a.get(fmt::format("/projects/{}/branches/{}", p.id, victim)).status == 404)
          kids.erase(victim);
        break;
      case kDeleteProject:
        if (a.get(fmt::format("/projects/{}", scratch)).status == 404) scratch.clear();
        break;
    }
    if (!touched.empty() && !kids[touched].endpoint.empty()) {
      EXPECT_EQ(serves(a.owner_conninfo(p.password, kids[touched].endpoint)),
                kids[touched].content.text())
          << "the branch holds every write acknowledged before the call";
    }
    check(round % 10 == 9 || round == rounds - 1);
  }
  std::cout << "random kills: " << rounds << " kill points, " << interrupted
            << " with an operation running;";
  for (const auto& [name, n] : done) std::cout << " " << name << " " << n;
  std::cout << std::endl;
}

}  // namespace
}  // namespace argon::testing
