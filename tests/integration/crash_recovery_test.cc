// kill -9 of argond in the middle of operations, then a restart: every operation reaches a terminal
// status, no postgres is orphaned or duplicated, no directory is leaked or half-written, and the
// catalog matches the disk.
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace argon::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::set<std::string> dirs_on_disk(const fs::path& data_dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(data_dir / "branches")) out.insert(e.path().filename().string());
  return out;
}

TEST(CrashRecoveryTest, KillNineDuringOperationsThenRestartIsConsistent) {
  auto a = std::make_unique<Argond>();
  auto r = a->post("/projects", {{"project", {{"name", "crashy"}}}});
  ASSERT_EQ(r.status, 201);
  const std::string p(r.body.at("project").at("id").as_string());
  const std::string main_branch(r.body.at("branch").at("id").as_string());
  a->wait_idle(p);
  ASSERT_TRUE(a->connect(main_branch, "neondb").exec("CREATE TABLE t AS SELECT generate_series(1, 20000) AS id"));

  // Kill at increasing delays after submitting a burst of work, so the kill lands in different steps.
  const std::vector<int> delays_ms = {0, 5, 20, 60, 150, 400};
  int round = 0;
  for (int delay : delays_ms) {
    SCOPED_TRACE(fmt::format("kill after {} ms", delay));
    auto b = a->post(fmt::format("/projects/{}/branches", p),
                     {{"branch", {{"name", fmt::format("b{}", round)}}}, {"endpoints", {{{"type", "read_write"}}}}});
    ASSERT_EQ(b.status, 201) << b.raw;
    if (round > 0) {
      // Also delete the previous round's branch if it survived.
      auto list = a->get(fmt::format("/projects/{}/branches?search=b{}", p, round - 1));
      for (const auto& br : list.body.at("branches").as_array()) {
        a->call("DELETE", fmt::format("/projects/{}/branches/{}", p, std::string(br.at("id").as_string())));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    a->kill9();
    // Computes die with argond (parent-death signal); give them a moment.
    for (int i = 0; i < 200 && postmasters_under(a->data_dir()) > 0; ++i) std::this_thread::sleep_for(25ms);
    a->start();
    a->wait_idle(p);

    // Every operation is terminal.
    auto ops = a->get(fmt::format("/projects/{}/operations?limit=1000", p));
    for (const auto& op : ops.body.at("operations").as_array()) {
      auto s = op.at("status").as_string();
      EXPECT_TRUE(s == "finished" || s == "failed" || s == "skipped" || s == "cancelled") << s;
    }
    // The catalog matches the disk: every branch has a complete directory, nothing else is there.
    std::set<std::string> catalog;
    auto branches = a->get(fmt::format("/projects/{}/branches", p));
    for (const auto& br : branches.body.at("branches").as_array()) {
      std::string id(br.at("id").as_string());
      catalog.insert(id);
      EXPECT_EQ(br.at("current_state").as_string(), "ready") << id;
      EXPECT_TRUE(fs::exists(a->data_dir() / "branches" / id / "pgdata" / "PG_VERSION")) << id;
    }
    EXPECT_EQ(dirs_on_disk(a->data_dir()), catalog) << a->log_tail();
    // Exactly one postmaster per active endpoint (none orphaned or duplicated).
    auto eps = a->get(fmt::format("/projects/{}/endpoints", p));
    int active = 0;
    for (const auto& ep : eps.body.at("endpoints").as_array()) active += ep.at("current_state").as_string() == "active";
    EXPECT_EQ(postmasters_under(a->data_dir()), active);
    // Every surviving branch serves its data once started.
    for (const auto& ep : eps.body.at("endpoints").as_array()) {
      std::string id(ep.at("id").as_string()), branch(ep.at("branch_id").as_string());
      auto st = a->call("POST", fmt::format("/projects/{}/endpoints/{}/start", p, id));
      ASSERT_EQ(st.status, 200) << st.raw;
      for (const auto& s : a->wait_operations(p, st.body.at("operations"))) EXPECT_EQ(s, "finished") << a->log_tail();
      EXPECT_EQ(a->connect(branch, "neondb").exec("SELECT count(*) FROM t")->value(), "20000") << branch;
    }
    EXPECT_EQ(postmasters_under(a->data_dir()), static_cast<int>(eps.body.at("endpoints").as_array().size()));
    ++round;
  }
}

}  // namespace
}  // namespace argon::testing
