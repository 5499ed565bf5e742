// Endpoint handlers: /projects/{id}/endpoints...
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/api_service.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

namespace {
// settings.pg_settings must map setting names to string values: they become `-c name=value`.
Status validate_settings(const std::string& text) {
  auto v = json::parse(text);
  const auto& o = v.as_object();
  if (const auto* pg = o.if_contains("pg_settings")) {
    if (!pg->is_object())
      return fail(ErrorCode::kBadRequest, "endpoint.settings.pg_settings: must be an object");
    for (const auto& [k, val] : pg->as_object()) {
      std::string_view key = k;
      if (key.empty() || key.size() > 63 ||
          key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.") !=
              std::string_view::npos) {
        return fail(
            ErrorCode::kBadRequest,
            fmt::format("endpoint.settings.pg_settings: '{}' is not a PostgreSQL setting name",
                        key.substr(0, 64)));
      }
      if (!val.is_string() || val.as_string().size() > 1024) {
        return fail(ErrorCode::kBadRequest,
                    fmt::format("endpoint.settings.pg_settings.{}: must be a string", key));
      }
    }
  }
  return {};
}
}  // namespace

catalog::Endpoint ApiService::new_endpoint(const catalog::Project& p,
                                           const std::string& branch_id) {
  catalog::Endpoint e;
  e.id = ids_.make("ep");
  e.project_id = p.id;
  e.branch_id = branch_id;
  e.created_at = e.updated_at = clock_.now_ms();
  std::error_code ec;
  auto defaults = json::parse(p.default_endpoint_settings_json, ec);
  if (!ec && defaults.is_object()) {
    const auto& d = defaults.as_object();
    if (auto* v = d.if_contains("suspend_timeout_seconds"); v && v->is_int64())
      e.suspend_timeout_seconds = v->as_int64();
    if (auto* v = d.if_contains("autoscaling_limit_min_cu"); v && v->is_number())
      e.autoscaling_limit_min_cu = v->to_number<double>();
    if (auto* v = d.if_contains("autoscaling_limit_max_cu"); v && v->is_number())
      e.autoscaling_limit_max_cu = v->to_number<double>();
    if (auto* v = d.if_contains("pg_settings"); v && v->is_object()) {
      e.settings_json = json::serialize(json::object{{"pg_settings", *v}});
    }
  }
  return e;
}

Result<int> ApiService::project_pg_version(const std::string& project_id) {
  return catalog_.read([&](Tx& tx) -> Result<int> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, project_id));
    return p.pg_version;
  });
}

Status ApiService::check_endpoint_pg_settings(const Fields& f, const std::string& project_id) {
  ARGON_ASSIGN_OR_RETURN(auto settings, f.object_text("settings"));
  if (!settings) return {};
  ARGON_RETURN_IF_ERROR(validate_settings(*settings));
  ARGON_ASSIGN_OR_RETURN(const int pg_major, project_pg_version(project_id));
  return engine_.check_pg_settings(pg_major, *settings, f.path("settings.pg_settings"));
}

Status ApiService::apply_endpoint_fields(const Fields& f, catalog::Endpoint& e) {
  ARGON_ASSIGN_OR_RETURN(auto min_cu, f.number("autoscaling_limit_min_cu", 0.25, 64));
  ARGON_ASSIGN_OR_RETURN(auto max_cu, f.number("autoscaling_limit_max_cu", 0.25, 64));
  ARGON_ASSIGN_OR_RETURN(auto settings, f.object_text("settings"));
  ARGON_ASSIGN_OR_RETURN(auto disabled, f.boolean("disabled"));
  ARGON_ASSIGN_OR_RETURN(auto passwordless, f.boolean("passwordless_access"));
  ARGON_ASSIGN_OR_RETURN(auto timeout, f.integer("suspend_timeout_seconds", -1, 604800));
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("name", 1, 64));
  ARGON_ASSIGN_OR_RETURN(auto pooler_enabled, f.boolean("pooler_enabled"));
  ARGON_ASSIGN_OR_RETURN(auto pooler_mode, f.string("pooler_mode", 1, 32));
  ARGON_ASSIGN_OR_RETURN(auto provisioner, f.string("provisioner", 1, 64));
  if (pooler_mode && *pooler_mode != "transaction" && *pooler_mode != "session") {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must be transaction or session", f.path("pooler_mode")));
  }
  if (provisioner && *provisioner != "k8s-pod" && *provisioner != "k8s-neonvm") {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must be k8s-pod or k8s-neonvm", f.path("provisioner")));
  }
  (void)pooler_enabled;  // the proxy is the pooler here
  if (settings) ARGON_RETURN_IF_ERROR(validate_settings(*settings));
  const double lo = min_cu.value_or(e.autoscaling_limit_min_cu);
  const double hi = max_cu.value_or(std::max(lo, e.autoscaling_limit_max_cu));
  if (hi < lo) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must not be below autoscaling_limit_min_cu",
                            f.path("autoscaling_limit_max_cu")));
  }
  e.autoscaling_limit_min_cu = lo;
  e.autoscaling_limit_max_cu = hi;
  if (settings) e.settings_json = *settings;
  if (disabled) e.disabled = *disabled;
  if (passwordless) e.passwordless_access = *passwordless;
  if (timeout) e.suspend_timeout_seconds = *timeout;
  if (name) e.name = *name;
  return {};
}

