#include "api/api_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "api/auth.h"
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
    : ctx_{catalog, engine, ids, clock, pg, std::move(options)} {
  identity_.add_routes(routes_);
  projects_.add_routes(routes_);
  branches_.add_routes(routes_);
  roles_databases_.add_routes(routes_);
  endpoints_.add_routes(routes_);
  snapshots_.add_routes(routes_);
}

Status ApiService::ensure_api_key(std::string_view token, std::string_view name) {
  return api::ensure_api_key(ctx_, token, name);
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

  auto match = routes_.router().match(req.method, parsed->encoded_path());
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
  if (auto st = authenticate(ctx_, req); !st) return error_response(st.error(), request_id);
  // Path ids have Neon's shape; anything else cannot exist.
  if (auto st = Router::check_captures(match.captures); !st)
    return error_response(st.error(), request_id);

  Request request{req, std::move(match.captures), {}};
  for (auto param : parsed->params()) {
    request.query.emplace(std::string(param.key), std::string(param.value));
  }
  Result<Reply> result = fail(ErrorCode::kInternal, "no handler");
  try {
    result = routes_.handler(match.route)(request);
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

}  // namespace argon::api
