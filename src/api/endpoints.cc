// Endpoint handlers: /projects/{id}/endpoints...
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/endpoint_fields.h"
#include "api/handlers.h"
#include "api/input.h"
#include "api/lookups.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

Result<Reply> EndpointHandlers::list_endpoints(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    json::array eps;
    for (const auto& e : tx.list_endpoints(p.id))
      eps.push_back(endpoint_json(e, ctx_.options.address));
    return Reply{200, json::object{{"endpoints", std::move(eps)}}};
  });
}

Result<Reply> EndpointHandlers::create_endpoint(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  if (!body.contains("endpoint")) return fail(ErrorCode::kBadRequest, "endpoint: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("endpoint"));
  ARGON_ASSIGN_OR_RETURN(auto branch_id, f.string("branch_id", 1, 60));
  ARGON_ASSIGN_OR_RETURN(auto type, f.string("type", 1, 32));
  ARGON_ASSIGN_OR_RETURN(auto region, f.string("region_id", 1, 64));
  if (!branch_id) return fail(ErrorCode::kBadRequest, "endpoint.branch_id: required");
  if (!type) return fail(ErrorCode::kBadRequest, "endpoint.type: required (read_write)");
  if (*type == "read_only")
    return fail(ErrorCode::kBadRequest, "endpoint.type: read_only endpoints are not supported yet");
  if (*type != "read_write")
    return fail(ErrorCode::kBadRequest, "endpoint.type: must be read_write or read_only");
  ARGON_RETURN_IF_ERROR(check_endpoint_pg_settings(ctx_, f, c.param("project_id")));
  if (region && *region != ctx_.options.address.region_id) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("endpoint.region_id: must be the project's region '{}'",
                            ctx_.options.address.region_id));
  }
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto b = tx.get_branch(p.id, *branch_id);
    if (!b) {
      return fail(
          ErrorCode::kNotFound,
          fmt::format("endpoint.branch_id: branch {} not found in project {}", *branch_id, p.id));
    }
    for (const auto& e : tx.list_branch_endpoints(b->id)) {
      if (e.type == "read_write") {
        return fail(ErrorCode::kConflict,
                    fmt::format("branch {} already has a read_write endpoint ({})", b->id, e.id));
      }
    }
    catalog::Endpoint e = new_endpoint(ctx_, p, b->id);
    ARGON_RETURN_IF_ERROR(apply_endpoint_fields(f, e));
    ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));
    std::vector<catalog::Operation> ops;
    if (!e.disabled) {
      ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), ctx_.engine.planner().start_endpoint(tx, e));
    }
    return Reply{201, json::object{{"endpoint", endpoint_json(e, ctx_.options.address)},
                                   {"operations", operations_json(ops)}}};
  });
}

Result<Reply> EndpointHandlers::get_endpoint(Request& c) {
  return ctx_.catalog.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, ctx_.options.address)}}};
  });
}

