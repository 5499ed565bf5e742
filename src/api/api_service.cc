#include "api/api_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "common/crash_point.h"
#include "common/random.h"

namespace argon::api {

namespace json = boost::json;
using catalog::Tx;

namespace {

HttpResponse error_response(const Error& e, const std::string& request_id) {
  HttpResponse r;
  r.status = http_status(e.code);
  json::object body{
      {"code", e.neon_code.empty() ? std::string(default_neon_code(e.code)) : e.neon_code},
      {"message", e.message},
      {"request_id", request_id}};
  r.body = json::serialize(body);
  if (e.code == ErrorCode::kLocked || e.code == ErrorCode::kUnavailable) {
    r.headers.emplace_back("Retry-After", "1");
  }
  return r;
}

}  // namespace

ApiService::ApiService(catalog::Catalog& catalog, ops::Engine& engine, IdGenerator& ids,
                       const Clock& clock, const PgInstalls& pg, ApiOptions options)
    : catalog_(catalog),
      engine_(engine),
      ids_(ids),
      clock_(clock),
      pg_(pg),
      options_(std::move(options)) {
  const std::string p = "/api/v2/projects/{project_id}";
  const std::string b = p + "/branches/{branch_id}";
  const std::string e = p + "/endpoints/{endpoint_id}";
  add("GET", "/api/v2/auth", &ApiService::get_auth);
  add("GET", "/api/v2/users/me", &ApiService::get_me);
  add("GET", "/api/v2/users/me/organizations", &ApiService::get_my_orgs);
  add("GET", "/api/v2/api_keys", &ApiService::list_api_keys);
  add("POST", "/api/v2/api_keys", &ApiService::create_api_key);
  add("DELETE", "/api/v2/api_keys/{key_id}", &ApiService::revoke_api_key);
  add("GET", "/api/v2/projects", &ApiService::list_projects);
  add("POST", "/api/v2/projects", &ApiService::create_project);
  add("GET", "/api/v2/projects/shared", &ApiService::list_shared_projects);
  add("GET", p, &ApiService::get_project);
  add("PATCH", p, &ApiService::update_project);
  add("DELETE", p, &ApiService::delete_project);
  add("GET", p + "/connection_uri", &ApiService::get_connection_uri);
  add("GET", p + "/operations", &ApiService::list_operations);
  add("GET", p + "/operations/{operation_id}", &ApiService::get_operation);
  add("GET", p + "/branches", &ApiService::list_branches);
  add("POST", p + "/branches", &ApiService::create_branch);
  add("GET", p + "/branches/count", &ApiService::count_branches);
  add("GET", b, &ApiService::get_branch);
  add("PATCH", b, &ApiService::update_branch);
  add("DELETE", b, &ApiService::delete_branch);
  add("POST", b + "/set_as_default", &ApiService::set_default_branch);
  add("POST", b + "/set_as_primary", &ApiService::set_default_branch);
  add("POST", b + "/restore", &ApiService::restore_branch);
  add("GET", b + "/endpoints", &ApiService::list_branch_endpoints);
  add("GET", b + "/roles", &ApiService::list_roles);
  add("POST", b + "/roles", &ApiService::create_role);
  add("GET", b + "/roles/{role_name}", &ApiService::get_role);
  add("DELETE", b + "/roles/{role_name}", &ApiService::delete_role);
  add("GET", b + "/roles/{role_name}/reveal_password", &ApiService::reveal_password);
  add("POST", b + "/roles/{role_name}/reset_password", &ApiService::reset_password);
  add("GET", b + "/databases", &ApiService::list_databases);
  add("POST", b + "/databases", &ApiService::create_database);
  add("GET", b + "/databases/{database_name}", &ApiService::get_database);
  add("PATCH", b + "/databases/{database_name}", &ApiService::update_database);
  add("DELETE", b + "/databases/{database_name}", &ApiService::delete_database);
  add("GET", p + "/endpoints", &ApiService::list_endpoints);
  add("POST", p + "/endpoints", &ApiService::create_endpoint);
  add("GET", e, &ApiService::get_endpoint);
  add("PATCH", e, &ApiService::update_endpoint);
  add("DELETE", e, &ApiService::delete_endpoint);
  add("POST", e + "/start", &ApiService::start_endpoint);
  add("POST", e + "/suspend", &ApiService::suspend_endpoint);
  add("POST", e + "/restart", &ApiService::restart_endpoint);
  add("POST", b + "/snapshot", &ApiService::create_snapshot);
  add("POST", b + "/finalize_restore", &ApiService::finalize_restore);
  add("GET", p + "/snapshots", &ApiService::list_snapshots);
  add("PATCH", p + "/snapshots/{snapshot_id}", &ApiService::update_snapshot);
  add("DELETE", p + "/snapshots/{snapshot_id}", &ApiService::delete_snapshot);
  add("POST", p + "/snapshots/{snapshot_id}/restore", &ApiService::restore_snapshot);
}

void ApiService::add(std::string method, std::string pattern, Handler h) {
  router_.add(std::move(method), pattern, static_cast<int>(handlers_.size()));
  handlers_.push_back(h);
}

HttpResponse ApiService::handle(const HttpRequest& req) {
  std::string request_id = req.header("x-request-id");
  if (request_id.empty() || request_id.size() > 200) request_id = uuid_v4();

  auto parsed = boost::urls::parse_origin_form(req.target);
  if (!parsed) {
    return error_response(Error(ErrorCode::kBadRequest, "malformed request target"), request_id);
  }
  std::string path = parsed->path();  // decoded
  if (path.size() > 1 && path.back() == '/') path.pop_back();

  if (path == "/healthz") {
    // The server listens only once recovery is done, so answering at all means ready.
    HttpResponse r;
    r.status = 200;
    r.body = R"({"status":"ok"})";
    return r;
  }

  auto match = router_.match(req.method, parsed->encoded_path());
  if (match.route < 0) {
    Error e =
        match.path_known
            ? Error(ErrorCode::kBadRequest,
                    fmt::format("method {} is not allowed on {}", req.method, path))
            : Error(ErrorCode::kNotFound, fmt::format("no API route {} {}", req.method, path));
    auto r = error_response(e, request_id);
    if (match.path_known) r.status = 405;
    return r;
  }
  if (auto st = authenticate(req); !st) return error_response(st.error(), request_id);
  // Path ids have Neon's shape; anything else cannot exist.
  if (auto st = Router::check_captures(match.captures); !st)
    return error_response(st.error(), request_id);

  Ctx ctx{req, std::move(match.captures), {}};
  for (auto param : parsed->params()) {
    ctx.query.emplace(std::string(param.key), std::string(param.value));
  }
  Result<Reply> result = fail(ErrorCode::kInternal, "no handler");
  try {
    result = (this->*(handlers_[static_cast<size_t>(match.route)]))(ctx);
  } catch (const std::exception& ex) {
    spdlog::error("{} {} failed: {}", req.method, path, ex.what());
    result = fail(ErrorCode::kInternal, "internal error", ex.what());
  }
  if (!result) {
    if (result.error().code == ErrorCode::kInternal) {
      spdlog::error("{} {}: {} {}", req.method, path, result.error().message,
                    result.error().detail);
    }
    return error_response(result.error(), request_id);
  }
  HttpResponse r;
  r.status = result->status;
  if (result->status != 204) r.body = json::serialize(result->body);
  r.headers.emplace_back("X-Request-ID", request_id);
  return r;
}

Status ApiService::authenticate(const HttpRequest& req) {
  std::string auth = req.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), auth.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return fail(ErrorCode::kUnauthorized,
                "missing API key: send the header 'Authorization: Bearer <api key>'");
  }
  const std::string hash = sha256_hex(std::string_view(auth).substr(kBearer.size()));
  // The lookup reads; the key's last use is written at most once a minute per address.
  ARGON_ASSIGN_OR_RETURN(auto key, catalog_.read([&](Tx& tx) -> Result<catalog::ApiKey> {
    for (auto& k : tx.list_api_keys()) {
      if (constant_time_equal(k.hash, hash)) return k;
    }
    return fail(ErrorCode::kUnauthorized, "invalid or revoked API key");
  }));
  const int64_t now = clock_.now_ms();
  if (key.last_used_at && now - *key.last_used_at <= 60'000 &&
      key.last_used_from_addr == req.remote_addr) {
    return {};
  }
  return catalog_.run([&](Tx& tx) -> Status {
    auto k = tx.get_api_key(key.id);
    if (!k || k->revoked) return fail(ErrorCode::kUnauthorized, "invalid or revoked API key");
    k->last_used_at = now;
    k->last_used_from_addr = req.remote_addr;
    return tx.put_api_key(*k);
  });
}

