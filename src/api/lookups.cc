#include "api/lookups.h"

#include <fmt/format.h>

namespace argon::api {

using catalog::Tx;

Result<catalog::Project> find_project(Tx& tx, const std::string& id) {
  auto p = tx.get_project(id);
  if (!p) return fail(ErrorCode::kNotFound, fmt::format("project {} not found", id));
  return *p;
}

Result<catalog::Branch> find_branch(Tx& tx, const catalog::Project& p, const std::string& id) {
  auto b = tx.get_branch(p.id, id);
  if (!b)
    return fail(ErrorCode::kNotFound, fmt::format("branch {} not found in project {}", id, p.id));
  return *b;
}

Result<catalog::Endpoint> find_endpoint(Tx& tx, const catalog::Project& p, const std::string& id) {
  auto e = tx.get_endpoint(p.id, id);
  if (!e)
    return fail(ErrorCode::kNotFound, fmt::format("endpoint {} not found in project {}", id, p.id));
  return *e;
}

Result<catalog::Role> find_role(Tx& tx, const catalog::Branch& b, const std::string& name) {
  auto r = tx.get_role(b.id, name);
  if (!r || r->pending_delete)
    return fail(ErrorCode::kNotFound, fmt::format("role {} not found in branch {}", name, b.id));
  return *r;
}

Result<catalog::Database> find_database(Tx& tx, const catalog::Branch& b, const std::string& name) {
  auto d = tx.get_database(b.id, name);
  if (!d)
    return fail(ErrorCode::kNotFound,
                fmt::format("database {} not found in branch {}", name, b.id));
  return *d;
}

Result<catalog::Snapshot> find_snapshot(Tx& tx, const catalog::Project& p, const std::string& id) {
  auto s = tx.get_snapshot(p.id, id);
  if (!s)
    return fail(ErrorCode::kNotFound, fmt::format("snapshot {} not found in project {}", id, p.id));
  return *s;
}

Status check_branch_name_free(Tx& tx, const std::string& project_id, const std::string& name,
                              const std::string& except_id) {
  for (const auto& b : tx.list_branches(project_id)) {
    if (b.name == name && b.id != except_id) {
      return fail(ErrorCode::kConflict,
                  fmt::format("a branch named '{}' already exists ({})", name, b.id));
    }
  }
  return {};
}

}  // namespace argon::api