Result<Reply> EndpointHandlers::update_endpoint(Request& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.http));
  if (!body.contains("endpoint")) return fail(ErrorCode::kBadRequest, "endpoint: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("endpoint"));
  ARGON_ASSIGN_OR_RETURN(auto branch_id, f.string("branch_id", 1, 60));
  ARGON_RETURN_IF_ERROR(check_endpoint_pg_settings(ctx_, f, c.param("project_id")));
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    const catalog::Endpoint before = e;
    ARGON_RETURN_IF_ERROR(apply_endpoint_fields(f, e));
    if (branch_id && *branch_id != e.branch_id) {
      auto b = tx.get_branch(p.id, *branch_id);
      if (!b) {
        return fail(
            ErrorCode::kNotFound,
            fmt::format("endpoint.branch_id: branch {} not found in project {}", *branch_id, p.id));
      }
      for (const auto& other : tx.list_branch_endpoints(b->id)) {
        if (other.type == "read_write") {
          return fail(
              ErrorCode::kConflict,
              fmt::format("branch {} already has a read_write endpoint ({})", b->id, other.id));
        }
      }
      e.branch_id = *branch_id;
    }
    e.updated_at = ctx_.clock.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));
    const bool active = before.current_state == catalog::endpoint_state::kActive ||
                        before.pending_state == std::string(catalog::endpoint_state::kActive);
    const bool moved = e.branch_id != before.branch_id;
    const bool restart_needed = active && (moved || e.settings_json != before.settings_json);
    std::vector<catalog::Operation> ops;
    if (active && (restart_needed || e.disabled)) {
      // Stop the compute of the branch the endpoint served before the change; the row keeps the
      // new binding.
      ARGON_ASSIGN_OR_RETURN(
          ops.emplace_back(),
          ctx_.engine.planner().add(tx, p.id, before.branch_id, e.id,
                                    ops::params::SuspendCompute{before.branch_id}));
      e.pending_state = std::string(catalog::endpoint_state::kIdle);
      ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));
    }
    if (restart_needed && !e.disabled) {
      ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), ctx_.engine.planner().start_endpoint(tx, e));
    }
    return Reply{200, json::object{{"endpoint", endpoint_json(e, ctx_.options.address)},
                                   {"operations", operations_json(ops)}}};
  });
}

Result<Reply> EndpointHandlers::delete_endpoint(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto any = tx.get_endpoint(p.id, c.param("endpoint_id"), true);
    if (any && any->deleted) return Reply{204, nullptr};
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    ARGON_ASSIGN_OR_RETURN(auto op, ctx_.engine.planner().delete_endpoint(tx, e));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, ctx_.options.address)},
                                   {"operations", operations_json({op})}}};
  });
}

Result<Reply> EndpointHandlers::start_endpoint(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    if (e.disabled) {
      return fail(ErrorCode::kConflict,
                  fmt::format("endpoint {} is disabled; enable it first", e.id));
    }
    ARGON_ASSIGN_OR_RETURN(auto op, ctx_.engine.planner().start_endpoint(tx, e));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, ctx_.options.address)},
                                   {"operations", operations_json({op})}}};
  });
}

Result<Reply> EndpointHandlers::suspend_endpoint(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    ARGON_ASSIGN_OR_RETURN(auto op, ctx_.engine.planner().suspend_endpoint(tx, e));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, ctx_.options.address)},
                                   {"operations", operations_json({op})}}};
  });
}

Result<Reply> EndpointHandlers::restart_endpoint(Request& c) {
  return ctx_.mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    if (e.disabled) {
      return fail(ErrorCode::kConflict,
                  fmt::format("endpoint {} is disabled; enable it first", e.id));
    }
    std::vector<catalog::Operation> ops;
    ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), ctx_.engine.planner().suspend_endpoint(tx, e));
    ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), ctx_.engine.planner().start_endpoint(tx, e));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, ctx_.options.address)},
                                   {"operations", operations_json(ops)}}};
  });
}

void EndpointHandlers::add_routes(Routes& routes) {
  routes.add("GET", kProjectPath + "/endpoints", this, &EndpointHandlers::list_endpoints);
  routes.add("POST", kProjectPath + "/endpoints", this, &EndpointHandlers::create_endpoint);
  routes.add("GET", kEndpointPath, this, &EndpointHandlers::get_endpoint);
  routes.add("PATCH", kEndpointPath, this, &EndpointHandlers::update_endpoint);
  routes.add("DELETE", kEndpointPath, this, &EndpointHandlers::delete_endpoint);
  routes.add("POST", kEndpointPath + "/start", this, &EndpointHandlers::start_endpoint);
  routes.add("POST", kEndpointPath + "/suspend", this, &EndpointHandlers::suspend_endpoint);
  routes.add("POST", kEndpointPath + "/restart", this, &EndpointHandlers::restart_endpoint);
}

}  // namespace argon::api
