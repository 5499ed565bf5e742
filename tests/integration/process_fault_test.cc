// Settings PostgreSQL refuses are a 400 with its reason, and nothing changes. A compute that still
// fails to start (a conflict only a start finds): its operation fails with PostgreSQL's own reason,
// a client that wakes it gets an ErrorResponse saying why (no hang), no postmaster is left
// half-started, other branches keep serving, and the data is all there once the cause is fixed.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;

TEST(ProcessFaultTest, RefusedSettingsChangeNothingAndAComputeThatCannotStartSaysWhy) {
  Argond a;
  const TestProject p = create_project(a, {{"name", "faulty"}});
  const std::string info = a.owner_conninfo(p.password, p.endpoint);
  query_value(info, "CREATE TABLE t AS SELECT generate_series(1, 1000) AS n");
  auto other = a.post(fmt::format("/projects/{}/branches", p.id),
                      {{"branch", {{"name", "other"}}}, {"endpoints", {{{"type", "read_write"}}}}});
  ASSERT_EQ(other.status, 201) << other.raw;
  a.wait_operations(p.id, other.body.at("operations"));
  const std::string other_info = a.owner_conninfo(
      p.password, std::string(other.body.at("endpoints").at(0).at("id").as_string()));

  // A value PostgreSQL refuses: the API asks it (postgres -C) before changing anything.
  const std::string endpoint_path = fmt::format("/projects/{}/endpoints/{}", p.id, p.endpoint);
  auto refused = a.call("PATCH", endpoint_path,
                        R"({"endpoint":{"settings":{"pg_settings":{"shared_buffers":"plenty"}}}})");
  EXPECT_EQ(refused.status, 400) << refused.raw;
  EXPECT_NE(refused.raw.find(R"(invalid value for parameter \"shared_buffers\": \"plenty\")"),
            std::string::npos)
      << refused.raw;
  refused = a.call("PATCH", endpoint_path,
                   R"({"endpoint":{"settings":{"pg_settings":{"work_mem":"4XB"}}}})");
  EXPECT_EQ(refused.status, 400) << refused.raw;
  refused =
      a.post("/projects",
             {{"project",
               {{"default_endpoint_settings", {{"pg_settings", {{"no_such_setting", "1"}}}}}}}});
  EXPECT_EQ(refused.status, 400) << refused.raw;
  EXPECT_NE(refused.raw.find("no_such_setting"), std::string::npos) << refused.raw;
  EXPECT_EQ(query_value(info, "SELECT count(*) FROM t"), "1000")
      << "the endpoint kept serving, unchanged";
  EXPECT_EQ(a.get(endpoint_path).body.at("endpoint").at("settings").as_object().size(), 0u)
      << "nothing changed";

  // A conflict only a start finds: argond archives every compute's WAL for the branch's history
  // (archive_mode=on; it also streams WAL for live captures).
  auto patch = a.call("PATCH", endpoint_path,
                      R"({"endpoint":{"settings":{"pg_settings":{"wal_level":"minimal"}}}})");
  ASSERT_EQ(patch.status, 200) << patch.raw;
  std::string error;
  a.wait_operations(p.id, patch.body.at("operations"));
  const auto ops = a.get(
      fmt::format("/projects/{}/operations?limit=1000", p.id));  // kept: the loop reads into it
  for (const auto& op : ops.body.at("operations").as_array()) {
    if (op.at("action") == "start_compute" && op.at("status") == "failed" && error.empty()) {
      error = std::string(op.at("error").as_string());
    }
  }
  EXPECT_NE(error.find("WAL archival cannot be enabled when wal_level is"), std::string::npos)
      << "the operation says PostgreSQL's reason: " << error;

  // A client waking it gets the reason as an ErrorResponse, at once.
  try {
    query_value(info, "SELECT 1");
    ADD_FAILURE() << "a compute that cannot start served a query";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("when wal_level is"), std::string::npos) << e.what();
  }
  EXPECT_EQ(postmasters_under(a.data_dir() / "branches" / p.branch), 0) << "nothing half-started";
  EXPECT_EQ(query_value(other_info, "SELECT count(*) FROM t"), "1000")
      << "another branch keeps serving";
  EXPECT_EQ(a.get(endpoint_path).body.at("endpoint").at("current_state"), "idle");

  // Fixed, it serves its data again.
  patch = a.call("PATCH", endpoint_path,
                 R"({"endpoint":{"settings":{"pg_settings":{"shared_buffers":"16MB"}}}})");
  ASSERT_EQ(patch.status, 200) << patch.raw;
  for (const auto& s : a.wait_operations(p.id, patch.body.at("operations")))
    EXPECT_EQ(s, "finished") << a.log_tail();
  EXPECT_EQ(query_value(info, "SELECT count(*) FROM t"), "1000");
  EXPECT_EQ(query_value(info, "SHOW shared_buffers"), "16MB");
}

}  // namespace
}  // namespace argon::testing
