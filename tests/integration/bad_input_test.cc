// Table of bad requests: each gets the right 4xx with a Neon error body whose message names the
// problem, and none of them changes anything.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;

struct BadRequest {
  std::string method;
  std::string path;  // {p} project, {b} branch, {e} endpoint, {o} other project's branch
  std::string body;
  int status;
  std::string message_part;  // the message must contain this
  bool auth = true;
  std::vector<std::pair<std::string, std::string>> headers = {};
};

TEST(BadInputTest, EveryBadRequestGetsAClearErrorAndChangesNothing) {
  Argond a;
  auto p1 = a.post("/projects", {{"project", {{"name", "one"}}}});
  auto p2 = a.post("/projects", {{"project", {{"name", "two"}}}});
  ASSERT_EQ(p1.status, 201);
  ASSERT_EQ(p2.status, 201);
  const std::string p(p1.body.at("project").at("id").as_string());
  const std::string b(p1.body.at("branch").at("id").as_string());
  const std::string e(p1.body.at("endpoints").at(0).at("id").as_string());
  const std::string other_p(p2.body.at("project").at("id").as_string());
  const std::string o(p2.body.at("branch").at("id").as_string());
  a.wait_idle(p);
  a.wait_idle(other_p);

  const std::string long_name(300, 'n');
  const std::vector<BadRequest> cases = {
      // Authentication.
      {"GET", "/projects", "", 401, "missing API key", false},
      {"GET", "/projects", "", 401, "invalid", false, {{"Authorization", "Bearer nope"}}},
      {"GET", "/projects", "", 401, "missing API key", false, {{"Authorization", "Basic abc"}}},
      // Unknown ids and routes.
      {"GET", "/projects/no-such-project-1", "", 404, "project no-such-project-1 not found"},
      {"GET", "/projects/{p}/branches/br-no-such-1", "", 404, "branch br-no-such-1 not found"},
      {"GET", "/projects/{p}/endpoints/ep-no-such-1", "", 404, "endpoint ep-no-such-1 not found"},
      {"GET", "/projects/{p}/operations/00000000-0000-4000-8000-000000000000", "", 404,
       "operation"},
      {"GET", "/projects/{p}/branches/{b}/roles/nobody", "", 404, "role nobody not found"},
      {"GET", "/projects/{p}/branches/{b}/databases/nodb", "", 404, "database nodb not found"},
      {"GET", "/projects/{p}/branches/{b}/roles/nobody/reveal_password", "", 404, "role nobody"},
      {"GET", "/projects/BAD_ID!", "", 404, "not found"},
      {"GET", "/no/such/route", "", 404, "no API route"},
      {"PUT", "/projects/{p}", "{}", 405, "not allowed"},
      {"DELETE", "/api_keys/999999", "", 404, "API key 999999 not found"},
      // Another project's resources are invisible.
      {"GET", "/projects/{p}/branches/{o}", "", 404, "not found in project"},
      {"PATCH", "/projects/{p}/branches/{o}", R"({"branch":{"name":"x"}})", 404,
       "not found in project"},
      {"POST", "/projects/{p}/branches", R"({"branch":{"parent_id":"{o}"}})", 404,
       "branch.parent_id"},
      {"POST", "/projects/{p}/endpoints", R"({"endpoint":{"branch_id":"{o}","type":"read_write"}})",
       404, "endpoint.branch_id"},
      // Malformed JSON and wrong shapes.
      {"POST", "/projects", "{", 400, "not valid JSON"},
      {"POST", "/projects", "[1,2]", 400, "must be a JSON object"},
      {"POST", "/projects", R"({"project":"x"})", 400, "project: must be an object"},
      {"POST", "/projects", R"({"project":{"name":5}})", 400, "project.name: must be a string"},
      {"POST", "/projects", R"({"project":{"name":""}})", 400, "project.name: must be 1 to 256"},
      {"POST", "/projects", R"({"project":{"name":")" + long_name + R"("}})", 400, "project.name"},
      {"POST", "/projects", R"({"project":{"pg_version":"15"}})", 400,
       "project.pg_version: must be an integer"},
      {"POST", "/projects", R"({"project":{"pg_version":99}})", 400,
       "project.pg_version: must be between"},
      {"POST", "/projects", R"({"project":{"region_id":"mars-1"}})", 400, "project.region_id"},
      {"POST", "/projects", R"({"project":{"store_passwords":"yes"}})", 400,
       "project.store_passwords"},
      {"POST", "/projects", R"({"project":{"branch":{"role_name":"pg_evil"}}})", 400, "reserved"},
      {"POST", "/projects", R"({"project":{"branch":{"database_name":"template1"}}})", 400,
       "reserved"},
      {"POST", "/projects", std::string(100, '[') + std::string(100, ']'), 400, "not valid JSON"},
      {"PATCH", "/projects/{p}", R"({})", 400, "project: required"},
      {"GET", "/projects?limit=0", "", 400, "limit"},
      {"GET", "/projects?limit=abc", "", 400, "limit"},
      {"GET", "/projects?cursor=zzz", "", 400, "cursor"},
      // Branches.
      {"POST", "/projects/{p}/branches", R"({"branch":{"name":123}})", 400,
       "branch.name: must be a string"},
      {"POST", "/projects/{p}/branches", R"({"branch":{"name":"main"}})", 409, "already exists"},
      {"POST", "/projects/{p}/branches", R"({"branch":{"expires_at":"tomorrow"}})", 400,
       "branch.expires_at"},
      {"POST", "/projects/{p}/branches", R"({"branch":{"expires_at":"2001-01-01T00:00:00Z"}})", 400,
       "in the future"},
      {"POST", "/projects/{p}/branches", R"({"branch":{"protected":"yes"}})", 400,
       "branch.protected"},
      {"POST", "/projects/{p}/branches", R"({"branch":{"init_source":"magic"}})", 400,
       "branch.init_source"},
      {"POST", "/projects/{p}/branches", R"({"branch":{"parent_lsn":"soon"}})", 400,
       "branch.parent_lsn: must be an LSN"},
      {"POST", "/projects/{p}/branches", R"({"branch":{"parent_lsn":"0/1"}})", 400,
       "lsn is before retention window"},
      {"POST", "/projects/{p}/branches",
       R"({"branch":{"parent_timestamp":"2020-01-01T00:00:00Z"}})", 400,
       "timestamp is before retention window"},
      {"POST", "/projects/{p}/branches", R"({"endpoints":[{"type":"read_mostly"}]})", 400,
       "endpoints[0].type"},
      {"POST", "/projects/{p}/branches", R"({"endpoints":[{}]})", 400,
       "endpoints[0].type: required"},
      {"POST", "/projects/{p}/branches", R"({"endpoints":"x"})", 400,
       "endpoints: must be an array"},
      {"POST", "/projects/{p}/branches",
       R"({"endpoints":[{"type":"read_write","suspend_timeout_seconds":-5}]})", 400,
       "endpoints[0].suspend_timeout_seconds"},
      {"PATCH", "/projects/{p}/branches/{b}", R"({"branch":{"expires_at":"2999-01-01T00:00:00Z"}})",
       400, "default branch cannot expire"},
      {"PATCH", "/projects/{p}/branches/{b}", R"({"branch":{"name":""}})", 400, "branch.name"},
      {"DELETE", "/projects/{p}/branches/{b}", "", 409, "default branch"},
      {"GET", "/projects/{p}/branches?sort_by=size", "", 400, "sort_by"},
      {"GET", "/projects/{p}/branches?sort_order=up", "", 400, "sort_order"},
      {"GET", "/projects/{p}/branches?limit=100000", "", 400, "limit"},
      // Endpoints.
      {"POST", "/projects/{p}/endpoints", R"({"endpoint":{"type":"read_write"}})", 400,
       "endpoint.branch_id: required"},
      {"POST", "/projects/{p}/endpoints", R"({"endpoint":{"branch_id":"{b}"}})", 400,
       "endpoint.type: required"},
      {"POST", "/projects/{p}/endpoints", R"({"endpoint":{"branch_id":"{b}","type":"read_write"}})",
       409, "already has a read_write endpoint"},
      {"POST", "/projects/{p}/endpoints", R"({"endpoint":{"branch_id":"{b}","type":"read_only"}})",
       400, "read_only"},
      {"PATCH", "/projects/{p}/endpoints/{e}", R"({"endpoint":{"autoscaling_limit_min_cu":0.1}})",
       400, "endpoint.autoscaling_limit_min_cu"},
      {"PATCH", "/projects/{p}/endpoints/{e}",
       R"({"endpoint":{"settings":{"pg_settings":{"bad key":"1"}}}})", 400, "pg_settings"},
      {"PATCH", "/projects/{p}/endpoints/{e}", R"({"endpoint":{"pooler_mode":"statement"}})", 400,
       "endpoint.pooler_mode"},
      // Roles and databases.
      {"POST", "/projects/{p}/branches/{b}/roles", R"({"role":{}})", 400, "role.name: required"},
      {"POST", "/projects/{p}/branches/{b}/roles",
       R"({"role":{"name":")" + std::string(64, 'r') + R"("}})", 400, "role.name"},
      {"POST", "/projects/{p}/branches/{b}/roles", R"({"role":{"name":"neondb_owner"}})", 409,
       "already exists"},
      {"POST", "/projects/{p}/branches/{b}/roles", R"({"role":{"name":"argon_admin"}})", 400,
       "reserved"},
      {"POST", "/projects/{p}/branches/{b}/databases", R"({"database":{"name":"x"}})", 400,
       "database.owner_name: required"},
      {"POST", "/projects/{p}/branches/{b}/databases",
       R"({"database":{"name":"x","owner_name":"ghost"}})", 400, "role ghost does not exist"},
      {"POST", "/projects/{p}/branches/{b}/databases",
       R"({"database":{"name":"neondb","owner_name":"neondb_owner"}})", 409, "already exists"},
      {"DELETE", "/projects/{p}/branches/{b}/roles/neondb_owner", "", 409, "owns database neondb"},
      {"GET", "/projects/{p}/connection_uri?role_name=neondb_owner", "", 400,
       "database_name: required"},
      {"POST", "/api_keys", R"({"key_name":""})", 400, "key_name"},
  };
  ASSERT_GE(cases.size(), 40u);

  auto snapshot = [&] {
    std::string s;
    for (const auto& pid : {p, other_p}) {
      s += a.get(fmt::format("/projects/{}/branches", pid)).raw;
      s += a.get(fmt::format("/projects/{}/endpoints", pid)).raw;
      s += a.get(fmt::format("/projects/{}/branches/{}/roles", pid, pid == p ? b : o)).raw;
      s += a.get(fmt::format("/projects/{}/branches/{}/databases", pid, pid == p ? b : o)).raw;
      s += a.get(fmt::format("/projects/{}/operations?limit=1000", pid)).raw;
    }
    s += a.get("/projects?limit=400").raw;
    return s;
  };
  const std::string before = snapshot();

  auto fill = [&](std::string s) {
    for (auto [k, v] : {std::pair{"{p}", p}, {"{b}", b}, {"{e}", e}, {"{o}", o}}) {
      for (size_t pos; (pos = s.find(k)) != std::string::npos;) s.replace(pos, 3, v);
    }
    return s;
  };
  for (const auto& c : cases) {
    const std::string path = fill(c.path);
    auto r = a.call(c.method, path, fill(c.body), c.headers, c.auth);
    SCOPED_TRACE(c.method + " " + path + " " + c.body.substr(0, 120));
    EXPECT_EQ(r.status, c.status) << r.raw;
    ASSERT_TRUE(r.body.is_object()) << r.raw;
    const auto& o = r.body.as_object();
    ASSERT_TRUE(o.contains("code") && o.at("code").is_string()) << r.raw;
    ASSERT_TRUE(o.contains("message") && o.at("message").is_string()) << r.raw;
    EXPECT_NE(std::string(o.at("message").as_string()).find(c.message_part), std::string::npos)
        << "message: " << o.at("message").as_string();
    EXPECT_TRUE(o.contains("request_id"));
  }
  EXPECT_EQ(snapshot(), before) << "a rejected request changed state";
  // argond is still healthy and answers normally.
  EXPECT_EQ(a.get("/projects/" + p).status, 200);
  // X-Request-ID is echoed in error bodies.
  auto echoed = a.call("GET", "/projects/nope-nope-1", "", {{"X-Request-ID", "trace-123"}});
  EXPECT_EQ(echoed.body.at("request_id").as_string(), "trace-123");
}

TEST(BadInputTest, RevokedKeyIsRefusedImmediately) {
  Argond a;
  auto created = a.post("/api_keys", {{"key_name", "ci"}});
  ASSERT_EQ(created.status, 200) << created.raw;
  const std::string token(created.body.at("key").as_string());
  const int64_t id = created.body.at("id").as_int64();
  auto with_new = a.call("GET", "/projects", "", {{"Authorization", "Bearer " + token}}, false);
  EXPECT_EQ(with_new.status, 200);
  auto list = a.get("/api_keys");
  ASSERT_TRUE(list.body.is_array());                   // a bare array, as Neon's
  EXPECT_EQ(list.raw.find(token), std::string::npos);  // never the token
  auto revoked = a.call("DELETE", fmt::format("/api_keys/{}", id));
  EXPECT_EQ(revoked.status, 200);
  EXPECT_TRUE(revoked.body.at("revoked").as_bool());
  EXPECT_EQ(a.call("GET", "/projects", "", {{"Authorization", "Bearer " + token}}, false).status,
            401);
}

}  // namespace
}  // namespace argon::testing
