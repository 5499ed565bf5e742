// Project handlers: /projects, /projects/{id}, /connection_uri.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/endpoint_fields.h"
#include "api/handlers.h"
#include "api/input.h"
#include "api/lookups.h"
#include "api/names.h"
#include "common/random.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

Result<Reply> ProjectHandlers::list_projects(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto limit_param, parse_int_param(c.q("limit"), "limit", 1, 400));
  ARGON_ASSIGN_OR_RETURN(const int64_t after, parse_cursor(c.q("cursor")));
  const int64_t limit = limit_param.value_or(10);
  const std::string search = c.q("search").value_or("");
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    auto projects = tx.list_projects(after, static_cast<int>(limit), search);
    json::array items;
    for (const auto& p : projects) items.push_back(project_list_item_json(p, ctx_.options.address));
    json::object out{{"projects", std::move(items)},
                     {"applications", json::object{}},
                     {"integrations", json::object{}}};
    if (!projects.empty())
      out["pagination"] = json::object{{"cursor", std::to_string(projects.back().seq)}};
    return Reply{200, std::move(out)};
  });
}

Result<Reply> ProjectHandlers::list_shared_projects(Request&) {
  return Reply{200, json::object{{"projects", json::array{}}}};
}

Result<Reply> ProjectHandlers::create_project(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("project"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 256));
  ARGON_ASSIGN_OR_RETURN(auto region, f.string("region_id", 1, 64));
  ARGON_ASSIGN_OR_RETURN(auto pg_version, f.integer("pg_version", 14, 18));
  ARGON_ASSIGN_OR_RETURN(auto store_passwords, f.boolean("store_passwords"));
  ARGON_ASSIGN_OR_RETURN(auto retention, f.integer("history_retention_seconds", 0, 2592000));
  ARGON_ASSIGN_OR_RETURN(auto settings, f.object_text("settings"));
  ARGON_ASSIGN_OR_RETURN(auto endpoint_settings, f.object_text("default_endpoint_settings"));
  ARGON_ASSIGN_OR_RETURN(auto provisioner, f.string("provisioner", 1, 64));
  ARGON_ASSIGN_OR_RETURN(Fields bf, f.object("branch"));
  ARGON_ASSIGN_OR_RETURN(auto branch_name, bf.string("name", 1, 256));
  ARGON_ASSIGN_OR_RETURN(auto db_name, bf.string("database_name", 1, 63));
  ARGON_ASSIGN_OR_RETURN(auto role_name, bf.string("role_name", 1, 63));
  if (region && *region != ctx_.options.address.region_id) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("project.region_id: unknown region '{}'; this server "
                            "has one region, '{}'",
                            region->substr(0, 64), ctx_.options.address.region_id));
  }
  const int version = static_cast<int>(pg_version.value_or(ctx_.options.default_pg_version));
  if (!ctx_.pg.find(version)) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("project.pg_version: PostgreSQL {} is not installed on this server; "
                            "available: {}",
                            version, ctx_.pg.majors_list()));
  }
  if (endpoint_settings) {
    ARGON_RETURN_IF_ERROR(ctx_.engine.check_pg_settings(
        version, *endpoint_settings, "project.default_endpoint_settings.pg_settings"));
  }
  const std::string database = db_name.value_or("neondb");
  const std::string role = role_name.value_or(database + "_owner");
  if (reserved_role(role)) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("project.branch.role_name: '{}' is reserved", role));
  }
  if (reserved_database(database)) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("project.branch.database_name: '{}' is reserved", database));
  }
  (void)provisioner;  // one provisioner here: local processes

  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    const int64_t now = ctx_.clock.now_ms();
    catalog::Project p;
    p.id = ctx_.ids.make("");
    p.name = name.value_or(p.id);
    p.region_id = ctx_.options.address.region_id;
    p.pg_version = version;
    p.store_passwords = store_passwords.value_or(true);
    p.history_retention_seconds = retention.value_or(86400);
    p.settings_json = settings.value_or("{}");
    p.default_endpoint_settings_json = endpoint_settings.value_or("{}");
    p.created_at = p.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_project(p));

    catalog::Branch b;
    b.id = ctx_.ids.make("br");
    b.project_id = p.id;
    b.name = branch_name.value_or("main");
    b.is_default = true;
    b.state_changed_at = b.created_at = b.updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_branch(b));

    catalog::Role r{p.id, b.id, role, generate_password(), false, false, now, now, false};
    ARGON_RETURN_IF_ERROR(tx.put_role(r));
    catalog::Database d{0, p.id, b.id, database, role, now, now, false};
    ARGON_RETURN_IF_ERROR(tx.put_database(d));

    catalog::Endpoint e = new_endpoint(ctx_, p, b.id);
    ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));

    std::vector<catalog::Operation> ops;
    ARGON_ASSIGN_OR_RETURN(
        ops.emplace_back(),
        ctx_.engine.planner().add(
            tx, p.id, b.id, std::nullopt,
            ops::params::CreateBranch{ops::params::CreateBranch::Source::kTemplate}));
    ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), ctx_.engine.planner().start_endpoint(tx, e));

    json::object out{{"project", project_json(p, ctx_.options.address)},
                     {"connection_uris",
                      json::array{connection_details_json(e, r, d.name, ctx_.options.address)}},
                     {"roles", json::array{role_json(r, true)}},
                     {"databases", json::array{database_json(d)}},
                     {"operations", operations_json(ops)},
                     {"branch", branch_json(b)},
                     {"endpoints", json::array{endpoint_json(e, ctx_.options.address)}}};
    return Reply{201, std::move(out)};
  });
}

