#include "api/endpoint_fields.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "api/lookups.h"

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

catalog::Endpoint new_endpoint(ApiContext& ctx, const catalog::Project& p,
                               const std::string& branch_id) {
  catalog::Endpoint e;
  e.id = ctx.ids.make("ep");
  e.project_id = p.id;
  e.branch_id = branch_id;
  e.created_at = e.updated_at = ctx.clock.now_ms();
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

Result<int> project_pg_version(ApiContext& ctx, const std::string& project_id) {
  return ctx.catalog.read([&](Tx& tx) -> Result<int> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, project_id));
    return p.pg_version;
  });
}

Status check_endpoint_pg_settings(ApiContext& ctx, const Fields& f, const std::string& project_id) {
  ARGON_ASSIGN_OR_RETURN(auto settings, f.object_text("settings"));
  if (!settings) return {};
  ARGON_RETURN_IF_ERROR(validate_settings(*settings));
  ARGON_ASSIGN_OR_RETURN(const int pg_major, project_pg_version(ctx, project_id));
  return ctx.engine.check_pg_settings(pg_major, *settings, f.path("settings.pg_settings"));
}

Status apply_endpoint_fields(const Fields& f, catalog::Endpoint& e) {
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

}  // namespace argon::api