Status ApiService::ensure_api_key(std::string_view token, std::string_view name) {
  const std::string hash = sha256_hex(token);
  return catalog_.run([&](Tx& tx) -> Status {
    for (const auto& k : tx.list_api_keys(true)) {
      if (k.hash == hash) return {};
    }
    catalog::ApiKey k;
    k.name = std::string(name);
    k.hash = hash;
    k.created_at = clock_.now_ms();
    return tx.put_api_key(k);
  });
}

Result<ApiService::Reply> ApiService::mutate(const std::function<Result<Reply>(Tx&)>& fn) {
  auto r = catalog_.transact(fn);
  if (r) crash_point("api.committed");
  if (r) engine_.notify();
  return r;
}

Result<catalog::Project> ApiService::find_project(Tx& tx, const std::string& id) {
  auto p = tx.get_project(id);
  if (!p) return fail(ErrorCode::kNotFound, fmt::format("project {} not found", id));
  return *p;
}

Result<catalog::Branch> ApiService::find_branch(Tx& tx, const catalog::Project& p,
                                                const std::string& id) {
  auto b = tx.get_branch(p.id, id);
  if (!b)
    return fail(ErrorCode::kNotFound, fmt::format("branch {} not found in project {}", id, p.id));
  return *b;
}

Result<catalog::Endpoint> ApiService::find_endpoint(Tx& tx, const catalog::Project& p,
                                                    const std::string& id) {
  auto e = tx.get_endpoint(p.id, id);
  if (!e)
    return fail(ErrorCode::kNotFound, fmt::format("endpoint {} not found in project {}", id, p.id));
  return *e;
}

