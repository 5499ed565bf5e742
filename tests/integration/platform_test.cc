// End-to-end behaviour of the core platform through the API, checked inside real PostgreSQL.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "common/clock.h"
#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string str(const json::value& v, std::initializer_list<const char*> path) {
  const json::value* cur = &v;
  for (const char* k : path) cur = &cur->at(k);
  return std::string(cur->as_string());
}

using Project = TestProject;

Project create_project(Argond& a, const std::string& name = "p") {
  return argon::testing::create_project(a, {{"name", name}});
}

TEST(PlatformTest, ProjectLifecycleMatchesWhatPostgresShows) {
  Argond a;
  Project p = create_project(a, "shop");

  auto ep = a.get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint));
  EXPECT_EQ(str(ep.body, {"endpoint", "current_state"}), "active");
  EXPECT_NE(str(ep.body, {"endpoint", "host"}).find(p.endpoint), std::string::npos);
  EXPECT_TRUE(ep.body.at("endpoint").as_object().contains("started_at"));

  auto branch = a.get(fmt::format("/projects/{}/branches/{}", p.id, p.branch));
  EXPECT_EQ(str(branch.body, {"branch", "current_state"}), "ready");
  EXPECT_FALSE(
      branch.body.at("branch").as_object().contains("parent_id"));  // root: absent, not null

  // The role and database the API reports exist in the branch's Postgres with that password.
  auto conn = a.connect(p.branch, "neondb");
  auto owner =
      conn.exec("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'neondb'");
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->value(), "neondb_owner");
  auto reveal = a.get(
      fmt::format("/projects/{}/branches/{}/roles/neondb_owner/reveal_password", p.id, p.branch));
  EXPECT_EQ(str(reveal.body, {"password"}), p.password);
  auto verifier = conn.exec(
      "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'neondb_owner'");
  EXPECT_EQ(verifier->value(), "t");

  // Roles and databases created through the API appear in \du and \l; deletes remove them.
  auto role = a.post(fmt::format("/projects/{}/branches/{}/roles", p.id, p.branch),
                     {{"role", {{"name", "app"}}}});
  ASSERT_EQ(role.status, 201) << role.raw;
  EXPECT_EQ(str(role.body, {"role", "password"}).size(), 24u);
  a.wait_operations(p.id, role.body.at("operations"));
  auto db = a.post(fmt::format("/projects/{}/branches/{}/databases", p.id, p.branch),
                   {{"database", {{"name", "analytics"}, {"owner_name", "app"}}}});
  ASSERT_EQ(db.status, 201) << db.raw;
  a.wait_operations(p.id, db.body.at("operations"));
  auto check = conn.exec(
      "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = 'app'), "
      "(SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'analytics')");
  EXPECT_EQ(check->value(0, 0), "1");
  EXPECT_EQ(check->value(0, 1), "app");

  auto rename =
      a.call("PATCH", fmt::format("/projects/{}/branches/{}/databases/analytics", p.id, p.branch),
             R"({"database":{"name":"reports"}})");
  ASSERT_EQ(rename.status, 200) << rename.raw;
  a.wait_operations(p.id, rename.body.at("operations"));
  EXPECT_EQ(conn.exec("SELECT count(*) FROM pg_database WHERE datname = 'reports'")->value(), "1");

  auto reset = a.call(
      "POST", fmt::format("/projects/{}/branches/{}/roles/app/reset_password", p.id, p.branch));
  ASSERT_EQ(reset.status, 200) << reset.raw;
  a.wait_operations(p.id, reset.body.at("operations"));
  auto del_db =
      a.call("DELETE", fmt::format("/projects/{}/branches/{}/databases/reports", p.id, p.branch));
  a.wait_operations(p.id, del_db.body.at("operations"));
  auto del_role =
      a.call("DELETE", fmt::format("/projects/{}/branches/{}/roles/app", p.id, p.branch));
  a.wait_operations(p.id, del_role.body.at("operations"));
  auto gone = conn.exec(
      "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = 'app') + "
      "(SELECT count(*) FROM pg_database WHERE datname = 'reports')");
  EXPECT_EQ(gone->value(), "0");
  auto roles = a.get(fmt::format("/projects/{}/branches/{}/roles", p.id, p.branch));
  EXPECT_EQ(roles.body.at("roles").as_array().size(), 1u);

  // Suspend is a clean shutdown; start brings it back.
  auto sus = a.call("POST", fmt::format("/projects/{}/endpoints/{}/suspend", p.id, p.endpoint));
  a.wait_operations(p.id, sus.body.at("operations"));
  EXPECT_EQ(postmasters_under(a.data_dir()), 0);
  EXPECT_EQ(str(a.get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint)).body,
                {"endpoint", "current_state"}),
            "idle");
  EXPECT_FALSE(
      std::filesystem::exists(a.data_dir() / "branches" / p.branch / "pgdata" / "postmaster.pid"));
  auto start = a.call("POST", fmt::format("/projects/{}/endpoints/{}/start", p.id, p.endpoint));
  a.wait_operations(p.id, start.body.at("operations"));
  EXPECT_EQ(postmasters_under(a.data_dir()), 1);

  // Delete: computes stop, data goes, the project is 404.
  auto del = a.call("DELETE", fmt::format("/projects/{}", p.id));
  ASSERT_EQ(del.status, 200) << del.raw;
  for (int i = 0; i < 400 && a.get("/projects/" + p.id).status != 404; ++i)
    std::this_thread::sleep_for(25ms);
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::filesystem::exists(a.data_dir() / "branches" / p.branch) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(std::filesystem::exists(a.data_dir() / "branches" / p.branch));
  EXPECT_EQ(postmasters_under(a.data_dir()), 0);
  EXPECT_EQ(a.get("/projects/" + p.id).status, 404);
}

