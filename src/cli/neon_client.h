// The Neon API v2 as the CLI uses it: JSON in and out, the bearer key, API errors turned into one
// line a user can act on, and waiting for operations with progress. Speaks only the public API,
// so the CLI works against argond and, unchanged, against Neon's cloud.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "cli/http_client.h"
#include "common/error.h"

namespace argon::cli {

// Told what a wait is doing: the operation's action and how long the whole wait has taken.
class Progress {
 public:
  virtual ~Progress() = default;
  virtual void update(const std::string& action, std::chrono::milliseconds elapsed) = 0;
  virtual void done() = 0;
};

class NeonClient {
 public:
  NeonClient(HttpClient http, std::string api_key)
      : http_(std::move(http)), key_(std::move(api_key)) {}

  // `path` after the base URL ("/projects/…"). A non-2xx answer becomes an Error whose code follows
  // the status (404 kNotFound, 409 kConflict, other 4xx kBadRequest or its own, 5xx kInternal)
  // and whose message is the server's.
  Result<boost::json::value> call(const std::string& method, const std::string& path,
                                  const std::optional<boost::json::value>& body = std::nullopt);
  Result<boost::json::value> get(const std::string& path) { return call("GET", path); }

  // Polls every operation in `ops` (a reply's `operations`) until each has ended. kInternal names
  // the operation when one failed; kUnavailable after `timeout`.
  Status wait(const std::string& project_id, const boost::json::value& ops, Progress& progress,
              std::chrono::milliseconds timeout = std::chrono::minutes(30));

  const std::string& base_url() const { return http_.base_url(); }

 private:
  HttpClient http_;
  std::string key_;
};

}  // namespace argon::cli
