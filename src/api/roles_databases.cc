// Role and database handlers: /branches/{id}/roles..., /branches/{id}/databases...
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/handlers.h"
#include "api/input.h"
#include "api/lookups.h"
#include "api/names.h"
#include "common/random.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

// ---- roles and databases --------------------------------------------------------------------

Result<Reply> RoleDatabaseHandlers::list_roles(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    json::array roles;
    for (const auto& r : tx.list_roles(b.id)) roles.push_back(role_json(r, false));
    return Reply{200, json::object{{"roles", std::move(roles)}}};
  });
}

Result<Reply> RoleDatabaseHandlers::create_role(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  if (!body.contains("role")) return fail(ErrorCode::kBadRequest, "role: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("role"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 63));
  ARGON_ASSIGN_OR_RETURN(auto no_login, f.boolean("no_login"));
  if (!name) return fail(ErrorCode::kBadRequest, "role.name: required (1 to 63 bytes)");
  if (reserved_role(*name))
    return fail(ErrorCode::kBadRequest, fmt::format("role.name: '{}' is reserved", *name));
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    if (auto existing = tx.get_role(b.id, *name)) {
      return fail(
          ErrorCode::kConflict,
          existing->pending_delete
              ? fmt::format("role {} is being deleted; retry when its operation finishes", *name)
              : fmt::format("role {} already exists in branch {}", *name, b.id));
    }
    const int64_t now = ctx_.clock.now_ms();
    catalog::Role r{p.id, b.id, *name, generate_password(), false, no_login.value_or(false),
                    now,  now,  false};
    ARGON_RETURN_IF_ERROR(tx.put_role(r));
    ARGON_ASSIGN_OR_RETURN(auto op, ctx_.engine.planner().apply_config(
                                        tx, b, {ops::params::ChangeKind::kCreateRole, r.name}));
    return Reply{201,
                 json::object{{"role", role_json(r, true)}, {"operations", operations_json({op})}}};
  });
}

Result<Reply> RoleDatabaseHandlers::get_role(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto r, find_role(tx, b, c.param("role_name")));
    return Reply{200, json::object{{"role", role_json(r, false)}}};
  });
}

Result<Reply> RoleDatabaseHandlers::delete_role(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto r, find_role(tx, b, c.param("role_name")));
    if (r.is_protected)
      return fail(ErrorCode::kConflict, fmt::format("role {} is protected", r.name));
    for (const auto& d : tx.list_databases(b.id)) {
      if (d.owner_name == r.name) {
        return fail(
            ErrorCode::kConflict,
            fmt::format("role {} owns database {}; delete the database or change its owner first",
                        r.name, d.name));
      }
    }
    r.pending_delete = true;
    r.updated_at = ctx_.clock.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_role(r));
    ARGON_ASSIGN_OR_RETURN(auto op, ctx_.engine.planner().apply_config(
                                        tx, b, {ops::params::ChangeKind::kDeleteRole, r.name}));
    return Reply{
        200, json::object{{"role", role_json(r, false)}, {"operations", operations_json({op})}}};
  });
}

Result<Reply> RoleDatabaseHandlers::reveal_password(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto r, find_role(tx, b, c.param("role_name")));
    if (!p.store_passwords) {
      return fail(ErrorCode::kPreconditionFailed,
                  fmt::format("project {} does not store passwords (store_passwords=false)", p.id));
    }
    if (r.password.empty()) {
      return fail(
          ErrorCode::kNotFound,
          fmt::format("role {} was created with SQL and its password is not known; reset it with "
                      "reset_password",
                      r.name));
    }
    return Reply{200, json::object{{"password", r.password}}};
  });
}

Result<Reply> RoleDatabaseHandlers::reset_password(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto r, find_role(tx, b, c.param("role_name")));
    r.password = generate_password();
    r.updated_at = ctx_.clock.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_role(r));
    ARGON_ASSIGN_OR_RETURN(auto op, ctx_.engine.planner().apply_config(
                                        tx, b, {ops::params::ChangeKind::kResetPassword, r.name}));
    return Reply{200,
                 json::object{{"role", role_json(r, true)}, {"operations", operations_json({op})}}};
  });
}

Result<Reply> RoleDatabaseHandlers::list_databases(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    json::array dbs;
    for (const auto& d : tx.list_databases(b.id)) dbs.push_back(database_json(d));
    return Reply{200, json::object{{"databases", std::move(dbs)}}};
  });
}

