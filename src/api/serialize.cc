#include "api/serialize.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/clock.h"

namespace argon::api {

namespace json = boost::json;

namespace {
constexpr int64_t kSizeLimitMiB = 1024 * 1024;  // no logical size limit: report 1 TiB

json::value parse_or_empty(const std::string& text) {
  std::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return json::object{};
  return v;
}

std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

void put_opt(json::object& o, std::string_view key, const std::optional<std::string>& v) {
  if (v) o[key] = *v;
}
void put_opt_ts(json::object& o, std::string_view key, const std::optional<int64_t>& v) {
  if (v) o[key] = ts(*v);
}

// The month containing `ms`, for the consumption period fields.
std::pair<std::string, std::string> month_bounds(int64_t ms) {
  std::string start = ts(ms).substr(0, 8) + "01T00:00:00Z";
  int y = std::stoi(start.substr(0, 4)), m = std::stoi(start.substr(5, 2));
  if (++m > 12) {
    m = 1;
    ++y;
  }
  return {start, fmt::format("{:04}-{:02}-01T00:00:00Z", y, m)};
}

void project_common(json::object& o, const catalog::Project& p, const PublicAddress& a) {
  o["id"] = p.id;
  o["platform_id"] = "argon";
  o["region_id"] = p.region_id;
  o["name"] = p.name;
  o["provisioner"] = "k8s-pod";
  o["default_endpoint_settings"] = parse_or_empty(p.default_endpoint_settings_json);
  o["settings"] = parse_or_empty(p.settings_json);
  o["pg_version"] = p.pg_version;
  o["proxy_host"] = a.proxy_host;
  o["branch_logical_size_limit"] = kSizeLimitMiB;
  o["branch_logical_size_limit_bytes"] = kSizeLimitMiB * 1024 * 1024;
  o["store_passwords"] = p.store_passwords;
  o["cpu_used_sec"] = 0;
  o["creation_source"] = "argon";
  o["history_retention_seconds"] = p.history_retention_seconds;
  o["created_at"] = ts(p.created_at);
  o["updated_at"] = ts(p.updated_at);
  o["owner_id"] = a.owner_id;
}
}  // namespace

std::string ts(int64_t ms) { return format_time(ms / 1000); }

json::object project_json(const catalog::Project& p, const PublicAddress& a) {
  json::object o;
  project_common(o, p, a);
  o["compute_time_seconds"] = 0;
  o["active_time_seconds"] = 0;
  o["written_data_bytes"] = 0;
  o["data_transfer_bytes"] = 0;
  o["data_storage_bytes_hour"] = 0;
  auto [start, end] = month_bounds(p.updated_at);
  o["consumption_period_start"] = start;
  o["consumption_period_end"] = end;
  return o;
}

json::object project_list_item_json(const catalog::Project& p, const PublicAddress& a) {
  json::object o;
  project_common(o, p, a);
  o["active_time"] = 0;
  return o;
}

json::object branch_json(const catalog::Branch& b) {
  json::object o;
  o["id"] = b.id;
  o["project_id"] = b.project_id;
  put_opt(o, "parent_id", b.parent_id);
  put_opt(o, "parent_lsn", b.parent_lsn);
  put_opt_ts(o, "parent_timestamp", b.parent_timestamp);
  o["name"] = b.name;
  o["current_state"] = b.current_state;
  put_opt(o, "pending_state", b.pending_state);
  o["state_changed_at"] = ts(b.state_changed_at);
  if (b.logical_size) o["logical_size"] = *b.logical_size;
  o["creation_source"] = "argon";
  o["primary"] = b.is_default;
  o["default"] = b.is_default;
  o["protected"] = b.is_protected;
  o["cpu_used_sec"] = 0;
  o["compute_time_seconds"] = 0;
  o["active_time_seconds"] = 0;
  o["written_data_bytes"] = 0;
  o["data_transfer_bytes"] = 0;
  o["created_at"] = ts(b.created_at);
  o["updated_at"] = ts(b.updated_at);
  put_opt_ts(o, "expires_at", b.expires_at);
  if (b.ttl_interval_seconds) o["ttl_interval_seconds"] = *b.ttl_interval_seconds;
  o["init_source"] = b.init_source;
  put_opt(o, "restored_from", b.restored_from);
  put_opt(o, "restored_as", b.restored_as);
  put_opt(o, "restore_status", b.restore_status);
  o["created_by"] = json::object{{"name", "argon"}, {"image", ""}};
  return o;
}

std::string endpoint_host(std::string_view endpoint_id, const PublicAddress& a, bool pooled) {
  std::string port = a.proxy_port == 5432 ? "" : fmt::format(":{}", a.proxy_port);
  return fmt::format("{}{}.{}{}", endpoint_id, pooled ? "-pooler" : "", a.proxy_host, port);
}

json::object endpoint_json(const catalog::Endpoint& e, const PublicAddress& a) {
  json::object o;
  o["host"] = endpoint_host(e.id, a);
  o["id"] = e.id;
  put_opt(o, "name", e.name);
  o["project_id"] = e.project_id;
  o["branch_id"] = e.branch_id;
  o["autoscaling_limit_min_cu"] = e.autoscaling_limit_min_cu;
  o["autoscaling_limit_max_cu"] = e.autoscaling_limit_max_cu;
  o["region_id"] = a.region_id;
  o["type"] = e.type;
  o["current_state"] = e.current_state;
  put_opt(o, "pending_state", e.pending_state);
  o["settings"] = parse_or_empty(e.settings_json);
  o["pooler_enabled"] = false;
  o["pooler_mode"] = "transaction";
  o["disabled"] = e.disabled;
  o["passwordless_access"] = e.passwordless_access;
  put_opt_ts(o, "last_active", e.last_active);
  o["creation_source"] = "argon";
  o["created_at"] = ts(e.created_at);
  o["updated_at"] = ts(e.updated_at);
  put_opt_ts(o, "started_at", e.started_at);
  put_opt_ts(o, "suspended_at", e.suspended_at);
  o["proxy_host"] = a.proxy_host;
  o["suspend_timeout_seconds"] = e.suspend_timeout_seconds;
  o["provisioner"] = "k8s-pod";
  return o;
}

json::object snapshot_json(const catalog::Snapshot& s) {
  json::object o;
  o["id"] = s.id;
  o["name"] = s.name;
  o["source_branch_id"] = s.source_branch_id;
  o["created_at"] = ts(s.created_at);
  put_opt(o, "lsn", s.lsn);
  put_opt_ts(o, "timestamp", s.timestamp);
  put_opt_ts(o, "expires_at", s.expires_at);
  o["manual"] = true;
  if (s.full_size) o["full_size"] = *s.full_size;
  return o;
}

json::object operation_json(const catalog::Operation& op) {
  json::object o;
  o["id"] = op.id;
  o["project_id"] = op.project_id;
  put_opt(o, "branch_id", op.branch_id);
  put_opt(o, "endpoint_id", op.endpoint_id);
  o["action"] = op.action;
  o["status"] = op.status;
  put_opt(o, "error", op.error);
  o["failures_count"] = op.failures_count;
  o["created_at"] = ts(op.created_at);
  o["updated_at"] = ts(op.updated_at);
  o["total_duration_ms"] = op.total_duration_ms;
  return o;
}

json::array operations_json(const std::vector<catalog::Operation>& ops) {
  json::array a;
  for (const auto& op : ops) a.push_back(operation_json(op));
  return a;
}

json::object role_json(const catalog::Role& r, bool with_password) {
  json::object o;
  o["branch_id"] = r.branch_id;
  o["name"] = r.name;
  if (with_password) o["password"] = r.password;
  o["protected"] = r.is_protected;
  o["authentication_method"] = r.no_login ? "no_login" : "password";
  o["created_at"] = ts(r.created_at);
  o["updated_at"] = ts(r.updated_at);
  return o;
}

json::object database_json(const catalog::Database& d) {
  return json::object{{"id", d.id},
                      {"branch_id", d.branch_id},
                      {"name", d.name},
                      {"owner_name", d.owner_name},
                      {"created_at", ts(d.created_at)},
                      {"updated_at", ts(d.updated_at)}};
}

std::string connection_uri(const catalog::Endpoint& e, const catalog::Role& r,
                           std::string_view database, const PublicAddress& a, bool pooled) {
  std::string extra = a.hostaddr.empty() ? "" : fmt::format("&hostaddr={}", a.hostaddr);
  return fmt::format("postgresql://{}:{}@{}/{}?sslmode=require{}", percent_encode(r.name),
                     percent_encode(r.password), endpoint_host(e.id, a, pooled),
                     percent_encode(database), extra);
}

json::object connection_details_json(const catalog::Endpoint& e, const catalog::Role& r,
                                     std::string_view database, const PublicAddress& a) {
  return json::object{
      {"connection_uri", connection_uri(e, r, database, a)},
      {"connection_parameters", json::object{{"database", database},
                                             {"password", r.password},
                                             {"role", r.name},
                                             {"host", endpoint_host(e.id, a)},
                                             {"pooler_host", endpoint_host(e.id, a, true)}}}};
}

}  // namespace argon::api
