// Role and database handlers: /branches/{id}/roles..., /branches/{id}/databases...
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/api_service.h"
#include "api/names.h"
#include "common/random.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

Result<catalog::Role> ApiService::find_role(Tx& tx, const catalog::Branch& b,
                                            const std::string& name) {
  auto r = tx.get_role(b.id, name);
  if (!r || r->pending_delete)
    return fail(ErrorCode::kNotFound, fmt::format("role {} not found in branch {}", name, b.id));
  return *r;
}

Result<catalog::Database> ApiService::find_database(Tx& tx, const catalog::Branch& b,
                                                    const std::string& name) {
  auto d = tx.get_database(b.id, name);
  if (!d)
    return fail(ErrorCode::kNotFound,
                fmt::format("database {} not found in branch {}", name, b.id));
  return *d;
}

// ---- roles and databases --------------------------------------------------------------------

Result<ApiService::Reply> ApiService::list_roles(Ctx& c) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    json::array roles;
    for (const auto& r : tx.list_roles(b.id)) roles.push_back(role_json(r, false));
    return Reply{200, json::object{{"roles", std::move(roles)}}};
  });
}

Result<ApiService::Reply> ApiService::create_role(Ctx& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.req));
  if (!body.contains("role")) return fail(ErrorCode::kBadRequest, "role: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("role"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 63));
  ARGON_ASSIGN_OR_RETURN(auto no_login, f.boolean("no_login"));
  if (!name) return fail(ErrorCode::kBadRequest, "role.name: required (1 to 63 bytes)");
  if (reserved_role(*name))
    return fail(ErrorCode::kBadRequest, fmt::format("role.name: '{}' is reserved", *name));
  return mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    if (auto existing = tx.get_role(b.id, *name)) {
      return fail(
          ErrorCode::kConflict,
          existing->pending_delete
              ? fmt::format("role {} is being deleted; retry when its operation finishes", *name)
              : fmt::format("role {} already exists in branch {}", *name, b.id));
    }
    const int64_t now = clock_.now_ms();
    catalog::Role r{p.id, b.id, *name, generate_password(), false, no_login.value_or(false),
                    now,  now,  false};
    ARGON_RETURN_IF_ERROR(tx.put_role(r));
    ARGON_ASSIGN_OR_RETURN(auto op, engine_.planner().apply_config(
                                        tx, b, {ops::params::ChangeKind::kCreateRole, r.name}));
    return Reply{201, json::object{{"role", role_json(r, true)}, {"operations", ops_json({op})}}};
  });
}

Result<ApiService::Reply> ApiService::get_role(Ctx& c) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto r, find_role(tx, b, c.param("role_name")));
    return Reply{200, json::object{{"role", role_json(r, false)}}};
  });
}

Result<ApiService::Reply> ApiService::delete_role(Ctx& c) {
  return mutate([&](Tx& tx) -> Result<Reply> {
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
    r.updated_at = clock_.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_role(r));
    ARGON_ASSIGN_OR_RETURN(auto op, engine_.planner().apply_config(
                                        tx, b, {ops::params::ChangeKind::kDeleteRole, r.name}));
    return Reply{200, json::object{{"role", role_json(r, false)}, {"operations", ops_json({op})}}};
  });
}

Result<ApiService::Reply> ApiService::reveal_password(Ctx& c) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
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

Result<ApiService::Reply> ApiService::reset_password(Ctx& c) {
  return mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto r, find_role(tx, b, c.param("role_name")));
    r.password = generate_password();
    r.updated_at = clock_.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_role(r));
    ARGON_ASSIGN_OR_RETURN(auto op, engine_.planner().apply_config(
                                        tx, b, {ops::params::ChangeKind::kResetPassword, r.name}));
    return Reply{200, json::object{{"role", role_json(r, true)}, {"operations", ops_json({op})}}};
  });
}

Result<ApiService::Reply> ApiService::list_databases(Ctx& c) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    json::array dbs;
    for (const auto& d : tx.list_databases(b.id)) dbs.push_back(database_json(d));
    return Reply{200, json::object{{"databases", std::move(dbs)}}};
  });
}

Result<ApiService::Reply> ApiService::create_database(Ctx& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.req));
  if (!body.contains("database")) return fail(ErrorCode::kBadRequest, "database: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("database"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 63));
  ARGON_ASSIGN_OR_RETURN(auto owner, f.string("owner_name", 1, 63));
  if (!name) return fail(ErrorCode::kBadRequest, "database.name: required (1 to 63 bytes)");
  if (!owner) return fail(ErrorCode::kBadRequest, "database.owner_name: required");
  if (reserved_database(*name)) {
    return fail(ErrorCode::kBadRequest, fmt::format("database.name: '{}' is reserved", *name));
  }
  return mutate([&](Tx& tx) -> Result<Reply> {
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
    const int64_t now = clock_.now_ms();
    catalog::Database d{0, p.id, b.id, *name, *owner, now, now, false};
    ARGON_RETURN_IF_ERROR(tx.put_database(d));
    ARGON_ASSIGN_OR_RETURN(auto op,
                           engine_.planner().apply_config(
                               tx, b, {ops::params::ChangeKind::kCreateDatabase, {}, d.id}));
    return Reply{201, json::object{{"database", database_json(d)}, {"operations", ops_json({op})}}};
  });
}

Result<ApiService::Reply> ApiService::get_database(Ctx& c) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto d, find_database(tx, b, c.param("database_name")));
    return Reply{200, json::object{{"database", database_json(d)}}};
  });
}

Result<ApiService::Reply> ApiService::update_database(Ctx& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.req));
  if (!body.contains("database")) return fail(ErrorCode::kBadRequest, "database: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("database"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 63));
  ARGON_ASSIGN_OR_RETURN(auto owner, f.string("owner_name", 1, 63));
  if (name && reserved_database(*name)) {
    return fail(ErrorCode::kBadRequest, fmt::format("database.name: '{}' is reserved", *name));
  }
  return mutate([&](Tx& tx) -> Result<Reply> {
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
    d.updated_at = clock_.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_database(d));
    ARGON_ASSIGN_OR_RETURN(
        auto op, engine_.planner().apply_config(
                     tx, b, {ops::params::ChangeKind::kUpdateDatabase, {}, d.id, old_name}));
    return Reply{200, json::object{{"database", database_json(d)}, {"operations", ops_json({op})}}};
  });
}

Result<ApiService::Reply> ApiService::delete_database(Ctx& c) {
  return mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, c.param("branch_id")));
    ARGON_ASSIGN_OR_RETURN(auto d, find_database(tx, b, c.param("database_name")));
    d.pending_delete = true;
    d.updated_at = clock_.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_database(d));
    ARGON_ASSIGN_OR_RETURN(auto op,
                           engine_.planner().apply_config(
                               tx, b, {ops::params::ChangeKind::kDeleteDatabase, {}, d.id}));
    return Reply{200, json::object{{"database", database_json(d)}, {"operations", ops_json({op})}}};
  });
}

}  // namespace argon::api