Result<Reply> RoleDatabaseHandlers::create_database(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  if (!body.contains("database")) return fail(ErrorCode::kBadRequest, "database: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("database"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 63));
  ARGON_ASSIGN_OR_RETURN(auto owner, f.string("owner_name", 1, 63));
  if (!name) return fail(ErrorCode::kBadRequest, "database.name: required (1 to 63 bytes)");
  if (!owner) return fail(ErrorCode::kBadRequest, "database.owner_name: required");
  if (reserved_database(*name)) {
    return fail(ErrorCode::kBadRequest, fmt::format("database.name: '{}' is reserved", *name));
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    for (const auto& d : tx.list_databases(b.id, true)) {
      if (d.name == *name) {
        return fail(ErrorCode::kConflict,
                    fmt::format("database {} already exists in branch {}", *name, b.id));
      }
    }
    auto r = tx.get_role(b.id, *owner);
    if (!r || r->pending_delete) {
      return fail(
          ErrorCode::kBadRequest,
          fmt::format("database.owner_name: role {} does not exist in branch {}", *owner, b.id));
    }
    const int64_t now = ctx_.clock.now_ms();
    catalog::Database d{0, p.id, b.id, *name, *owner, now, now, false};
    ARGON_RETURN_IF_ERROR(tx.put_database(d));
    ARGON_ASSIGN_OR_RETURN(auto op,
                           ctx_.engine.planner().apply_config(
                               tx, b, {ops::params::ChangeKind::kCreateDatabase, {}, d.id}));
    return Reply{
        201, json::object{{"database", database_json(d)}, {"operations", operations_json({op})}}};
  });
}

Result<Reply> RoleDatabaseHandlers::get_database(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto d, find_database(tx, b, c.param("database_name")));
    return Reply{200, json::object{{"database", database_json(d)}}};
  });
}

Result<Reply> RoleDatabaseHandlers::update_database(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  if (!body.contains("database")) return fail(ErrorCode::kBadRequest, "database: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("database"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 63));
  ARGON_ASSIGN_OR_RETURN(auto owner, f.string("owner_name", 1, 63));
  if (name && reserved_database(*name)) {
    return fail(ErrorCode::kBadRequest, fmt::format("database.name: '{}' is reserved", *name));
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto d, find_database(tx, b, c.param("database_name")));
    const std::string old_name = d.name;
    if (name && *name != d.name) {
      for (const auto& other : tx.list_databases(b.id, true)) {
        if (other.name == *name) {
          return fail(ErrorCode::kConflict,
                      fmt::format("database {} already exists in branch {}", *name, b.id));
        }
      }
      d.name = *name;
    }
    if (owner) {
      auto r = tx.get_role(b.id, *owner);
      if (!r || r->pending_delete) {
        return fail(
            ErrorCode::kBadRequest,
            fmt::format("database.owner_name: role {} does not exist in branch {}", *owner, b.id));
      }
      d.owner_name = *owner;
    }
    d.updated_at = ctx_.clock.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_database(d));
    ARGON_ASSIGN_OR_RETURN(
        auto op, ctx_.engine.planner().apply_config(
                     tx, b, {ops::params::ChangeKind::kUpdateDatabase, {}, d.id, old_name}));
    return Reply{
        200, json::object{{"database", database_json(d)}, {"operations", operations_json({op})}}};
  });
}

Result<Reply> RoleDatabaseHandlers::delete_database(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto d, find_database(tx, b, c.param("database_name")));
    d.pending_delete = true;
    d.updated_at = ctx_.clock.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_database(d));
    ARGON_ASSIGN_OR_RETURN(auto op,
                           ctx_.engine.planner().apply_config(
                               tx, b, {ops::params::ChangeKind::kDeleteDatabase, {}, d.id}));
    return Reply{
        200, json::object{{"database", database_json(d)}, {"operations", operations_json({op})}}};
  });
}

void RoleDatabaseHandlers::add_routes(Routes& routes) {
  routes.add("GET", kBranchPath + "/roles", this, &RoleDatabaseHandlers::list_roles);
  routes.add("POST", kBranchPath + "/roles", this, &RoleDatabaseHandlers::create_role);
  routes.add("GET", kBranchPath + "/roles/{role_name}", this, &RoleDatabaseHandlers::get_role);
  routes.add("DELETE", kBranchPath + "/roles/{role_name}", this,
             &RoleDatabaseHandlers::delete_role);
  routes.add("GET", kBranchPath + "/roles/{role_name}/reveal_password", this,
             &RoleDatabaseHandlers::reveal_password);
  routes.add("POST", kBranchPath + "/roles/{role_name}/reset_password", this,
             &RoleDatabaseHandlers::reset_password);
  routes.add("GET", kBranchPath + "/databases", this, &RoleDatabaseHandlers::list_databases);
  routes.add("POST", kBranchPath + "/databases", this, &RoleDatabaseHandlers::create_database);
  routes.add("GET", kBranchPath + "/databases/{database_name}", this,
             &RoleDatabaseHandlers::get_database);
  routes.add("PATCH", kBranchPath + "/databases/{database_name}", this,
             &RoleDatabaseHandlers::update_database);
  routes.add("DELETE", kBranchPath + "/databases/{database_name}", this,
             &RoleDatabaseHandlers::delete_database);
}

}  // namespace argon::api
