// libFuzzer target for the API router: a request line's method and target, split and decoded as
// ApiService::handle does, matched against a table with every shape of Argon's routes (literal
// segments, captures, captures between literals, one path under several methods), then the
// captures checked. Any crash, sanitizer report, or a match that breaks the table's shape is a bug.
#include <boost/url/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/router.h"

using namespace argon;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

struct Pattern {
  const char* method;
  const char* path;
  int captures;
};
constexpr Pattern kRoutes[] = {
    {"GET", "/api/v2/projects", 0},
    {"POST", "/api/v2/projects", 0},
    {"GET", "/api/v2/projects/shared", 0},
    {"GET", "/api/v2/projects/{project_id}", 1},
    {"DELETE", "/api/v2/projects/{project_id}", 1},
    {"GET", "/api/v2/projects/{project_id}/operations/{operation_id}", 2},
    {"GET", "/api/v2/projects/{project_id}/branches/count", 1},
    {"PATCH", "/api/v2/projects/{project_id}/branches/{branch_id}", 2},
    {"POST", "/api/v2/projects/{project_id}/branches/{branch_id}/snapshot", 2},
    {"GET", "/api/v2/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password",
     3},
    {"DELETE", "/api/v2/projects/{project_id}/branches/{branch_id}/databases/{database_name}", 3},
    {"POST", "/api/v2/projects/{project_id}/snapshots/{snapshot_id}/restore", 2},
    {"DELETE", "/api/v2/api_keys/{key_id}", 1},
};

const api::Router& router() {
  static const api::Router r = [] {
    api::Router out;
    for (int i = 0; i < static_cast<int>(std::size(kRoutes)); ++i)
      out.add(kRoutes[i].method, kRoutes[i].path, i);
    return out;
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr const char* kMethods[] = {"GET", "POST", "PATCH", "DELETE", "PUT"};
  const char* method = kMethods[data[0] % std::size(kMethods)];
  const std::string_view target(reinterpret_cast<const char*>(data + 1), size - 1);
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return 0;  // handle() answers 400 before routing
  const auto m = router().match(method, parsed->encoded_path());
  if (m.route < 0) {
    check(m.captures.empty());
    return 0;
  }
  const Pattern& p = kRoutes[m.route];
  check(m.path_known && std::string_view(p.method) == method);
  check(static_cast<int>(m.captures.size()) == p.captures);
  for (const auto& [name, value] : m.captures) {
    check(std::string_view(p.path).find("{" + name + "}") != std::string_view::npos);
    (void)value;
  }
  if (api::Router::check_captures(m.captures)) {
    for (const auto& [name, value] : m.captures) {
      if (name == "role_name" || name == "database_name") {
        check(!value.empty() && value.size() <= 63);
      } else if (name != "key_id" && name != "operation_id") {
        check(!value.empty() && value.size() <= 60 &&
              value.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") ==
                  std::string::npos);
      }
    }
  }
  return 0;
}
