// What every CLI command works with: the API client (base URL and key from flags, then
// ARGON_*/NEON_* environment variables, then defaults), the project (flag, then the context file
// `argon set-context` writes), the output format, whether to wait, and lookups of branches and
// snapshots by id or by name.
#pragma once

#include <boost/json.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "cli/neon_client.h"
#include "cli/output.h"
#include "common/error.h"

namespace argon::cli {

// argond's default API address (its --listen default).
inline constexpr const char* kDefaultApiHost = "http://127.0.0.1:8420/api/v2";

struct GlobalOptions {
  std::string api_host;    // empty: ARGON_API_HOST, NEON_API_HOST, kDefaultApiHost
  std::string api_key;     // empty: ARGON_API_KEY, NEON_API_KEY
  std::string project_id;  // empty: the context file
  std::string output = "table";
  bool no_wait = false;
};

// $ARGON_CONFIG_DIR, else $XDG_CONFIG_HOME/argon, else ~/.config/argon; then context.json.
std::filesystem::path context_path();
Status save_context(const std::string& project_id);

class Session {
 public:
  static Result<Session> open(const GlobalOptions& options);

  NeonClient& api() { return api_; }
  Format format() const { return format_; }
  bool waits() const { return wait_; }
  // The project every command acts on; kBadRequest with what to do when none is set.
  Result<std::string> project_id() const;

  // A branch or snapshot of the project by id, or else by exact name. An unknown reference is
  // kNotFound, and so is a name several share (the message lists their ids).
  Result<boost::json::value> find_branch(const std::string& ref);
  Result<boost::json::value> find_snapshot(const std::string& ref);
  // find_branch, or the project's default branch when `ref` is empty.
  Result<boost::json::value> find_branch_or_default(const std::string& ref);

  // Waits for a reply's `operations` unless --no-wait, with progress titled `what`. `project`
  // defaults to the session's.
  Status settle(const boost::json::value& reply, const std::string& what,
                const std::string& project = "");

 private:
  Session(NeonClient api, std::optional<std::string> project, Format format, bool wait)
      : api_(std::move(api)), project_(std::move(project)), format_(format), wait_(wait) {}
  Result<boost::json::value> find(const std::string& ref, const std::string& collection,
                                  const std::string& kind);

  NeonClient api_;
  std::optional<std::string> project_;
  Format format_;
  bool wait_;
};

}  // namespace argon::cli
