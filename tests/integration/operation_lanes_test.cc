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

}  // namespace
}  // namespace argon::testing