Result<Reply> ProjectHandlers::get_project(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    return Reply{200, json::object{{"project", project_json(p, ctx_.options.address)}}};
  });
}

Result<Reply> ProjectHandlers::update_project(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  if (!body.contains("project")) return fail(ErrorCode::kBadRequest, "project: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("project"));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 256));
  ARGON_ASSIGN_OR_RETURN(auto retention, f.integer("history_retention_seconds", 0, 2592000));
  ARGON_ASSIGN_OR_RETURN(auto settings, f.object_text("settings"));
  ARGON_ASSIGN_OR_RETURN(auto endpoint_settings, f.object_text("default_endpoint_settings"));
  if (endpoint_settings) {
    ARGON_ASSIGN_OR_RETURN(const int pg_major, project_pg_version(ctx_, c.param("project_id")));
    ARGON_RETURN_IF_ERROR(ctx_.engine.check_pg_settings(
        pg_major, *endpoint_settings, "project.default_endpoint_settings.pg_settings"));
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    if (name) p.name = *name;
    if (retention) p.history_retention_seconds = *retention;
    if (settings) p.settings_json = *settings;
    if (endpoint_settings) p.default_endpoint_settings_json = *endpoint_settings;
    p.updated_at = ctx_.clock.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_project(p));
    return Reply{200, json::object{{"project", project_json(p, ctx_.options.address)},
                                   {"operations", json::array{}}}};
  });
}

Result<Reply> ProjectHandlers::delete_project(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    // Children first, so every delete_timeline finds its branch's children already gone.
    auto branches = tx.list_branches(p.id);
    std::stable_sort(branches.begin(), branches.end(),
                     [](const catalog::Branch& a, const catalog::Branch& b) {
                       return a.created_at > b.created_at;
                     });
    for (const auto& b : branches)
      ARGON_RETURN_IF_ERROR(ctx_.engine.planner().delete_branch(tx, b));
    for (auto s : tx.list_snapshots(p.id))
      ARGON_RETURN_IF_ERROR(ctx_.engine.planner().delete_snapshot(tx, s));
    p.deleted_at = p.updated_at = ctx_.clock.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_project(p));
    return Reply{200, json::object{{"project", project_json(p, ctx_.options.address)}}};
  });
}

