// What every handler group shares: the request as a handler sees it, its reply, the route table
// the groups add to, and ApiContext (the catalog, the engine and the rest a handler works with).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_types.h"
#include "api/router.h"
#include "api/serialize.h"
#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/id_generator.h"
#include "common/pg_install.h"
#include "ops/engine.h"

namespace argon::api {

struct ApiOptions {
  PublicAddress address;
  int default_pg_version = 15;
  // Per-project limits (Neon's plans cap these; a self-hosted server chooses).
  int max_snapshots = 100;
  int max_root_branches = 25;
};

// An authenticated request whose route matched: the captured path segments and the query.
struct Request {
  const HttpRequest& http;
  std::map<std::string, std::string> path;
  std::multimap<std::string, std::string> query;
  std::string param(const std::string& k) const {
    auto it = path.find(k);
    return it == path.end() ? std::string() : it->second;
  }
  std::optional<std::string> q(const std::string& k) const {
    auto it = query.find(k);
    if (it == query.end()) return std::nullopt;
    return it->second;
  }
};

struct Reply {
  int status = 200;
  boost::json::value body;
};

using Handler = std::function<Result<Reply>(Request&)>;

// The routes' path prefixes.
inline const std::string kProjectPath = "/api/v2/projects/{project_id}";
inline const std::string kBranchPath = kProjectPath + "/branches/{branch_id}";
inline const std::string kEndpointPath = kProjectPath + "/endpoints/{endpoint_id}";

// The route table. The first route that matches wins, so a literal segment ("/projects/shared")
// is added before the capture it would also match ("/projects/{project_id}").
class Routes {
 public:
  void add(std::string method, std::string_view pattern, Handler h) {
    router_.add(std::move(method), pattern, static_cast<int>(handlers_.size()));
    handlers_.push_back(std::move(h));
  }
  // A handler group's member function.
  template <typename Group>
  void add(std::string method, std::string_view pattern, Group* group,
           Result<Reply> (Group::*h)(Request&)) {
    add(std::move(method), pattern, [group, h](Request& r) { return (group->*h)(r); });
  }
  const Router& router() const { return router_; }
  const Handler& handler(int route) const { return handlers_[static_cast<size_t>(route)]; }

 private:
  Router router_;
  std::vector<Handler> handlers_;  // by route id
};

struct ApiContext {
  catalog::Catalog& catalog;
  ops::Engine& engine;
  IdGenerator& ids;
  const Clock& clock;
  const PgInstalls& pg;
  const ApiOptions options;

  // Runs `fn` in a catalog transaction and wakes the engine if it committed.
  Result<Reply> mutate(const std::function<Result<Reply>(catalog::Tx&)>& fn);
  // Connection details for every role x database of a branch through its read_write endpoint.
  boost::json::array connection_uris(catalog::Tx& tx, const catalog::Branch& b,
                                     const std::optional<catalog::Endpoint>& ep) const;
};

// Copies the catalog's roles (with passwords) and databases of a branch or snapshot to another
// (a new branch, a snapshot, a restore's new branch).
Status copy_roles_and_databases(catalog::Tx& tx, const std::string& from_id,
                                const std::string& to_id, int64_t now);

}  // namespace argon::api