TEST(PlatformTest, ChildBranchHoldsEveryRowCommittedBeforeTheCreateCall) {
  Argond a;
  Project p = create_project(a);
  {
    auto c = a.connect(p.branch, "neondb");
    ASSERT_TRUE(c.exec("CREATE TABLE t(id bigint primary key, payload text)"));
  }
  std::atomic<int64_t> committed{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto c = a.connect(p.branch, "neondb");
    for (int64_t i = 1; !stop; ++i) {
      if (!c.exec(fmt::format("INSERT INTO t VALUES ({}, repeat('x', 200))", i))) break;
      committed = i;  // acknowledged
    }
  });
  while (committed < 500) std::this_thread::sleep_for(5ms);
  const int64_t before_call = committed.load();
  auto r = a.post(fmt::format("/projects/{}/branches", p.id),
                  {{"branch", {{"name", "child"}}}, {"endpoints", {{{"type", "read_write"}}}}});
  ASSERT_EQ(r.status, 201) << r.raw;
  const std::string child = str(r.body, {"branch", "id"});
  EXPECT_EQ(str(r.body, {"branch", "parent_id"}), p.branch);
  for (const auto& s : a.wait_operations(p.id, r.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  stop = true;
  writer.join();

  auto cc = a.connect(child, "neondb");
  auto rows = cc.exec("SELECT count(*), coalesce(max(id), 0) FROM t");
  ASSERT_TRUE(rows);
  const int64_t count = std::stoll(rows->value(0, 0)), max_id = std::stoll(rows->value(0, 1));
  EXPECT_GE(max_id, before_call);
  EXPECT_EQ(count, max_id);  // a consistent prefix: no gaps, nothing torn
  // Later writes on either side stay there.
  ASSERT_TRUE(cc.exec("INSERT INTO t VALUES (-1, 'child only')"));
  auto pc = a.connect(p.branch, "neondb");
  EXPECT_EQ(pc.exec("SELECT count(*) FROM t WHERE id = -1")->value(), "0");
  ASSERT_TRUE(pc.exec("INSERT INTO t VALUES (-2, 'parent only')"));
  EXPECT_EQ(cc.exec("SELECT count(*) FROM t WHERE id = -2")->value(), "0");
  // The child got the parent's roles and databases in the API too.
  auto roles = a.get(fmt::format("/projects/{}/branches/{}/roles", p.id, child));
  EXPECT_EQ(str(roles.body.at("roles").at(0), {"name"}), "neondb_owner");
}

TEST(PlatformTest, BranchOfSuspendedParentAndDeletionRules) {
  Argond a;
  Project p = create_project(a);
  ASSERT_TRUE(a.connect(p.branch, "neondb").exec("CREATE TABLE kept AS SELECT 42 AS v"));
  auto sus = a.call("POST", fmt::format("/projects/{}/endpoints/{}/suspend", p.id, p.endpoint));
  a.wait_operations(p.id, sus.body.at("operations"));

  auto child = a.post(fmt::format("/projects/{}/branches", p.id), {{"branch", {{"name", "dev"}}}});
  ASSERT_EQ(child.status, 201) << child.raw;
  a.wait_operations(p.id, child.body.at("operations"));
  const std::string dev = str(child.body, {"branch", "id"});
  auto grandchild = a.call("POST", fmt::format("/projects/{}/branches", p.id),
                           fmt::format(R"({{"branch":{{"parent_id":"{}","name":"gc"}}}})", dev));
  ASSERT_EQ(grandchild.status, 201) << grandchild.raw;
  a.wait_operations(p.id, grandchild.body.at("operations"));
  const std::string gc = str(grandchild.body, {"branch", "id"});

  auto ep = a.post(fmt::format("/projects/{}/endpoints", p.id),
                   {{"endpoint", {{"branch_id", gc}, {"type", "read_write"}}}});
  ASSERT_EQ(ep.status, 201) << ep.raw;
  a.wait_operations(p.id, ep.body.at("operations"));
  EXPECT_EQ(a.connect(gc, "neondb").exec("SELECT v FROM kept")->value(), "42");

  // Refusals: default branch, a branch with children, a protected branch.
  EXPECT_EQ(a.call("DELETE", fmt::format("/projects/{}/branches/{}", p.id, p.branch)).status, 409);
  auto with_child = a.call("DELETE", fmt::format("/projects/{}/branches/{}", p.id, dev));
  EXPECT_EQ(with_child.status, 409);
  EXPECT_NE(with_child.raw.find("child"), std::string::npos);
  ASSERT_EQ(a.call("PATCH", fmt::format("/projects/{}/branches/{}", p.id, gc),
                   R"({"branch":{"protected":true}})")
                .status,
            200);
  EXPECT_EQ(a.call("DELETE", fmt::format("/projects/{}/branches/{}", p.id, gc)).status, 409);
  ASSERT_EQ(a.call("PATCH", fmt::format("/projects/{}/branches/{}", p.id, gc),
                   R"({"branch":{"protected":false}})")
                .status,
            200);

  auto del = a.call("DELETE", fmt::format("/projects/{}/branches/{}", p.id, gc));
  ASSERT_EQ(del.status, 200) << del.raw;
  for (const auto& s : a.wait_operations(p.id, del.body.at("operations"))) EXPECT_EQ(s, "finished");
  EXPECT_FALSE(std::filesystem::exists(a.data_dir() / "branches" / gc));
  EXPECT_EQ(a.get(fmt::format("/projects/{}/branches/{}", p.id, gc)).status, 404);
  EXPECT_EQ(a.get(fmt::format("/projects/{}/endpoints/{}", p.id, str(ep.body, {"endpoint", "id"})))
                .status,
            404);

  // set_as_default moves the flag.
  auto def = a.call("POST", fmt::format("/projects/{}/branches/{}/set_as_default", p.id, dev));
  ASSERT_EQ(def.status, 200);
  EXPECT_TRUE(a.get(fmt::format("/projects/{}/branches/{}", p.id, dev))
                  .body.at("branch")
                  .at("default")
                  .as_bool());
  EXPECT_FALSE(a.get(fmt::format("/projects/{}/branches/{}", p.id, p.branch))
                   .body.at("branch")
                   .at("default")
                   .as_bool());

  // Listing: sort, search, pagination.next, count.
  auto page = a.get(fmt::format("/projects/{}/branches?limit=1&sort_by=name&sort_order=asc", p.id));
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(str(page.body.at("branches").at(0), {"name"}), "dev");
  auto next = str(page.body, {"pagination", "next"});
  auto page2 = a.get(fmt::format(
      "/projects/{}/branches?limit=1&sort_by=name&sort_order=asc&cursor={}", p.id, next));
  EXPECT_EQ(str(page2.body.at("branches").at(0), {"name"}), "main");
  EXPECT_FALSE(page2.body.at("pagination").as_object().contains("next"));
  EXPECT_EQ(a.get(fmt::format("/projects/{}/branches/count?search=dev", p.id))
                .body.at("count")
                .as_int64(),
            1);  // no id word has "dev"
}

TEST(PlatformTest, MovingAnActiveEndpointServesTheNewBranch) {
  Argond a;
  Project p = create_project(a);
  ASSERT_TRUE(a.connect(p.branch, "neondb").exec("CREATE TABLE which AS SELECT 'main'::text AS b"));
  auto child = a.post(fmt::format("/projects/{}/branches", p.id), {{"branch", {{"name", "next"}}}});
  ASSERT_EQ(child.status, 201) << child.raw;
  a.wait_operations(p.id, child.body.at("operations"));
  const std::string next = str(child.body, {"branch", "id"});

  // Naming the branch it already serves is not a move: nothing to do.
  auto same = a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint),
                     fmt::format(R"({{"endpoint":{{"branch_id":"{}"}}}})", p.branch));
  EXPECT_EQ(same.status, 200);
  EXPECT_TRUE(same.body.at("operations").as_array().empty());
  auto moved = a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint),
                      fmt::format(R"({{"endpoint":{{"branch_id":"{}"}}}})", next));
  ASSERT_EQ(moved.status, 200) << moved.raw;
  EXPECT_EQ(str(moved.body, {"endpoint", "branch_id"}), next);
  for (const auto& s : a.wait_operations(p.id, moved.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();

  auto ep = a.get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint));
  EXPECT_EQ(str(ep.body, {"endpoint", "branch_id"}), next);
  EXPECT_EQ(str(ep.body, {"endpoint", "current_state"}), "active");
  EXPECT_EQ(a.connect(next, "neondb").exec("SELECT b FROM which")->value(), "main");
  EXPECT_EQ(postmasters_under(a.data_dir()), 1);  // the old branch's compute was stopped
  EXPECT_FALSE(
      std::filesystem::exists(a.data_dir() / "branches" / p.branch / "pgdata" / "postmaster.pid"));

  // Moving back and disabling in one PATCH: the binding sticks, the compute stops, none starts.
  auto back =
      a.call("PATCH", fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint),
             fmt::format(R"({{"endpoint":{{"branch_id":"{}","disabled":true}}}})", p.branch));
  ASSERT_EQ(back.status, 200) << back.raw;
  a.wait_operations(p.id, back.body.at("operations"));
  auto after = a.get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint));
  EXPECT_EQ(str(after.body, {"endpoint", "branch_id"}), p.branch);
  EXPECT_TRUE(after.body.at("endpoint").at("disabled").as_bool());
  EXPECT_EQ(str(after.body, {"endpoint", "current_state"}), "idle");
  EXPECT_EQ(postmasters_under(a.data_dir()), 0);
}

