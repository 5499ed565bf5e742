#include "api/router.h"

#include <gtest/gtest.h>

namespace argon::api {
namespace {

Router table() {
  Router r;
  r.add("GET", "/api/v2/projects/{project_id}", 0);
  r.add("DELETE", "/api/v2/projects/{project_id}", 1);
  r.add("GET", "/api/v2/projects/{project_id}/branches/count", 2);
  r.add("GET", "/api/v2/projects/{project_id}/branches/{branch_id}", 3);
  r.add("GET", "/api/v2/projects/{project_id}/branches/{branch_id}/roles/{role_name}", 4);
  return r;
}

TEST(RouterTest, MatchesByMethodAndPathAndCaptures) {
  const Router r = table();
  auto m = r.match("DELETE", "/api/v2/projects/odd-moon-1");
  EXPECT_EQ(m.route, 1);
  EXPECT_EQ(m.captures.at("project_id"), "odd-moon-1");
  // The first route in the table wins: 'count' is a literal before {branch_id}.
  EXPECT_EQ(r.match("GET", "/api/v2/projects/p/branches/count").route, 2);
  m = r.match("GET", "/api/v2/projects/p/branches/br-1");
  EXPECT_EQ(m.route, 3);
  EXPECT_EQ(m.captures.at("branch_id"), "br-1");
  // Empty segments and a trailing slash do not count.
  EXPECT_EQ(r.match("GET", "//api/v2//projects/p/").route, 0);
}

TEST(RouterTest, CapturesArePercentDecoded) {
  auto m = table().match("GET", "/api/v2/projects/p/branches/b/roles/my%20role%2Fx");
  ASSERT_EQ(m.route, 4);
  EXPECT_EQ(m.captures.at("role_name"), "my role/x");
}

TEST(RouterTest, AnotherMethodOnAKnownPathIsTold) {
  const Router r = table();
  auto m = r.match("PATCH", "/api/v2/projects/p");
  EXPECT_EQ(m.route, -1);
  EXPECT_TRUE(m.path_known);
  m = r.match("GET", "/api/v2/nothing/here");
  EXPECT_EQ(m.route, -1);
  EXPECT_FALSE(m.path_known);
  EXPECT_EQ(r.match("GET", "/api/v2/projects/%ZZ").route, -1) << "malformed percent-encoding";
}

TEST(RouterTest, CapturesThatCannotExistAreNotFound) {
  EXPECT_TRUE(
      Router::check_captures({{"project_id", "odd-moon-12345678"}, {"role_name", "Any Name"}}));
  auto bad = Router::check_captures({{"project_id", "UPPER"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(Router::check_captures({{"branch_id", std::string(61, 'a')}}));
  EXPECT_FALSE(Router::check_captures({{"role_name", std::string(64, 'a')}}));
  EXPECT_FALSE(Router::check_captures({{"database_name", ""}}));
  EXPECT_TRUE(Router::check_captures({{"operation_id", "0b8c6f1e-3A52"}}))
      << "operation ids are UUIDs";
}

}  // namespace
}  // namespace argon::api
