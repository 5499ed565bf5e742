#include "cli/session.h"

#include <fmt/format.h>

#include <cstdlib>

#include "common/file_util.h"

namespace argon::cli {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string first_env(std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (const char* v = std::getenv(n); v && *v) return v;
  }
  return {};
}

}  // namespace

fs::path context_path() {
  if (auto dir = first_env({"ARGON_CONFIG_DIR"}); !dir.empty())
    return fs::path(dir) / "context.json";
  if (auto xdg = first_env({"XDG_CONFIG_HOME"}); !xdg.empty())
    return fs::path(xdg) / "argon" / "context.json";
  return fs::path(first_env({"HOME"})) / ".config" / "argon" / "context.json";
}

Status save_context(const std::string& project_id) {
  const auto path = context_path();
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot create {}: {}", path.parent_path().string(), ec.message()));
  return write_file_atomic(path, json::serialize(json::object{{"project_id", project_id}}) + "\n",
                           0600);
}

Result<Session> Session::open(const GlobalOptions& o) {
  std::string host =
      !o.api_host.empty() ? o.api_host : first_env({"ARGON_API_HOST", "NEON_API_HOST"});
  if (host.empty()) host = kDefaultApiHost;
  std::string key = !o.api_key.empty() ? o.api_key : first_env({"ARGON_API_KEY", "NEON_API_KEY"});
  if (key.empty()) {
    return fail(ErrorCode::kBadRequest,
                "no API key: pass --api-key or set ARGON_API_KEY (or NEON_API_KEY)");
  }
  if (o.output != "table" && o.output != "json")
    return fail(ErrorCode::kBadRequest, "-o: must be table or json");
  std::optional<std::string> project;
  if (!o.project_id.empty()) {
    project = o.project_id;
  } else if (auto text = read_file(context_path())) {
    boost::system::error_code ec;
    auto ctx = json::parse(*text, ec);
    if (ec || !ctx.is_object() || !ctx.as_object().contains("project_id") ||
        !ctx.at("project_id").is_string()) {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("{} is not a context file; run argon set-context again",
                              context_path().string()));
    }
    project = std::string(ctx.at("project_id").as_string());
  }
  ARGON_ASSIGN_OR_RETURN(auto http, HttpClient::make(host));
  return Session(NeonClient(std::move(http), key), std::move(project),
                 o.output == "json" ? Format::kJson : Format::kTable, !o.no_wait);
}

Result<std::string> Session::project_id() const {
  if (!project_) {
    return fail(ErrorCode::kBadRequest,
                "no project: pass --project-id or run argon set-context --project-id <id>");
  }
  return *project_;
}

Result<json::value> Session::find(const std::string& ref, const std::string& collection,
                                  const std::string& kind) {
  ARGON_ASSIGN_OR_RETURN(auto project, project_id());
  ARGON_ASSIGN_OR_RETURN(auto list, api_.get(fmt::format("/projects/{}/{}", project, collection)));
  std::vector<json::value> by_name;
  for (const auto& item : list.at(collection).as_array()) {
    if (field(item, "id") == ref) return item;
    if (field(item, "name") == ref) by_name.push_back(item);
  }
  if (by_name.size() == 1) return by_name.front();
  if (by_name.empty())
    return fail(ErrorCode::kNotFound, fmt::format("no {} '{}' in project {}", kind, ref, project));
  std::string ids;
  for (const auto& b : by_name) ids += (ids.empty() ? "" : ", ") + field(b, "id");
  return fail(ErrorCode::kNotFound, fmt::format("{} {} {}s are named '{}' ({}); use an id",
                                                by_name.size(), kind, kind, ref, ids));
}

Result<json::value> Session::find_branch(const std::string& ref) {
  return find(ref, "branches", "branch");
}
Result<json::value> Session::find_snapshot(const std::string& ref) {
  return find(ref, "snapshots", "snapshot");
}

Result<json::value> Session::find_branch_or_default(const std::string& ref) {
  if (!ref.empty()) return find_branch(ref);
  ARGON_ASSIGN_OR_RETURN(auto project, project_id());
  ARGON_ASSIGN_OR_RETURN(auto list, api_.get(fmt::format("/projects/{}/branches", project)));
  for (const auto& b : list.at("branches").as_array()) {
    if (b.as_object().contains("default") && b.at("default").is_bool() && b.at("default").as_bool())
      return b;
  }
  return fail(ErrorCode::kNotFound, fmt::format("project {} has no default branch", project));
}

Status Session::settle(const json::value& reply, const std::string& what,
                       const std::string& project) {
  if (!wait_ || !reply.is_object() || !reply.as_object().contains("operations")) return {};
  std::string id = project;
  if (id.empty()) {
    ARGON_ASSIGN_OR_RETURN(id, project_id());
  }
  TerminalProgress progress(what);
  return api_.wait(id, reply.at("operations"), progress);
}

}  // namespace argon::cli