TEST(PlatformTest, ComputeKilledFromOutsideIsDetectedAndRestartable) {
  Argond a;
  Project p = create_project(a);
  std::ifstream pidfile(a.data_dir() / "branches" / p.branch / "pgdata" / "postmaster.pid");
  pid_t pm = 0;
  pidfile >> pm;
  ASSERT_GT(pm, 0);
  ::kill(pm, SIGKILL);
  std::string state;
  for (int i = 0; i < 200; ++i) {
    state = str(a.get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint)).body,
                {"endpoint", "current_state"});
    if (state == "idle") break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(state, "idle");
  auto start = a.call("POST", fmt::format("/projects/{}/endpoints/{}/start", p.id, p.endpoint));
  for (const auto& s : a.wait_operations(p.id, start.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  EXPECT_EQ(a.connect(p.branch, "neondb").exec("SELECT 1")->value(), "1");
}

TEST(PlatformTest, ExpiredBranchesAreDeletedWithTheirOperationsRecorded) {
  Argond a({"--expiry-check-seconds", "1"});
  Project p = create_project(a);
  const std::string expires = format_time(SystemClock().now_s() + 2);
  auto r = a.call("POST", fmt::format("/projects/{}/branches", p.id),
                  fmt::format(R"({{"branch":{{"name":"preview","expires_at":"{}"}}}})", expires));
  ASSERT_EQ(r.status, 201) << r.raw;
  const std::string id = str(r.body, {"branch", "id"});
  EXPECT_EQ(str(r.body, {"branch", "expires_at"}), expires);
  a.wait_operations(p.id, r.body.at("operations"));
  int status = 200;
  for (int i = 0; i < 600 && status != 404; ++i) {
    status = a.get(fmt::format("/projects/{}/branches/{}", p.id, id)).status;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 404);
  a.wait_idle(p.id);
  bool recorded = false;
  const auto ops = a.get(fmt::format("/projects/{}/operations?limit=100", p.id));
  for (const auto& op : ops.body.at("operations").as_array()) {
    recorded |= op.at("action").as_string() == "delete_timeline" &&
                op.at("branch_id").as_string() == id && op.at("status").as_string() == "finished";
  }
  EXPECT_TRUE(recorded);
  EXPECT_FALSE(std::filesystem::exists(a.data_dir() / "branches" / id));
}

TEST(PlatformTest, SigtermStopsEveryComputeCleanly) {
  auto a = std::make_unique<Argond>();
  Project p = create_project(*a);
  auto dir = a->data_dir();
  EXPECT_EQ(postmasters_under(dir), 1);
  a->terminate();
  EXPECT_EQ(postmasters_under(dir), 0);
  // Clean shutdown: no postmaster.pid, control file says "shut down".
  EXPECT_FALSE(std::filesystem::exists(dir / "branches" / p.branch / "pgdata" / "postmaster.pid"));
  a->start();
  auto r = a->get("/projects/" + p.id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(str(a->get(fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint)).body,
                {"endpoint", "current_state"}),
            "idle");
}

}  // namespace
}  // namespace argon::testing
