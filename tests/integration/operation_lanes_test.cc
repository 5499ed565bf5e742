// The operations engine's two lanes (ops/scheduler.h): starting a compute never waits behind a
// long data operation of another branch, in its own project or another. Before, operations ran one
// per project in creation order on two workers, so a waking client sat behind any clone in its
// project, and two long restores in two projects held both workers until the wake timed out.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <thread>

#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string op_status(Argond& a, const std::string& project, const std::string& op) {
  return str(a.get(fmt::format("/projects/{}/operations/{}", project, op)).body.at("operation"),
             "status");
}

TEST(OperationLanesTest, AWakeDoesNotWaitBehindRestoresInItsOwnProjectOrAnother) {
  // Each restore's clone is held 20 s at its last step: a long clone without a large database.
  ::setenv("ARGON_DELAY_AT", "restore.cloned:20000", 1);
  Argond a;
  ::unsetenv("ARGON_DELAY_AT");
  const TestProject pa = create_project(a, {{"name", "a"}});
  const TestProject pb = create_project(a, {{"name", "b"}});

  // A snapshot of each project's main branch, then A's endpoint suspended.
  std::vector<std::pair<const TestProject*, std::string>> snapshots;
  for (const TestProject* p : {&pa, &pb}) {
    auto r = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot", p->id, p->branch));
    ASSERT_EQ(r.status, 200) << r.raw;
    ASSERT_EQ(a.wait_operations(p->id, r.body.at("operations")),
              std::vector<std::string>{"finished"});
    snapshots.emplace_back(p, str(r.body.at("snapshot"), "id"));
  }
  auto sus = a.call("POST", fmt::format("/projects/{}/endpoints/{}/suspend", pa.id, pa.endpoint));
  ASSERT_EQ(sus.status, 200) << sus.raw;
  a.wait_operations(pa.id, sus.body.at("operations"));

  // A restore (a new root branch) in each project; both clones run, held at their last step.
  std::vector<std::pair<std::string, std::string>> restores;  // project, operation
  for (const auto& [p, snap] : snapshots) {
    auto r = a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p->id, snap), "{}");
    ASSERT_EQ(r.status, 200) << r.raw;
    restores.emplace_back(p->id, str(r.body.at("operations").at(0), "id"));
  }
  for (const auto& [project, op] : restores) {
    for (int i = 0; i < 400 && op_status(a, project, op) != "running"; ++i)
      std::this_thread::sleep_for(25ms);
    ASSERT_EQ(op_status(a, project, op), "running") << a.log_tail();
  }

  // A client of A's suspended endpoint wakes it and gets its answer while both restores still run.
  EXPECT_EQ(query_value(pa.uri, "SELECT 'awake'"), "awake");
  for (const auto& [project, op] : restores) {
    EXPECT_EQ(op_status(a, project, op), "running") << "the wake waited for the restore " << op;
  }
  for (const auto& [project, op] : restores) {
    EXPECT_EQ(a.wait_operations(project, json::array{json::object{{"id", op}}}),
              std::vector<std::string>{"finished"});
  }
}

// A finalized restore onto a suspended branch: the branch keeps serving its current data until the
// swap, so a client waking it while the restored copy is still being cloned gets in at once (and
// reads the current data); after the restore finished, connections read the restored data.
TEST(OperationLanesTest, ARestoreTargetWakesWhileItsRestoredCopyIsCloned) {
  ::setenv("ARGON_DELAY_AT", "restore.cloned:8000", 1);
  Argond a;
  ::unsetenv("ARGON_DELAY_AT");
  const TestProject p = create_project(a, {{"name", "target"}});
  query_value(p.uri, "CREATE TABLE t (v text); INSERT INTO t VALUES ('restored')");
  auto snap = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot", p.id, p.branch));
  ASSERT_EQ(snap.status, 200) << snap.raw;
  a.wait_operations(p.id, snap.body.at("operations"));
  query_value(p.uri, "UPDATE t SET v = 'current'");
  auto sus = a.call("POST", fmt::format("/projects/{}/endpoints/{}/suspend", p.id, p.endpoint));
  ASSERT_EQ(sus.status, 200) << sus.raw;
  a.wait_operations(p.id, sus.body.at("operations"));

  auto r = a.call(
      "POST",
      fmt::format("/projects/{}/snapshots/{}/restore", p.id, str(snap.body.at("snapshot"), "id")),
      fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", p.branch));
  ASSERT_EQ(r.status, 200) << r.raw;
  const auto& ops = r.body.at("operations").as_array();
  ASSERT_EQ(ops.size(), 2u) << r.raw;  // the clone, then the finalize
  const std::string clone = str(ops.at(0), "id");
  for (int i = 0; i < 400 && op_status(a, p.id, clone) != "running"; ++i)
    std::this_thread::sleep_for(25ms);
  ASSERT_EQ(op_status(a, p.id, clone), "running") << a.log_tail();

  EXPECT_EQ(query_value(p.uri, "SELECT v FROM t"), "current");
  EXPECT_EQ(op_status(a, p.id, clone), "running") << "the wake waited for the restore's clone";
  for (const auto& st : a.wait_operations(p.id, r.body.at("operations")))
    EXPECT_EQ(st, "finished") << a.log_tail();
  EXPECT_EQ(query_value(p.uri, "SELECT v FROM t"), "restored");
}

}  // namespace
}  // namespace argon::testing