json::array ApiService::ops_json(const std::vector<catalog::Operation>& ops) {
  json::array a;
  for (const auto& op : ops) a.push_back(operation_json(op));
  return a;
}

json::array ApiService::connection_uris(Tx& tx, const catalog::Branch& b,
                                        const std::optional<catalog::Endpoint>& ep) {
  json::array out;
  if (!ep) return out;
  for (const auto& r : tx.list_roles(b.id)) {
    if (r.password.empty() || r.no_login) continue;
    for (const auto& d : tx.list_databases(b.id)) {
      out.push_back(connection_details_json(*ep, r, d.name, options_.address));
    }
  }
  return out;
}

// ---- identity, API keys, operations --------------------------------------------------------

Result<ApiService::Reply> ApiService::get_auth(Ctx&) {
  return Reply{200, json::object{{"account_id", options_.address.owner_id},
                                 {"auth_method", "api_key_user"}}};
}

Result<ApiService::Reply> ApiService::get_me(Ctx&) {
  const std::string& id = options_.address.owner_id;
  return Reply{200, json::object{{"id", id},
                                 {"email", "admin@argon.local"},
                                 {"name", "argon"},
                                 {"last_name", ""},
                                 {"image", ""},
                                 {"login", "argon"},
                                 {"plan", "self_hosted"},
                                 {"projects_limit", 0},
                                 {"branches_limit", 0},
                                 {"max_autoscaling_limit", 0.25},
                                 {"active_seconds_limit", 0},
                                 {"auth_accounts", json::array{}}}};
}

Result<ApiService::Reply> ApiService::get_my_orgs(Ctx&) {
  return Reply{200, json::object{{"organizations", json::array{}}}};
}