Result<ApiService::Reply> ApiService::list_endpoints(Ctx& c) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    json::array eps;
    for (const auto& e : tx.list_endpoints(p.id)) eps.push_back(endpoint_json(e, options_.address));
    return Reply{200, json::object{{"endpoints", std::move(eps)}}};
  });
}

Result<ApiService::Reply> ApiService::create_endpoint(Ctx& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.req));
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
  ARGON_RETURN_IF_ERROR(check_endpoint_pg_settings(f, c.param("project_id")));
  if (region && *region != options_.address.region_id) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("endpoint.region_id: must be the project's region '{}'",
                            options_.address.region_id));
  }
  return mutate([&](Tx& tx) -> Result<Reply> {
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
    catalog::Endpoint e = new_endpoint(p, b->id);
    ARGON_RETURN_IF_ERROR(apply_endpoint_fields(f, e));
    ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));
    std::vector<catalog::Operation> ops;
    if (!e.disabled) {
      ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), engine_.planner().start_endpoint(tx, e));
    }
    return Reply{201, json::object{{"endpoint", endpoint_json(e, options_.address)},
                                   {"operations", ops_json(ops)}}};
  });
}

Result<ApiService::Reply> ApiService::get_endpoint(Ctx& c) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, options_.address)}}};
  });
}

Result<ApiService::Reply> ApiService::update_endpoint(Ctx& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.req));
  if (!body.contains("endpoint")) return fail(ErrorCode::kBadRequest, "endpoint: required");
  ARGON_ASSIGN_OR_RETURN(Fields f, Fields(&body, "").object("endpoint"));
  ARGON_ASSIGN_OR_RETURN(auto branch_id, f.string("branch_id", 1, 60));
  ARGON_RETURN_IF_ERROR(check_endpoint_pg_settings(f, c.param("project_id")));
  return mutate([&](Tx& tx) -> Result<Reply> {
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
    e.updated_at = clock_.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));
    const bool active = before.current_state == catalog::endpoint_state::kActive ||
                        before.pending_state == std::string(catalog::endpoint_state::kActive);
    const bool moved = e.branch_id != before.branch_id;
    const bool restart_needed = active && (moved || e.settings_json != before.settings_json);
    std::vector<catalog::Operation> ops;
    if (active && (restart_needed || e.disabled)) {
      // Stop the compute of the branch the endpoint served before the change; the row keeps the
      // new binding.
      ARGON_ASSIGN_OR_RETURN(ops.emplace_back(),
                             engine_.planner().add(tx, p.id, before.branch_id, e.id,
                                                   ops::params::SuspendCompute{before.branch_id}));
      e.pending_state = std::string(catalog::endpoint_state::kIdle);
      ARGON_RETURN_IF_ERROR(tx.put_endpoint(e));
    }
    if (restart_needed && !e.disabled) {
      ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), engine_.planner().start_endpoint(tx, e));
    }
    return Reply{200, json::object{{"endpoint", endpoint_json(e, options_.address)},
                                   {"operations", ops_json(ops)}}};
  });
}

Result<ApiService::Reply> ApiService::delete_endpoint(Ctx& c) {
  return mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto any = tx.get_endpoint(p.id, c.param("endpoint_id"), true);
    if (any && any->deleted) return Reply{204, nullptr};
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    ARGON_ASSIGN_OR_RETURN(auto op, engine_.planner().delete_endpoint(tx, e));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, options_.address)},
                                   {"operations", ops_json({op})}}};
  });
}

Result<ApiService::Reply> ApiService::start_endpoint(Ctx& c) {
  return mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    if (e.disabled) {
      return fail(ErrorCode::kConflict,
                  fmt::format("endpoint {} is disabled; enable it first", e.id));
    }
    ARGON_ASSIGN_OR_RETURN(auto op, engine_.planner().start_endpoint(tx, e));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, options_.address)},
                                   {"operations", ops_json({op})}}};
  });
}

Result<ApiService::Reply> ApiService::suspend_endpoint(Ctx& c) {
  return mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    ARGON_ASSIGN_OR_RETURN(auto op, engine_.planner().suspend_endpoint(tx, e));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, options_.address)},
                                   {"operations", ops_json({op})}}};
  });
}

Result<ApiService::Reply> ApiService::restart_endpoint(Ctx& c) {
  return mutate([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    ARGON_ASSIGN_OR_RETURN(auto e, find_endpoint(tx, p, c.param("endpoint_id")));
    if (e.disabled) {
      return fail(ErrorCode::kConflict,
                  fmt::format("endpoint {} is disabled; enable it first", e.id));
    }
    std::vector<catalog::Operation> ops;
    ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), engine_.planner().suspend_endpoint(tx, e));
    ARGON_ASSIGN_OR_RETURN(ops.emplace_back(), engine_.planner().start_endpoint(tx, e));
    return Reply{200, json::object{{"endpoint", endpoint_json(e, options_.address)},
                                   {"operations", ops_json(ops)}}};
  });
}

}  // namespace argon::api
