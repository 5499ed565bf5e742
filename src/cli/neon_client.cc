#include "cli/neon_client.h"

#include <fmt/format.h>

#include <thread>

namespace argon::cli {

namespace json = boost::json;

namespace {

ErrorCode code_for_status(int status) {
  switch (status) {
    case 401:
      return ErrorCode::kUnauthorized;
    case 403:
      return ErrorCode::kForbidden;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kConflict;
    case 412:
      return ErrorCode::kPreconditionFailed;
    case 422:
      return ErrorCode::kLimitExceeded;
    case 423:
      return ErrorCode::kLocked;
    case 503:
      return ErrorCode::kUnavailable;
    default:
      return status >= 500 ? ErrorCode::kInternal : ErrorCode::kBadRequest;
  }
}

}  // namespace

Result<json::value> NeonClient::call(const std::string& method, const std::string& path,
                                     const std::optional<json::value>& body) {
  auto r = http_.request(method, path, body ? json::serialize(*body) : std::string(),
                         {{"Authorization", "Bearer " + key_}});
  if (!r) return std::unexpected(r.error());
  json::value parsed;
  boost::system::error_code ec;
  if (!r->body.empty()) parsed = json::parse(r->body, ec);
  if (r->status >= 200 && r->status < 300) {
    if (ec)
      return fail(ErrorCode::kInternal, fmt::format("{} {}: the answer is not JSON", method, path));
    return parsed;
  }
  std::string message;
  if (!ec && parsed.is_object() && parsed.as_object().contains("message") &&
      parsed.at("message").is_string()) {
    message = std::string(parsed.at("message").as_string());
  } else {
    message = r->body.substr(0, 200);
  }
  if (r->status == 401)
    message = "the API key was refused (set --api-key, ARGON_API_KEY or NEON_API_KEY): " + message;
  return fail(code_for_status(r->status), fmt::format("{} (HTTP {})", message, r->status));
}

Status NeonClient::wait(const std::string& project_id, const json::value& ops, Progress& progress,
                        std::chrono::milliseconds timeout) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  };
  auto delay = std::chrono::milliseconds(50);
  for (const auto& op : ops.as_array()) {
    const std::string id(op.at("id").as_string());
    const std::string action(op.at("action").as_string());
    for (;;) {
      auto got = get(fmt::format("/projects/{}/operations/{}", project_id, id));
      if (!got) {
        progress.done();
        return std::unexpected(got.error());
      }
      const auto& o = got->at("operation");
      const std::string status(o.at("status").as_string());
      if (status == "finished" || status == "skipped" || status == "cancelled") break;
      if (status == "failed" || status == "error") {
        progress.done();
        std::string why = o.as_object().contains("error") && o.at("error").is_string()
                              ? std::string(o.at("error").as_string())
                              : "no reason given";
        return fail(ErrorCode::kInternal,
                    fmt::format("operation {} ({}) failed: {}", id, action, why));
      }
      if (elapsed() > timeout) {
        progress.done();
        return fail(ErrorCode::kUnavailable,
                    fmt::format("operation {} ({}) is still {} after {} s", id, action, status,
                                elapsed().count() / 1000));
      }
      progress.update(action, elapsed());
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(1000));
    }
  }
  progress.done();
  return {};
}

}  // namespace argon::cli