Result<Reply> ProjectHandlers::get_connection_uri(Request& c) {
  auto database = c.q("database_name");
  auto role_name = c.q("role_name");
  if (!database || database->empty())
    return fail(ErrorCode::kBadRequest, "database_name: required");
  if (!role_name || role_name->empty()) return fail(ErrorCode::kBadRequest, "role_name: required");
  const bool pooled = c.q("pooled").value_or("false") == "true";
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    std::string branch_id = c.q("branch_id").value_or("");
    if (branch_id.empty()) {
      for (const auto& b : tx.list_branches(p.id)) {
        if (b.is_default) branch_id = b.id;
      }
    }
    ARGON_ASSIGN_OR_RETURN(auto b, find_branch(tx, p, branch_id));
    std::optional<catalog::Endpoint> ep;
    if (auto eid = c.q("endpoint_id"); eid && !eid->empty()) {
      ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, *eid));
      if (e.branch_id != b.id) {
        return fail(
            ErrorCode::kBadRequest,
            fmt::format("endpoint_id: endpoint {} does not belong to branch {}", e.id, b.id));
      }
      ep = e;
    } else {
      for (const auto& e : tx.list_branch_endpoints(b.id)) {
        if (e.type == "read_write") ep = e;
      }
    }
    if (!ep) {
      return fail(ErrorCode::kNotFound,
                  fmt::format("branch {} has no read_write endpoint; create one first", b.id));
    }
    auto r = tx.get_role(b.id, *role_name);
    if (!r || r->pending_delete) {
      return fail(ErrorCode::kNotFound,
                  fmt::format("role {} not found in branch {}", role_name->substr(0, 63), b.id));
    }
    if (!tx.get_database(b.id, *database)) {
      return fail(ErrorCode::kNotFound,
                  fmt::format("database {} not found in branch {}", database->substr(0, 63), b.id));
    }
    if (r->password.empty() || !p.store_passwords) {
      return fail(ErrorCode::kPreconditionFailed,
                  fmt::format("the password of role {} is not stored; reset it with reset_password",
                              r->name));
    }
    return Reply{
        200,
        json::object{{"uri", connection_uri(*ep, *r, *database, ctx_.options.address, pooled)}}};
  });
}

Result<Reply> ProjectHandlers::list_operations(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto limit_param, parse_int_param(c.q("limit"), "limit", 1, 1000));
  ARGON_ASSIGN_OR_RETURN(const int64_t before, parse_cursor(c.q("cursor")));
  const int64_t limit = limit_param.value_or(10);
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto ops = tx.list_operations(p.id, before, static_cast<int>(limit));
    json::object out{{"operations", operations_json(ops)}};
    if (!ops.empty()) out["pagination"] = json::object{{"cursor", std::to_string(ops.back().seq)}};
    return Reply{200, std::move(out)};
  });
}

Result<Reply> ProjectHandlers::get_operation(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto op = tx.get_operation(p.id, c.param("operation_id"));
    if (!op) {
      return fail(ErrorCode::kNotFound, fmt::format("operation {} not found in project {}",
                                                    c.param("operation_id").substr(0, 64), p.id));
    }
    return Reply{200, json::object{{"operation", operation_json(*op)}}};
  });
}

void ProjectHandlers::add_routes(Routes& routes) {
  routes.add("GET", "/api/v2/projects", this, &ProjectHandlers::list_projects);
  routes.add("POST", "/api/v2/projects", this, &ProjectHandlers::create_project);
  routes.add("GET", "/api/v2/projects/shared", this, &ProjectHandlers::list_shared_projects);
  routes.add("GET", kProjectPath, this, &ProjectHandlers::get_project);
  routes.add("PATCH", kProjectPath, this, &ProjectHandlers::update_project);
  routes.add("DELETE", kProjectPath, this, &ProjectHandlers::delete_project);
  routes.add("GET", kProjectPath + "/connection_uri", this, &ProjectHandlers::get_connection_uri);
  routes.add("GET", kProjectPath + "/operations", this, &ProjectHandlers::list_operations);
  routes.add("GET", kProjectPath + "/operations/{operation_id}", this,
             &ProjectHandlers::get_operation);
}

}  // namespace argon::api