Result<ApiService::Reply> ApiService::list_api_keys(Ctx&) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    json::array a;
    for (const auto& k : tx.list_api_keys()) {
      json::object o{
          {"id", k.id},
          {"name", k.name},
          {"created_at", ts(k.created_at)},
          {"created_by",
           json::object{{"id", options_.address.owner_id}, {"name", "argon"}, {"image", ""}}},
          {"last_used_from_addr", k.last_used_from_addr}};
      o["last_used_at"] = k.last_used_at ? json::value(ts(*k.last_used_at)) : json::value(nullptr);
      a.push_back(std::move(o));
    }
    return Reply{200, std::move(a)};
  });
}

Result<ApiService::Reply> ApiService::create_api_key(Ctx& c) {
  ARGON_ASSIGN_OR_RETURN(auto body, parse_body(c.req));
  Fields f(&body, "");
  ARGON_ASSIGN_OR_RETURN(auto name, f.string("key_name", 1, 64));
  if (!name) return fail(ErrorCode::kBadRequest, "key_name: required (1 to 64 characters)");
  const std::string token = random_string(64, "abcdefghijklmnopqrstuvwxyz0123456789");
  return catalog_.transact([&](Tx& tx) -> Result<Reply> {
    catalog::ApiKey k;
    k.name = *name;
    k.hash = sha256_hex(token);
    k.created_at = clock_.now_ms();
    ARGON_RETURN_IF_ERROR(tx.put_api_key(k));
    return Reply{200, json::object{{"id", k.id},
                                   {"key", token},
                                   {"name", k.name},
                                   {"created_at", ts(k.created_at)},
                                   {"created_by", options_.address.owner_id}}};
  });
}

Result<ApiService::Reply> ApiService::revoke_api_key(Ctx& c) {
  const std::string raw = c.param("key_id");
  auto parsed = parse_int_param(raw, "key_id", 1, INT64_MAX);
  if (!parsed)
    return fail(ErrorCode::kNotFound, fmt::format("API key {} not found", raw.substr(0, 20)));
  const int64_t id = **parsed;
  return catalog_.transact([&](Tx& tx) -> Result<Reply> {
    auto k = tx.get_api_key(id);
    if (!k || k->revoked)
      return fail(ErrorCode::kNotFound, fmt::format("API key {} not found", id));
    k->revoked = true;
    ARGON_RETURN_IF_ERROR(tx.put_api_key(*k));
    json::object o{{"id", k->id},
                   {"name", k->name},
                   {"created_at", ts(k->created_at)},
                   {"created_by", options_.address.owner_id},
                   {"last_used_from_addr", k->last_used_from_addr},
                   {"revoked", true}};
    if (k->last_used_at) o["last_used_at"] = ts(*k->last_used_at);
    return Reply{200, std::move(o)};
  });
}

Result<ApiService::Reply> ApiService::list_operations(Ctx& c) {
  ARGON_ASSIGN_OR_RETURN(auto limit_param, parse_int_param(c.q("limit"), "limit", 1, 1000));
  ARGON_ASSIGN_OR_RETURN(const int64_t before, parse_cursor(c.q("cursor")));
  const int64_t limit = limit_param.value_or(10);
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto ops = tx.list_operations(p.id, before, static_cast<int>(limit));
    json::object out{{"operations", ops_json(ops)}};
    if (!ops.empty()) out["pagination"] = json::object{{"cursor", std::to_string(ops.back().seq)}};
    return Reply{200, std::move(out)};
  });
}

Result<ApiService::Reply> ApiService::get_operation(Ctx& c) {
  return catalog_.read([&](Tx& tx) -> Result<Reply> {
    ARGON_ASSIGN_OR_RETURN(auto p, find_project(tx, c.param("project_id")));
    auto op = tx.get_operation(p.id, c.param("operation_id"));
    if (!op) {
      return fail(ErrorCode::kNotFound, fmt::format("operation {} not found in project {}",
                                                    c.param("operation_id").substr(0, 64), p.id));
    }
    return Reply{200, json::object{{"operation", operation_json(*op)}}};
  });
}

}  // namespace argon::api
